/** ORIGIN (RFC 4271 §5.1.1). RFC 7606 §7.1: length != 1 or undefined value -> treat-as-withdraw. */
import { UpdateSubcode } from '../errors.js';
import { type AttrDesc, AttrType, type Origin, WELL_KNOWN } from './types.js';

const ORIGINS: readonly Origin[] = ['igp', 'egp', 'incomplete'];

export const originAttr: AttrDesc = {
  typeCode: AttrType.Origin,
  name: 'ORIGIN',
  flags: WELL_KNOWN,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s !== 1) return { subcode: UpdateSubcode.AttributeLengthError, message: `ORIGIN length ${e - s}` };
    const o = ORIGINS[b[s] as number];
    if (o === undefined) return { subcode: UpdateSubcode.InvalidOriginAttribute, message: `ORIGIN ${b[s]}` };
    attrs.origin = o;
    return undefined;
  },
  has: (a) => a.origin !== undefined,
  encode(a, w) {
    w.u8(ORIGINS.indexOf(a.origin as Origin));
  },
};
