/** The speaker's record of one configured peer (shared by speaker.ts and status.ts). */
import type { Logger } from '../../agent/common/logger.js';
import type { FamilyName } from '../codec/index.js';
import type { GrPeerState, Negotiated } from '../fsm/index.js';
import type { AdjRibIn, CompiledFilter, ExportPeer, LocRibEntry, PeerInfo, Route } from '../rib/index.js';
import type { Session } from './session.js';
import type { PeerConfig } from './types.js';

export interface PeerStats {
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
  flaps: number;
  notificationsIn: Record<string, number>;
  notificationsOut: Record<string, number>;
}

export interface PeerEntry {
  cfg: PeerConfig;
  families: FamilyName[];
  session: Session;
  log: Logger;
  info: PeerInfo;
  importFilter: CompiledFilter;
  exportFilter: CompiledFilter;
  rin: AdjRibIn;
  /** Index of this peer's Adj-RIB-Out state in every Loc-RIB entry's `out` array. */
  slot: number;
  /** Prefixes the peer has from us, in total and per family. */
  advertised: number;
  advertisedByFamily: Map<FamilyName, number>;
  exportPeer?: ExportPeer;
  /** Back-pressure: exports held while the socket is over the soft send limit (export-plan.ts). */
  paused: boolean;
  held: Map<LocRibEntry, Route | undefined>;
  /** End-of-RIB families to send once the held exports are out. */
  eorPending: FamilyName[];
  establishedAt?: { mono: number; wall: number };
  negotiated?: Negotiated;
  /** Graceful-restart helper state (bgp/fsm/graceful-restart.ts). */
  gr: GrPeerState;
  /** GR restart timer (down) or stale timer (re-established, waiting for End-of-RIB). */
  staleTimer?: { cancel(): void };
  restartingBit: boolean;
  /** Families whose End-of-RIB arrived on the current session. */
  eorReceived: Set<FamilyName>;
  stats: PeerStats;
  lastError?: string;
  maxPrefixWarned: boolean;
  removed: boolean;
}
