/** Status projection: the speaker's peers and Loc-RIB as the plain JSON of /status and /routes. */
import type { FamilyName } from '../codec/index.js';
import { bestOf, type LocRib, nextHopsOf } from '../rib/index.js';
import type { PeerEntry } from './peer-entry.js';
import type { PeerStatus } from './types.js';

export interface BestRouteView {
  prefix: string;
  family: FamilyName;
  nextHops: string[];
  peer?: string;
  local: boolean;
  stale: boolean;
}

/** Best routes (learned and local). */
export function bestRoutesOf(rib: LocRib): BestRouteView[] {
  const out: BestRouteView[] = [];
  for (const e of rib.selected()) {
    const b = bestOf(e.selection);
    out.push({
      prefix: e.prefix,
      family: e.family,
      nextHops: nextHopsOf(e.selection),
      ...(b.peer ? { peer: b.peer.address } : {}),
      local: !b.peer,
      stale: b.stale === true,
    });
  }
  return out;
}

/** One peer's status at monotonic time `nowMs`. */
export function peerStatusOf(p: PeerEntry, nowMs: number): PeerStatus {
  const n = p.session.negotiated;
  const fams = new Set<FamilyName>([...p.families, ...p.rin.byFamily.keys()]);
  let stale = 0;
  if (p.staleTimer) for (const r of p.rin.routes()) if (r.stale) stale++;
  const st: PeerStatus = {
    address: p.info.address,
    asn: p.cfg.asn,
    state: p.session.state,
    adminShutdown: p.cfg.shutdown ?? false,
    isIbgp: p.info.isIbgp,
    routeReflectorClient: p.info.rrClient,
    uptimeSec: p.establishedAt ? Math.floor((nowMs - p.establishedAt.mono) / 1000) : 0,
    families: [...fams].map((family) => ({
      family,
      received: p.rin.byFamily.get(family)?.received ?? 0,
      accepted: p.rin.byFamily.get(family)?.accepted ?? 0,
      advertised: p.advertisedByFamily.get(family) ?? 0,
    })),
    prefixesReceived: p.rin.received,
    prefixesAccepted: p.rin.accepted,
    prefixesAdvertised: p.advertised,
    flaps: p.stats.flaps,
    messagesIn: p.stats.messagesIn,
    messagesOut: p.stats.messagesOut,
    updatesIn: p.stats.updatesIn,
    updatesOut: p.stats.updatesOut,
    notificationsIn: { ...p.stats.notificationsIn },
    notificationsOut: { ...p.stats.notificationsOut },
    staleRoutes: stale,
  };
  if (p.cfg.description) st.description = p.cfg.description;
  if (p.info.bgpId) st.peerBgpId = p.info.bgpId;
  const la = p.session.localAddress;
  if (n && la) st.localAddress = la;
  if (p.establishedAt) st.establishedAt = new Date(p.establishedAt.wall).toISOString();
  if (n) {
    st.holdTimeSec = n.holdTimeSec;
    st.keepaliveSec = n.keepaliveSec;
    if (n.peerGracefulRestart) st.peerGracefulRestart = { restartTimeSec: n.peerGracefulRestart.restartTimeSec };
  }
  if (p.paused || p.held.size > 0) st.exportsHeld = p.held.size;
  const err = p.lastError ?? p.session.fsmState.lastError;
  if (err) st.lastError = err;
  return st;
}
