/** RFC 4271 §8.2.2 session states and the per-peer FSM state record. */
import type { CodecContext, FamilyName, OpenMessage } from '../codec/index.js';

export const State = {
  Idle: 'Idle',
  Connect: 'Connect',
  Active: 'Active',
  OpenSent: 'OpenSent',
  OpenConfirm: 'OpenConfirm',
  Established: 'Established',
} as const;
export type State = (typeof State)[keyof typeof State];

/** Which side opened a TCP connection: `out` = we connected, `in` = the peer connected to us. */
export type Direction = 'in' | 'out';

/** One TCP connection known to the FSM. Ids are chosen by the session driver, never reused. */
export interface ConnRef {
  readonly id: number;
  readonly dir: Direction;
  /** The peer's OPEN received on this connection (OpenConfirm and later). */
  readonly open?: OpenMessage;
}

/** Peer graceful-restart capability as received (RFC 4724 §3). */
export interface PeerGracefulRestart {
  /** Restart Time: how long to keep the peer's routes after the session drops. */
  restartTimeSec: number;
  /** R bit: the peer has restarted (it will send End-of-RIB). */
  restarting: boolean;
  /** N bit (RFC 8538): NOTIFICATIONs are covered too. */
  notification: boolean;
  /** Families the peer preserves forwarding for, with the F bit. */
  families: { family: FamilyName; forwardingPreserved: boolean }[];
}

/** What the OPEN exchange settled (RFC 4271 §4.2, RFC 5492). */
export interface Negotiated {
  peerAs: number;
  peerBgpId: string;
  isIbgp: boolean;
  /** min(ours, theirs); 0 = no hold timer and no keepalives (RFC 4271 §4.4). */
  holdTimeSec: number;
  /** 0 when holdTimeSec is 0. */
  keepaliveSec: number;
  /** Families both sides advertised (an OPEN without MP capabilities means IPv4 unicast, RFC 4760 §8). */
  families: FamilyName[];
  routeRefresh: boolean;
  /** Present when both sides advertised graceful restart. */
  peerGracefulRestart?: PeerGracefulRestart;
  /** Codec context (4-octet AS, extended messages, ADD-PATH) from `negotiate()`. */
  ctx: CodecContext;
  sentOpen: OpenMessage;
  receivedOpen: OpenMessage;
}

export interface FsmState {
  readonly state: State;
  /** Set by start, cleared by a manual stop: after errors the FSM restarts itself after IdleHold. */
  readonly started: boolean;
  /** The connection the state refers to (OpenSent and later; Connect has none until connected). */
  readonly conn?: ConnRef;
  /** A second connection during collision detection (RFC 4271 §6.8), or a reconnecting peer. */
  readonly other?: ConnRef;
  /** RFC 4271 §8: ConnectRetryCounter. */
  readonly connectRetryCounter: number;
  /** Consecutive failed sessions, for the exponential IdleHold backoff (RFC 4271 §8.1.1 DampPeerOscillations). */
  readonly failures: number;
  /** Set in OpenConfirm / Established. */
  readonly negotiated?: Negotiated;
  /** The last error that took the session down (for status). */
  readonly lastError?: string;
}

export const initialState: FsmState = Object.freeze({
  state: State.Idle,
  started: false,
  connectRetryCounter: 0,
  failures: 0,
});
