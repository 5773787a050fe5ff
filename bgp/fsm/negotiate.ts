/** Building our OPEN and settling what the OPEN exchange negotiated (RFC 4271 §4.2, RFC 5492). */
import {
  AFI,
  type BgpError,
  type Capability,
  checkOpenAgainst,
  type FamilyName,
  familyName,
  negotiate,
  type OpenMessage,
  openMyAs,
  peerAsOf,
  SAFI,
} from '../codec/index.js';
import type { Negotiated, PeerGracefulRestart } from './states.js';

export const FAMILY_AFI_SAFI: Record<FamilyName, { afi: number; safi: number }> = {
  'ipv4-unicast': { afi: AFI.Ipv4, safi: SAFI.Unicast },
  'ipv6-unicast': { afi: AFI.Ipv6, safi: SAFI.Unicast },
  'ipv4-multicast': { afi: AFI.Ipv4, safi: SAFI.Multicast },
  'ipv6-multicast': { afi: AFI.Ipv6, safi: SAFI.Multicast },
};

export interface LocalOpenOptions {
  asn: number;
  bgpId: string;
  holdTimeSec: number;
  families: FamilyName[];
  /** Advertise graceful restart (RFC 4724) with this restart time. */
  gracefulRestart?: { restartTimeSec: number; restarting: boolean; forwardingPreserved: boolean };
  extendedMessage?: boolean;
}

/** Our OPEN: MP per family, route refresh, 4-octet AS, optional GR and extended messages. */
export function buildOpen(o: LocalOpenOptions): OpenMessage {
  const caps: Capability[] = [];
  for (const f of o.families) caps.push({ type: 'multiprotocol', ...FAMILY_AFI_SAFI[f] });
  caps.push({ type: 'route-refresh' });
  caps.push({ type: 'four-octet-as', asn: o.asn });
  if (o.extendedMessage) caps.push({ type: 'extended-message' });
  if (o.gracefulRestart) {
    const gr = o.gracefulRestart;
    caps.push({
      type: 'graceful-restart',
      restarting: gr.restarting,
      notification: false,
      restartTimeSec: Math.min(gr.restartTimeSec, 0xfff),
      families: o.families.map((f) => ({ ...FAMILY_AFI_SAFI[f], forwardingPreserved: gr.forwardingPreserved })),
    });
  }
  return {
    type: 'open',
    version: 4,
    myAs: openMyAs(o.asn),
    holdTimeSec: o.holdTimeSec,
    bgpId: o.bgpId,
    capabilities: caps,
  };
}

/** Families advertised in an OPEN; none at all means IPv4 unicast only (RFC 4760 §8). */
export function openFamilies(open: OpenMessage): FamilyName[] {
  const out: FamilyName[] = [];
  let anyMp = false;
  for (const c of open.capabilities) {
    if (c.type !== 'multiprotocol') continue;
    anyMp = true;
    const f = familyName(c.afi, c.safi);
    if (f !== undefined && !out.includes(f)) out.push(f);
  }
  return anyMp ? out : ['ipv4-unicast'];
}

export interface NegotiateConfig {
  localAs: number;
  localBgpId: string;
  /** Expected peer AS. */
  peerAs: number;
  /** Configured keepalive; default hold/3 (RFC 4271 §10). */
  keepaliveSec?: number;
}

/** Validates the peer's OPEN against our configuration and settles the session parameters. */
export function negotiateSession(
  sent: OpenMessage,
  received: OpenMessage,
  cfg: NegotiateConfig,
): Negotiated | BgpError {
  const isIbgp = cfg.peerAs === cfg.localAs;
  const err = checkOpenAgainst(received, { peerAs: cfg.peerAs, localBgpId: cfg.localBgpId, isIbgp, minHoldTimeSec: 3 });
  if (err) return err;
  // RFC 4271 §4.2: the smaller of the two hold times; 0 disables hold and keepalive timers.
  const holdTimeSec = Math.min(sent.holdTimeSec, received.holdTimeSec);
  let keepaliveSec = 0;
  if (holdTimeSec > 0) {
    keepaliveSec = Math.floor(holdTimeSec / 3);
    if (cfg.keepaliveSec !== undefined && cfg.keepaliveSec > 0) keepaliveSec = Math.min(cfg.keepaliveSec, keepaliveSec);
    keepaliveSec = Math.max(1, keepaliveSec);
  }
  const theirs = openFamilies(received);
  const families = openFamilies(sent).filter((f) => theirs.includes(f));
  const has = (o: OpenMessage, t: Capability['type']) => o.capabilities.some((c) => c.type === t);
  const routeRefresh =
    has(received, 'route-refresh') || received.capabilities.some((c) => c.type === 'unknown' && c.code === 128);
  const out: Negotiated = {
    peerAs: peerAsOf(received),
    peerBgpId: received.bgpId,
    isIbgp,
    holdTimeSec,
    keepaliveSec,
    families,
    routeRefresh,
    ctx: negotiate(sent, received),
    sentOpen: sent,
    receivedOpen: received,
  };
  const ourGr = sent.capabilities.find((c) => c.type === 'graceful-restart');
  const theirGr = received.capabilities.find((c) => c.type === 'graceful-restart');
  if (ourGr && theirGr && theirGr.type === 'graceful-restart') {
    const gr: PeerGracefulRestart = {
      restartTimeSec: theirGr.restartTimeSec,
      restarting: theirGr.restarting,
      notification: theirGr.notification,
      families: [],
    };
    for (const f of theirGr.families) {
      const name = familyName(f.afi, f.safi);
      if (name !== undefined) gr.families.push({ family: name, forwardingPreserved: f.forwardingPreserved });
    }
    out.peerGracefulRestart = gr;
  }
  return out;
}
