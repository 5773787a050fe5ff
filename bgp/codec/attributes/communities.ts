/**
 * COMMUNITIES (RFC 1997) and LARGE_COMMUNITIES (RFC 8092). RFC 7606 §7.8 / RFC 8092 §6: length 0
 * or not a multiple of 4 (12) -> treat-as-withdraw.
 */
import { UpdateSubcode } from '../errors.js';
import { LargeCommunityLayout } from '../layouts.js';
import { type AttrDesc, AttrType, type LargeCommunity, OPTIONAL_TRANSITIVE } from './types.js';

/** Well-known communities (RFC 1997, RFC 3765, RFC 9494, RFC 7999). */
export const WellKnownCommunity = {
  NoExport: 0xffffff01,
  NoAdvertise: 0xffffff02,
  NoExportSubconfed: 0xffffff03,
  NoPeer: 0xffffff04,
  LlgrStale: 0xffff0006,
  NoLlgr: 0xffff0007,
  Blackhole: 0xffff029a,
} as const;

/** `asn:value` -> u32. */
export function community(asn: number, value: number): number {
  return ((asn & 0xffff) * 0x10000 + (value & 0xffff)) >>> 0;
}
export function formatCommunity(c: number): string {
  return `${Math.floor(c / 0x10000)}:${c & 0xffff}`;
}

export const communitiesAttr: AttrDesc = {
  typeCode: AttrType.Communities,
  name: 'COMMUNITIES',
  flags: OPTIONAL_TRANSITIVE,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s === 0 || (e - s) % 4 !== 0) {
      return { subcode: UpdateSubcode.AttributeLengthError, message: `COMMUNITIES length ${e - s}` };
    }
    const out: number[] = [];
    for (let p = s; p < e; p += 4) out.push(b.readUInt32BE(p));
    attrs.communities = out;
    return undefined;
  },
  has: (a) => a.communities !== undefined && a.communities.length > 0,
  encode(a, w) {
    for (const c of a.communities as number[]) w.u32(c);
  },
};

export const largeCommunitiesAttr: AttrDesc = {
  typeCode: AttrType.LargeCommunities,
  name: 'LARGE_COMMUNITIES',
  flags: OPTIONAL_TRANSITIVE,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs) {
    if (e - s === 0 || (e - s) % 12 !== 0) {
      return { subcode: UpdateSubcode.AttributeLengthError, message: `LARGE_COMMUNITIES length ${e - s}` };
    }
    const out: LargeCommunity[] = [];
    for (let p = s; p < e; p += 12) out.push(LargeCommunityLayout.decode(b, p));
    attrs.largeCommunities = out;
    return undefined;
  },
  has: (a) => a.largeCommunities !== undefined && a.largeCommunities.length > 0,
  encode(a, w) {
    for (const c of a.largeCommunities as LargeCommunity[]) w.layout(LargeCommunityLayout, c);
  },
};
