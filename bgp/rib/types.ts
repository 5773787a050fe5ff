/** RIB data: routes with normalised attributes and where they came from. */
import type {
  Aggregator,
  AsPathSegment,
  FamilyName,
  LargeCommunity,
  Origin,
  UnknownAttribute,
} from '../codec/index.js';

/**
 * Path attributes as the RIB keeps them: AS_PATH always with real (4-octet) ASNs, the next hop
 * as one field whatever the family. An empty `nextHop` on a local route means "this speaker"
 * (filled per session on export).
 */
export interface RouteAttrs {
  origin: Origin;
  asPath: AsPathSegment[];
  nextHop: string;
  /** RFC 2545 link-local next hop (IPv6). */
  linkLocalNextHop?: string;
  med?: number;
  localPref?: number;
  communities?: number[];
  largeCommunities?: LargeCommunity[];
  originatorId?: string;
  clusterList?: string[];
  atomicAggregate?: true;
  aggregator?: Aggregator;
  unknown?: UnknownAttribute[];
}

/** The peer a route was learned from. */
export interface PeerInfo {
  /** Peer address: the key of everything per peer. */
  address: string;
  asn: number;
  bgpId: string;
  isIbgp: boolean;
  /** RFC 4456: the peer is a route-reflector client of ours. */
  rrClient: boolean;
}

export interface Route {
  /** Canonical prefix text, e.g. '10.244.1.0/26'. */
  prefix: string;
  family: FamilyName;
  attrs: RouteAttrs;
  /** Undefined for routes this speaker originates. */
  peer?: PeerInfo | undefined;
  /**
   * RFC 4724: kept from a restarting peer until End-of-RIB or the restart time. (Set to false
   * rather than left out on routes the RIB keeps: one object shape for all of them.)
   */
  stale?: boolean;
}
