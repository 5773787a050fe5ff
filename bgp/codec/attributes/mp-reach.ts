/**
 * MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760) for the plain-prefix families (IPv4/IPv6
 * unicast and multicast). IPv6 next hop is 16 bytes (global) or 32 (global + link-local,
 * RFC 2545 §3). Other AFI/SAFIs were not negotiated by us and are ignored (RFC 4760 §7).
 *
 * RFC 7606 §7.11 / §5.3: a malformed MP attribute (bad next-hop length, bad prefix) -> AFI/SAFI
 * disable; if even AFI/SAFI cannot be read -> session reset. Duplicates are handled by the caller.
 */
import { receivesPathId, sendsPathId } from '../context.js';
import { EncodeError, UpdateSubcode } from '../errors.js';
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6 } from '../ip.js';
import { MpReachHeadLayout, MpUnreachHeadLayout } from '../layouts.js';
import { NlriStatus, nlriImpl } from '../nlri.js';
import { familyName, type Prefix } from '../types.js';
import { type AttrDesc, AttrType, type MpReach, type MpUnreach, OPTIONAL_NON_TRANSITIVE } from './types.js';

function nlriProblem(status: NlriStatus, what: string) {
  return {
    subcode: UpdateSubcode.InvalidNetworkField,
    message: `${what}: ${status === NlriStatus.LengthTooLong ? 'prefix length too long' : 'truncated prefix'}`,
    data: new Uint8Array(0),
  };
}

export const mpReachAttr: AttrDesc = {
  typeCode: AttrType.MpReachNlri,
  name: 'MP_REACH_NLRI',
  flags: OPTIONAL_NON_TRANSITIVE,
  action: 'afi-safi-disable',
  decode(b, s, e, attrs, ctx) {
    if (e - s < 5) {
      return {
        subcode: UpdateSubcode.OptionalAttributeError,
        message: 'MP_REACH_NLRI too short',
        action: 'session-reset',
      };
    }
    const { afi, safi, nhLen } = MpReachHeadLayout.decode(b, s);
    const fam = familyName(afi, safi);
    if (s + 4 + nhLen + 1 > e) {
      return { subcode: UpdateSubcode.OptionalAttributeError, message: 'MP_REACH_NLRI next hop overruns' };
    }
    if (fam === undefined) return undefined; // RFC 4760 §7: not a family we negotiated; ignore it
    const nh = s + 4;
    let nextHop: string;
    let linkLocal: string | undefined;
    if (afi === 1) {
      if (nhLen !== 4)
        return { subcode: UpdateSubcode.OptionalAttributeError, message: `IPv4 next-hop length ${nhLen}` };
      nextHop = formatIpv4(b, nh);
    } else {
      if (nhLen !== 16 && nhLen !== 32) {
        return { subcode: UpdateSubcode.OptionalAttributeError, message: `IPv6 next-hop length ${nhLen}` };
      }
      nextHop = formatIpv6(b, nh);
      if (nhLen === 32) linkLocal = formatIpv6(b, nh + 16);
    }
    // one reserved octet (RFC 4760 §3: must be ignored on receipt)
    const nlri: Prefix[] = [];
    const st = nlriImpl.decode(b, nh + nhLen + 1, e, afi === 1 ? 32 : 128, receivesPathId(ctx, fam), nlri);
    if (st !== NlriStatus.Ok) return nlriProblem(st, 'MP_REACH_NLRI');
    const r: MpReach = { afi, safi, nextHop, nlri };
    if (linkLocal !== undefined) r.linkLocalNextHop = linkLocal;
    attrs.mpReach = r;
    return undefined;
  },
  has: (a) => a.mpReach !== undefined,
  encode(a, w, ctx) {
    const r = a.mpReach as MpReach;
    const fam = familyName(r.afi, r.safi);
    if (fam === undefined) throw new EncodeError(`unsupported AFI/SAFI ${r.afi}/${r.safi}`);
    const nh = r.afi === 1 ? parseIpv4(r.nextHop) : parseIpv6(r.nextHop);
    if (nh === undefined) throw new EncodeError(`invalid MP next hop ${r.nextHop}`);
    let ll: Uint8Array | undefined;
    if (r.linkLocalNextHop !== undefined) {
      if (r.afi !== 2) throw new EncodeError('link-local next hop only for IPv6');
      ll = parseIpv6(r.linkLocalNextHop);
      if (ll === undefined) throw new EncodeError(`invalid link-local next hop ${r.linkLocalNextHop}`);
    }
    w.layout(MpReachHeadLayout, { afi: r.afi, safi: r.safi, nhLen: nh.length + (ll ? 16 : 0) });
    w.bytes(nh);
    if (ll) w.bytes(ll);
    w.u8(0);
    w.pos = nlriImpl.write(r.nlri, r.afi === 1 ? 32 : 128, sendsPathId(ctx, fam), w.buf, w.pos, w.limit);
  },
};

export const mpUnreachAttr: AttrDesc = {
  typeCode: AttrType.MpUnreachNlri,
  name: 'MP_UNREACH_NLRI',
  flags: OPTIONAL_NON_TRANSITIVE,
  action: 'afi-safi-disable',
  decode(b, s, e, attrs, ctx) {
    if (e - s < 3) {
      return {
        subcode: UpdateSubcode.OptionalAttributeError,
        message: 'MP_UNREACH_NLRI too short',
        action: 'session-reset',
      };
    }
    const { afi, safi } = MpUnreachHeadLayout.decode(b, s);
    const fam = familyName(afi, safi);
    if (fam === undefined) return undefined;
    const withdrawn: Prefix[] = [];
    const st = nlriImpl.decode(b, s + 3, e, afi === 1 ? 32 : 128, receivesPathId(ctx, fam), withdrawn);
    if (st !== NlriStatus.Ok) return nlriProblem(st, 'MP_UNREACH_NLRI');
    attrs.mpUnreach = { afi, safi, withdrawn };
    return undefined;
  },
  has: (a) => a.mpUnreach !== undefined,
  encode(a, w, ctx) {
    const u = a.mpUnreach as MpUnreach;
    const fam = familyName(u.afi, u.safi);
    if (fam === undefined) throw new EncodeError(`unsupported AFI/SAFI ${u.afi}/${u.safi}`);
    w.layout(MpUnreachHeadLayout, { afi: u.afi, safi: u.safi });
    w.pos = nlriImpl.write(u.withdrawn, u.afi === 1 ? 32 : 128, sendsPathId(ctx, fam), w.buf, w.pos, w.limit);
  },
};
