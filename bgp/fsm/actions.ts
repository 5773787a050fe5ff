/** FSM outputs: the session driver performs them in order (STYLE §5). */
import type { BgpMessage, RouteRefreshMessage, UpdateMessage } from '../codec/index.js';
import type { TimerName } from './events.js';
import type { Negotiated } from './states.js';

/** Why a session left Established; `graceful` = keep the peer's routes as stale (RFC 4724 §4.2). */
export interface DownReason {
  reason: string;
  graceful: boolean;
}

export type Action =
  /** Open a TCP connection to the peer; the driver answers with tcpConnected or tcpFailed. */
  | { type: 'connect' }
  /** Abandon an outgoing connection attempt still in progress. */
  | { type: 'abortConnect' }
  | { type: 'send'; conn: number; msg: BgpMessage }
  /** Close the connection (after flushing queued sends). */
  | { type: 'close'; conn: number }
  | { type: 'startTimer'; timer: TimerName; ms: number }
  | { type: 'stopTimer'; timer: TimerName }
  | { type: 'established'; conn: number; session: Negotiated }
  | { type: 'down'; reason: DownReason }
  /** An UPDATE received in Established, for the RIB. */
  | { type: 'update'; msg: UpdateMessage }
  /** The peer asked us to re-send our Adj-RIB-Out for a family (RFC 2918 §4). */
  | { type: 'routeRefresh'; msg: RouteRefreshMessage };
