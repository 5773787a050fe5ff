/** Turning a decoded UPDATE into RIB operations (and RIB routes back into UPDATEs). */
import {
  AFI,
  type FamilyName,
  familyName,
  isEndOfRib,
  mergeAs4Path,
  type PathAttributes,
  type Prefix,
  SAFI,
  type UpdateMessage,
} from '../codec/index.js';
import { prefixKey } from './prefix.js';
import type { RouteAttrs } from './types.js';

/** The prefixes of one family in an UPDATE (one list, not an object per prefix). */
export interface FamilyPrefixes {
  family: FamilyName;
  prefixes: string[];
}

export interface RibOps {
  announce: FamilyPrefixes[];
  withdraw: FamilyPrefixes[];
  /** Attributes shared by the announcements (per family: the next hop differs). */
  attrs: Partial<Record<FamilyName, RouteAttrs>>;
  /** Set when the UPDATE is an End-of-RIB marker (RFC 4724 §2). */
  endOfRib?: FamilyName;
}

function baseAttrs(a: PathAttributes, as4: boolean): Omit<RouteAttrs, 'nextHop'> {
  const out: Omit<RouteAttrs, 'nextHop'> = {
    origin: a.origin ?? 'incomplete',
    // RFC 6793 §4.2.3: on a 2-octet session rebuild the path from AS4_PATH.
    asPath: as4 ? (a.asPath ?? []) : mergeAs4Path(a.asPath ?? [], a.as4Path),
  };
  if (a.med !== undefined) out.med = a.med;
  if (a.localPref !== undefined) out.localPref = a.localPref;
  if (a.communities) out.communities = a.communities;
  if (a.largeCommunities) out.largeCommunities = a.largeCommunities;
  if (a.originatorId !== undefined) out.originatorId = a.originatorId;
  if (a.clusterList) out.clusterList = a.clusterList;
  if (a.atomicAggregate) out.atomicAggregate = true;
  const agg = a.as4Aggregator ?? a.aggregator;
  if (agg) out.aggregator = agg;
  if (a.unknown) out.unknown = a.unknown;
  return out;
}

/**
 * RIB operations for one UPDATE on a session that negotiated `families` (prefixes of other
 * families are ignored). Treat-as-withdraw was already applied by the caller.
 */
export function ribOpsFromUpdate(msg: UpdateMessage, as4: boolean, families: readonly FamilyName[]): RibOps {
  const ops: RibOps = { announce: [], withdraw: [], attrs: {} };
  const eor = isEndOfRib(msg);
  if (eor) {
    const f = familyName(eor.afi, eor.safi);
    if (f) ops.endOfRib = f;
    return ops;
  }
  const take = (f: FamilyName, list: readonly Prefix[], into: FamilyPrefixes[]) => {
    if (!families.includes(f) || list.length === 0) return;
    const prefixes = new Array<string>(list.length);
    for (let i = 0; i < list.length; i++) prefixes[i] = prefixKey(list[i] as Prefix);
    into.push({ family: f, prefixes });
  };
  take('ipv4-unicast', msg.withdrawn, ops.withdraw);
  const un = msg.attrs.mpUnreach;
  if (un) {
    const f = familyName(un.afi, un.safi);
    if (f) take(f, un.withdrawn, ops.withdraw);
  }
  if (msg.nlri.length > 0 && msg.attrs.nextHop !== undefined) {
    ops.attrs['ipv4-unicast'] = { ...baseAttrs(msg.attrs, as4), nextHop: msg.attrs.nextHop };
    take('ipv4-unicast', msg.nlri, ops.announce);
  }
  const r = msg.attrs.mpReach;
  if (r && r.nlri.length > 0) {
    const f = familyName(r.afi, r.safi);
    if (f) {
      const attrs: RouteAttrs = { ...baseAttrs(msg.attrs, as4), nextHop: r.nextHop };
      if (r.linkLocalNextHop) attrs.linkLocalNextHop = r.linkLocalNextHop;
      ops.attrs[f] = attrs;
      take(f, r.nlri, ops.announce);
    }
  }
  return ops;
}

/**
 * Codec form of a canonical prefix text. IPv4 prefixes carry their address as a number too
 * (`addr4`): the speaker makes one per changed prefix and sends it to every peer, so the text
 * is parsed once, not once per peer.
 */
export function toPrefix(text: string): Prefix {
  const i = text.indexOf('/');
  const prefix = text.slice(0, i);
  const len = Number(text.slice(i + 1));
  if (prefix.includes(':')) return { prefix, len };
  let addr = 0;
  let octet = 0;
  for (let k = 0; k < i; k++) {
    const c = text.charCodeAt(k);
    if (c === 0x2e) {
      addr = addr * 256 + octet;
      octet = 0;
    } else octet = octet * 10 + (c - 0x30);
  }
  return { prefix, len, addr4: addr * 256 + octet };
}

function toPathAttributes(a: RouteAttrs): PathAttributes {
  const out: PathAttributes = { origin: a.origin, asPath: a.asPath };
  if (a.med !== undefined) out.med = a.med;
  if (a.localPref !== undefined) out.localPref = a.localPref;
  if (a.communities?.length) out.communities = a.communities;
  if (a.largeCommunities?.length) out.largeCommunities = a.largeCommunities;
  if (a.originatorId !== undefined) out.originatorId = a.originatorId;
  if (a.clusterList?.length) out.clusterList = a.clusterList;
  if (a.atomicAggregate) out.atomicAggregate = true;
  if (a.aggregator) out.aggregator = a.aggregator;
  if (a.unknown?.length) out.unknown = a.unknown;
  return out;
}

/** One UPDATE announcing `prefixes` of `family` with `attrs` (IPv4 in the classic fields, RFC 4760 otherwise). */
export function announceUpdate(family: FamilyName, attrs: RouteAttrs, prefixes: readonly string[]): UpdateMessage {
  return announceNlri(family, attrs, prefixes.map(toPrefix));
}

/** announceUpdate with the prefixes already in codec form (see toPrefix). */
export function announceNlri(family: FamilyName, attrs: RouteAttrs, nlri: Prefix[]): UpdateMessage {
  const pa = toPathAttributes(attrs);
  if (family === 'ipv4-unicast')
    return { type: 'update', withdrawn: [], attrs: { ...pa, nextHop: attrs.nextHop }, nlri };
  const afi = family.startsWith('ipv6') ? AFI.Ipv6 : AFI.Ipv4;
  const safi = family.endsWith('multicast') ? SAFI.Multicast : SAFI.Unicast;
  const mpReach: PathAttributes['mpReach'] = { afi, safi, nextHop: attrs.nextHop, nlri };
  if (attrs.linkLocalNextHop && mpReach) mpReach.linkLocalNextHop = attrs.linkLocalNextHop;
  return { type: 'update', withdrawn: [], attrs: { ...pa, mpReach }, nlri: [] };
}

/** One UPDATE withdrawing `prefixes` of `family`. */
export function withdrawUpdate(family: FamilyName, prefixes: readonly string[]): UpdateMessage {
  return withdrawNlri(family, prefixes.map(toPrefix));
}

/** withdrawUpdate with the prefixes already in codec form. */
export function withdrawNlri(family: FamilyName, list: Prefix[]): UpdateMessage {
  if (family === 'ipv4-unicast') return { type: 'update', withdrawn: list, attrs: {}, nlri: [] };
  const afi = family.startsWith('ipv6') ? AFI.Ipv6 : AFI.Ipv4;
  const safi = family.endsWith('multicast') ? SAFI.Multicast : SAFI.Unicast;
  return { type: 'update', withdrawn: [], attrs: { mpUnreach: { afi, safi, withdrawn: list } }, nlri: [] };
}
