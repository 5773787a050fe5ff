/** NEXT_HOP (RFC 4271 §5.1.3). RFC 7606 §7.3: bad length or invalid address -> treat-as-withdraw. */
import { EncodeError, UpdateSubcode } from '../errors.js';
import { formatIpv4, parseIpv4 } from '../ip.js';
import { type AttrDesc, AttrType, WELL_KNOWN } from './types.js';

export const nextHopAttr: AttrDesc = {
  typeCode: AttrType.NextHop,
  name: 'NEXT_HOP',
  flags: WELL_KNOWN,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s !== 4) return { subcode: UpdateSubcode.AttributeLengthError, message: `NEXT_HOP length ${e - s}` };
    const a0 = b[s] as number;
    const all = b.readUInt32BE(s);
    // RFC 4271 §6.3: syntactically incorrect next hop (unspecified, multicast, broadcast) -> 3/8.
    if (all === 0 || (a0 & 0xf0) === 0xe0 || all === 0xffffffff) {
      return { subcode: UpdateSubcode.InvalidNextHopAttribute, message: `NEXT_HOP ${formatIpv4(b, s)}` };
    }
    attrs.nextHop = formatIpv4(b, s);
    return undefined;
  },
  has: (a) => a.nextHop !== undefined,
  encode(a, w) {
    const v = parseIpv4(a.nextHop as string);
    if (v === undefined) throw new EncodeError(`invalid NEXT_HOP ${a.nextHop}`);
    w.bytes(v);
  },
};
