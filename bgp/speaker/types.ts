/** Public types of the speaker API. */
import type { FamilyName } from '../codec/index.js';
import type { State } from '../fsm/index.js';
import type { RouteFilter } from '../rib/index.js';

export type AddressFamily = 'ipv4' | 'ipv6';

export interface MaxPrefixes {
  limit: number;
  /** cease (default): NOTIFICATION 6/1 and reconnect after idle hold; warn: log only; discard: ignore the excess. */
  action?: 'cease' | 'warn' | 'discard';
}

export interface PeerConfig {
  address: string;
  asn: number;
  /** Default 179. */
  port?: number;
  /** Only accept connections from the peer, never connect (Calico: the lexically greater IP is passive). */
  passive?: boolean;
  /** Default 90; 0 = no hold timer and no keepalives (if the peer agrees). */
  holdTimeSec?: number;
  /** Default hold/3. */
  keepaliveSec?: number;
  /** Default 5 (Calico: `connect retry time 5`). */
  connectRetrySec?: number;
  /** Idle hold after the first failure, doubling per consecutive failure up to idleHoldMaxSec. Defaults 5 / 120. */
  idleHoldSec?: number;
  idleHoldMaxSec?: number;
  /** Source address of our connections (and our next hop on this session). */
  localAddress?: string;
  /**
   * eBGP multihop: without it an eBGP peer must be on a directly connected network (we neither
   * connect to nor accept it otherwise). The number is the TTL peers should allow; our packets
   * carry the system TTL (64: Node cannot set a TCP socket's TTL), so TTL 1 is not enforced.
   */
  multihop?: number;
  routeReflectorClient?: boolean;
  nextHopSelf?: boolean;
  /** Default ['ipv4', 'ipv6']. */
  families?: AddressFamily[];
  maxPrefixes?: MaxPrefixes;
  importFilter?: RouteFilter;
  exportFilter?: RouteFilter;
  /** Advertise graceful restart on this session (default: on when the speaker has gracefulRestart). */
  gracefulRestart?: boolean;
  /** Administratively down: configured but not started. */
  shutdown?: boolean;
  description?: string;
}

export interface SpeakerConfig {
  asn: number;
  routerId: string;
  /** Where to accept connections; omit to never listen (active peers only). */
  listen?: { address: string; port: number };
  /** Be a route reflector (RFC 4456); clusterId defaults to routerId. */
  routeReflector?: { clusterId?: string };
  /**
   * RFC 4724: advertise graceful restart. `restarting` sets the R bit in our first OPEN to each
   * peer and defers best-path advertisement (and the route event stream) until End-of-RIB has
   * come from every peer that negotiated GR, or `selectionDeferralSec` (default 360) runs out.
   */
  gracefulRestart?: {
    restartTimeSec: number;
    restarting?: boolean;
    staleTimeSec?: number;
    selectionDeferralSec?: number;
  };
  /** Next hop for our routes and next-hop-self, per family (default: the session's local address). */
  nextHop?: { ipv4?: string; ipv6?: string };
  /** Keep ECMP groups (default true). */
  multipath?: boolean;
  /** RFC 8654 (default true). */
  extendedMessage?: boolean;
  /** Coalesce outgoing UPDATEs for this long (default 0: next tick). */
  advertisementIntervalMs?: number;
  /**
   * Back-pressure per session: above `softLimitBytes` queued in the socket (not taken by the
   * kernel) exports to that peer pause until the socket drains; above `hardLimitBytes` the
   * session is closed with Cease 6/8 (Out of Resources). Defaults 4 MiB / 64 MiB.
   */
  sendBuffer?: { softLimitBytes?: number; hardLimitBytes?: number };
}

/** Defaults of SpeakerConfig.sendBuffer. */
export const DEFAULT_SEND_BUFFER = { softLimitBytes: 4 * 1024 * 1024, hardLimitBytes: 64 * 1024 * 1024 } as const;

export interface AnnounceOptions {
  nextHop?: string;
  /** '65000:100' or large '65000:1:2'. */
  communities?: string[];
  med?: number;
  localPref?: number;
}

/** One best-route change for routes learned from peers (routes we originate are not reported). */
export interface RouteEvent {
  event: 'add' | 'replace' | 'withdraw';
  prefix: string;
  family: FamilyName;
  /** ECMP next hops, best first (empty for withdraw). Shared between events: read-only. */
  nextHops: readonly string[];
  /** Peer of the best path. */
  peer?: string;
  /** Shared between events: read-only. */
  asPath?: readonly number[];
}

export interface FamilyCounts {
  family: FamilyName;
  received: number;
  accepted: number;
  advertised: number;
}

export interface PeerStatus {
  address: string;
  asn: number;
  description?: string;
  state: State;
  adminShutdown: boolean;
  isIbgp: boolean;
  routeReflectorClient: boolean;
  peerBgpId?: string;
  localAddress?: string;
  /** Seconds in Established (0 otherwise). */
  uptimeSec: number;
  establishedAt?: string;
  holdTimeSec?: number;
  keepaliveSec?: number;
  families: FamilyCounts[];
  prefixesReceived: number;
  prefixesAccepted: number;
  prefixesAdvertised: number;
  lastError?: string;
  /** Times the session left Established. */
  flaps: number;
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
  /** By 'code/subcode'. */
  notificationsIn: Record<string, number>;
  notificationsOut: Record<string, number>;
  /** Routes kept from this peer during its graceful restart. */
  staleRoutes: number;
  peerGracefulRestart?: { restartTimeSec: number };
  /** Back-pressure: Loc-RIB changes not yet sent because the peer is not reading (absent: none). */
  exportsHeld?: number;
}

export interface SpeakerStatus {
  asn: number;
  routerId: string;
  listen?: { address: string; port: number };
  routeReflector: boolean;
  clusterId?: string;
  locRibPrefixes: number;
  announced: string[];
  /** RFC 4724 §4.1: restarting, waiting for End-of-RIB before advertising. */
  selectionDeferred?: boolean;
  peers: PeerStatus[];
}

export class SpeakerError extends Error {
  override readonly name = 'SpeakerError';
  constructor(
    readonly kind: 'invalid-config' | 'unknown-peer' | 'duplicate-peer' | 'listen',
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
