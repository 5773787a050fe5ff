/** FSM input events (RFC 4271 §8.1: administrative, timer, TCP and message events). */
import type { BgpError, NotificationMessage, OpenMessage, RouteRefreshMessage, UpdateMessage } from '../codec/index.js';
import type { Direction } from './states.js';

export const TimerName = {
  ConnectRetry: 'connectRetry',
  Hold: 'hold',
  Keepalive: 'keepalive',
  /** RFC 4271 §8.1.1 IdleHoldTimer: delay before an automatic restart after an error. */
  IdleHold: 'idleHold',
} as const;
export type TimerName = (typeof TimerName)[keyof typeof TimerName];

export type FsmEvent =
  /** Events 1/4/5: ManualStart / ManualStart_with_PassiveTcpEstablishment. */
  | { type: 'start' }
  /**
   * Event 2 ManualStop (restart false) and the automatic stops that send a Cease (max prefixes
   * 6/1, admin reset 6/4, de-configured 6/3). With `restart` the FSM comes back after IdleHold.
   */
  | { type: 'stop'; notification?: NotificationMessage; restart: boolean; reason: string }
  /** Events 9-13 (timer expiries that the driver still considers current). */
  | { type: 'timer'; timer: TimerName }
  /** Event 16/17: our outgoing connection completed. */
  | { type: 'tcpConnected'; conn: number }
  /** Event 14/15: the peer connected to us (already matched to this peer by address). */
  | { type: 'tcpAccepted'; conn: number }
  /** Event 18 TcpConnectionFails (connect failed, reset or closed by the peer). */
  | { type: 'tcpFailed'; conn: number; reason: string }
  /** Event 19 BGPOpen (decoded; the FSM validates it against the configuration). */
  | { type: 'open'; conn: number; msg: OpenMessage }
  /** Events 21/22 BGPHeaderErr / BGPOpenMsgErr / 28 UpdateMsgErr: a decode error needing a session reset. */
  | { type: 'decodeError'; conn: number; error: BgpError }
  /** Events 24/25 NotifMsgVerErr / NotifMsg. */
  | { type: 'notification'; conn: number; msg: NotificationMessage }
  /** Event 26 KeepAliveMsg. */
  | { type: 'keepalive'; conn: number }
  /** Event 27 UpdateMsg (RFC 7606 non-reset errors were already applied by the driver). */
  | { type: 'update'; conn: number; msg: UpdateMessage }
  /** RFC 2918 ROUTE-REFRESH. */
  | { type: 'routeRefresh'; conn: number; msg: RouteRefreshMessage };

export type { Direction };
