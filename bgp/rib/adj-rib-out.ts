/**
 * Adj-RIB-Out policy: the export decision for each best route and peer (RFC 4271 §9.1.3 with
 * iBGP split horizon, RFC 4456 route reflection, well-known communities, export policy). What
 * each peer was sent is kept in the Loc-RIB entry (LocRibEntry.sent/out) and diffed by the
 * speaker's flush.
 */
import { type FamilyName, WellKnownCommunity } from '../codec/index.js';
import type { CompiledFilter } from './filter.js';
import { parsePrefix } from './prefix.js';
import type { PeerInfo, Route, RouteAttrs } from './types.js';

export interface ExportPeer {
  /** The receiving peer (bgpId may be '' before the first OPEN). */
  info: PeerInfo;
  localAs: number;
  /** Families negotiated with the peer. */
  families: readonly FamilyName[];
  nextHopSelf: boolean;
  /** Our address per family as the peer should see it ("next hop self"). */
  selfNextHop: Partial<Record<FamilyName, string>>;
  /** We are a route reflector (RFC 4456). */
  routeReflector: boolean;
  clusterId: string;
  exportFilter: CompiledFilter;
  /**
   * Exported attributes by source attribute object (filled by exportRoute). A new ExportPeer per
   * session means a fresh memo whenever the peer's export context changes.
   */
  memo?: WeakMap<RouteAttrs, { src: PeerInfo | undefined; family: FamilyName; out: RouteAttrs | undefined }>;
}

const DEFAULT_LOCAL_PREF = 100;

/**
 * The attributes to advertise `route` with to `peer`, or undefined when it must not be advertised.
 * Routes that share an attribute object and source get the same exported object (memoised per
 * peer), so the Adj-RIB-Out groups and compares them by one key per attribute set, not per route.
 */
export function exportRoute(route: Route, peer: ExportPeer): RouteAttrs | undefined {
  if (!peer.families.includes(route.family)) return undefined;
  const src = route.peer;
  // Never back to the peer it came from.
  if (src && src.address === peer.info.address) return undefined;
  const a = route.attrs;
  peer.memo ??= new WeakMap();
  const m = peer.memo.get(a);
  let out: RouteAttrs | undefined;
  if (m !== undefined && m.src === src && m.family === route.family) out = m.out;
  else {
    out = exportAttrs(route, peer);
    peer.memo.set(a, { src, family: route.family, out });
  }
  if (out === undefined) return undefined;
  const always = peer.exportFilter.always;
  if (always !== undefined) return always ? out : undefined;
  const parsed = parsePrefix(route.prefix);
  if (!parsed || !peer.exportFilter(parsed, a)) return undefined;
  return out;
}

/** exportRoute without the per-prefix export filter: depends only on the attributes, source and peer. */
function exportAttrs(route: Route, peer: ExportPeer): RouteAttrs | undefined {
  const src = route.peer;
  const a = route.attrs;
  const toEbgp = !peer.info.isIbgp;
  if (a.communities) {
    // RFC 1997: NO_ADVERTISE -> nobody; NO_EXPORT / NO_EXPORT_SUBCONFED -> no eBGP peer.
    if (a.communities.includes(WellKnownCommunity.NoAdvertise)) return undefined;
    if (
      toEbgp &&
      (a.communities.includes(WellKnownCommunity.NoExport) ||
        a.communities.includes(WellKnownCommunity.NoExportSubconfed))
    )
      return undefined;
  }
  let reflected = false;
  if (src?.isIbgp && !toEbgp) {
    // RFC 4271 §9.2 iBGP split horizon, relaxed by RFC 4456 §6 for a route reflector:
    // from a client -> all clients and non-clients; from a non-client -> clients only.
    if (!peer.routeReflector) return undefined;
    if (!src.rrClient && !peer.info.rrClient) return undefined;
    // RFC 4456 §8: do not send a route back to its originator.
    if (peer.info.bgpId !== '' && (a.originatorId ?? src.bgpId) === peer.info.bgpId) return undefined;
    reflected = true;
  }
  const self = peer.selfNextHop[route.family];
  const out: RouteAttrs = { origin: a.origin, asPath: a.asPath, nextHop: a.nextHop };
  if (a.linkLocalNextHop && !toEbgp) out.linkLocalNextHop = a.linkLocalNextHop;
  if (a.communities) out.communities = a.communities;
  if (a.largeCommunities) out.largeCommunities = a.largeCommunities;
  if (a.atomicAggregate) out.atomicAggregate = true;
  if (a.aggregator) out.aggregator = a.aggregator;
  if (a.unknown) out.unknown = a.unknown;
  if (toEbgp) {
    // RFC 4271 §5.1.2: prepend our AS; §5.1.3: next hop is our address; §5.1.5: no LOCAL_PREF;
    // §5.1.4: a MED received from another AS is not passed on.
    const [first, ...rest] = a.asPath;
    out.asPath =
      first?.type === 'sequence' && first.asns.length < 255
        ? [{ type: 'sequence', asns: [peer.localAs, ...first.asns] }, ...rest]
        : [{ type: 'sequence', asns: [peer.localAs] }, ...a.asPath];
    if (!self) return undefined;
    out.nextHop = self;
    if (!src && a.med !== undefined) out.med = a.med;
  } else {
    out.localPref = a.localPref ?? DEFAULT_LOCAL_PREF;
    if (a.med !== undefined) out.med = a.med;
    // Locally originated routes, and next-hop-self (not for reflected routes: RFC 4456 §10).
    if (a.nextHop === '' || (peer.nextHopSelf && !reflected)) {
      if (!self) return undefined;
      out.nextHop = self;
      delete out.linkLocalNextHop;
    }
    if (reflected && src) {
      out.originatorId = a.originatorId ?? src.bgpId;
      out.clusterList = [peer.clusterId, ...(a.clusterList ?? [])];
    } else {
      if (a.originatorId !== undefined) out.originatorId = a.originatorId;
      if (a.clusterList) out.clusterList = a.clusterList;
    }
  }
  return out;
}
