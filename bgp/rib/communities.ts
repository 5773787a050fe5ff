/**
 * Community texts as configured ('65000:100', large '65000:1:2') -> the attribute values of a
 * route we originate. Pure.
 */
import { community, type LargeCommunity } from '../codec/index.js';

export interface CommunityAttrs {
  communities?: number[];
  largeCommunities?: LargeCommunity[];
}

/** Parses community texts; `{ bad }` names the first one that is neither form (RFC 1997 / RFC 8092). */
export function parseCommunities(
  texts: readonly string[],
): { ok: true; attrs: CommunityAttrs } | { ok: false; bad: string } {
  const attrs: CommunityAttrs = {};
  for (const c of texts) {
    const parts = c.split(':').map((x) => (/^\d+$/.test(x) ? Number(x) : Number.NaN));
    if (parts.length === 2 && parts.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff)) {
      attrs.communities ??= [];
      attrs.communities.push(community(parts[0] as number, parts[1] as number));
    } else if (parts.length === 3 && parts.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
      attrs.largeCommunities ??= [];
      attrs.largeCommunities.push({
        globalAdmin: parts[0] as number,
        localData1: parts[1] as number,
        localData2: parts[2] as number,
      });
    } else return { ok: false, bad: c };
  }
  return { ok: true, attrs };
}
