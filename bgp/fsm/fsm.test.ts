import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BgpError,
  CeaseSubcode,
  ErrorCode,
  KEEPALIVE,
  type NotificationMessage,
  notifications,
  type OpenMessage,
  shutdownNotification,
  UpdateSubcode,
} from '../codec/index.js';
import type { Action } from './actions.js';
import { collisionLoser } from './collision.js';
import type { FsmEvent } from './events.js';
import { type FsmConfig, idleHoldFor, jitter, step } from './fsm.js';
import { buildOpen, negotiateSession, openFamilies } from './negotiate.js';
import { type FsmState, initialState, type Negotiated, State } from './states.js';

const env = { random: () => 0.5 }; // jitter factor 0.875
const LOCAL = '10.0.0.5';
const localOpen = buildOpen({ asn: 64512, bgpId: LOCAL, holdTimeSec: 90, families: ['ipv4-unicast', 'ipv6-unicast'] });
const cfg: FsmConfig = {
  localAs: 64512,
  localBgpId: LOCAL,
  peerAs: 64512,
  passive: false,
  localOpen,
  connectRetryMs: 5000,
  idleHoldMs: 1000,
  idleHoldMaxMs: 8000,
  openHoldMs: 240_000,
};
const passive: FsmConfig = { ...cfg, passive: true };
const peerOpen = (bgpId = '10.0.0.9', extra: Partial<OpenMessage> = {}): OpenMessage => ({
  ...buildOpen({ asn: 64512, bgpId, holdTimeSec: 30, families: ['ipv4-unicast', 'ipv6-unicast'] }),
  ...extra,
});
const grOpen = buildOpen({
  asn: 64512,
  bgpId: '10.0.0.9',
  holdTimeSec: 30,
  families: ['ipv4-unicast'],
  gracefulRestart: { restartTimeSec: 120, restarting: false, forwardingPreserved: true },
});
const localGrOpen = buildOpen({
  asn: 64512,
  bgpId: LOCAL,
  holdTimeSec: 90,
  families: ['ipv4-unicast'],
  gracefulRestart: { restartTimeSec: 120, restarting: false, forwardingPreserved: true },
});
const grCfg: FsmConfig = { ...cfg, localOpen: localGrOpen };

function neg(open: OpenMessage = peerOpen(), c: FsmConfig = cfg): Negotiated {
  const n = negotiateSession(c.localOpen, open, c);
  if (n instanceof BgpError) throw n;
  return n;
}

const started = { ...initialState, started: true };
const connect: FsmState = { ...started, state: State.Connect };
const active: FsmState = { ...started, state: State.Active };
const openSent: FsmState = { ...started, state: State.OpenSent, conn: { id: 1, dir: 'out' } };
const openConfirm: FsmState = {
  ...started,
  state: State.OpenConfirm,
  conn: { id: 1, dir: 'out', open: peerOpen() },
  negotiated: neg(),
};
const established: FsmState = { ...openConfirm, state: State.Established };
const establishedGr: FsmState = {
  ...established,
  conn: { id: 1, dir: 'out', open: grOpen },
  negotiated: neg(grOpen, grCfg),
};

const CR = 'connectRetry' as const;
const stopAll: Action[] = [
  { type: 'stopTimer', timer: CR },
  { type: 'stopTimer', timer: 'hold' },
  { type: 'stopTimer', timer: 'keepalive' },
];
const send = (conn: number, msg: NotificationMessage | OpenMessage | typeof KEEPALIVE): Action => sendMsg(conn, msg);
function sendMsg(conn: number, msg: NotificationMessage | OpenMessage | typeof KEEPALIVE): Action {
  return { type: 'send', conn, msg };
}
const idleHold = (ms: number): Action => ({ type: 'startTimer', timer: 'idleHold', ms });
const cease67 = notifications.cease(CeaseSubcode.ConnectionCollisionResolution);
const keepaliveTimers: Action[] = [
  { type: 'startTimer', timer: 'hold', ms: 30_000 },
  { type: 'startTimer', timer: 'keepalive', ms: 8750 },
];
const toOpenConfirm = (conn: number): Action[] => [
  { type: 'stopTimer', timer: CR },
  send(conn, KEEPALIVE),
  ...keepaliveTimers,
];
const down = (reason: string, graceful: boolean): Action => ({ type: 'down', reason: { reason, graceful } });

interface Row {
  name: string;
  from: FsmState;
  event: FsmEvent;
  to: State;
  actions: Action[];
  cfg?: FsmConfig;
  check?: (s: FsmState) => void;
}

const badAsOpen = {
  ...peerOpen(),
  myAs: 65001,
  capabilities: peerOpen().capabilities.map((c) => (c.type === 'four-octet-as' ? { ...c, asn: 65001 } : c)),
};
const badAsErr = negotiateSession(localOpen, badAsOpen, cfg) as BgpError;
const decodeErr = new BgpError(ErrorCode.UpdateMessage, UpdateSubcode.MalformedAttributeList, 'bad');
const upd = { type: 'update' as const, withdrawn: [], attrs: {}, nlri: [] };
const rr = { type: 'route-refresh' as const, afi: 1, safi: 1, subtype: 0 };
const adminDown = shutdownNotification('maintenance');

// One row per RFC 4271 §8.2.2 transition we implement (plus §6.8 collisions and RFC 4724 restarts).
const rows: Row[] = [
  // Idle
  {
    name: 'Idle + ManualStart -> Connect, connect, ConnectRetry (jittered)',
    from: initialState,
    event: { type: 'start' },
    to: State.Connect,
    actions: [
      { type: 'stopTimer', timer: 'idleHold' },
      { type: 'connect' },
      { type: 'startTimer', timer: CR, ms: 4375 },
    ],
  },
  {
    name: 'Idle + ManualStart (passive) -> Active, no connect',
    from: initialState,
    event: { type: 'start' },
    cfg: passive,
    to: State.Active,
    actions: [{ type: 'stopTimer', timer: 'idleHold' }],
  },
  {
    name: 'Idle + ManualStop -> Idle, not started',
    from: { ...started, failures: 2 },
    event: { type: 'stop', restart: false, reason: 'x' },
    to: State.Idle,
    actions: [{ type: 'stopTimer', timer: 'idleHold' }],
    check: (s) => assert.equal(s.started, false),
  },
  {
    name: 'Idle + TCP connection -> refused',
    from: started,
    event: { type: 'tcpAccepted', conn: 3 },
    to: State.Idle,
    actions: [{ type: 'close', conn: 3 }],
  },
  {
    name: 'Idle (started) + IdleHold expires -> Connect (automatic restart)',
    from: started,
    event: { type: 'timer', timer: 'idleHold' },
    to: State.Connect,
    actions: [{ type: 'connect' }, { type: 'startTimer', timer: CR, ms: 4375 }],
  },
  {
    name: 'Idle (stopped) + IdleHold expires -> stays Idle',
    from: initialState,
    event: { type: 'timer', timer: 'idleHold' },
    to: State.Idle,
    actions: [],
  },
  // Connect
  {
    name: 'Connect + ConnectRetry expires -> Connect, new attempt',
    from: connect,
    event: { type: 'timer', timer: CR },
    to: State.Connect,
    actions: [{ type: 'abortConnect' }, { type: 'connect' }, { type: 'startTimer', timer: CR, ms: 4375 }],
    check: (s) => assert.equal(s.connectRetryCounter, 1),
  },
  {
    name: 'Connect + TcpCRAcked -> OpenSent, OPEN, hold 4 min',
    from: connect,
    event: { type: 'tcpConnected', conn: 1 },
    to: State.OpenSent,
    actions: [{ type: 'stopTimer', timer: CR }, send(1, localOpen), { type: 'startTimer', timer: 'hold', ms: 240_000 }],
    check: (s) => assert.deepEqual(s.conn, { id: 1, dir: 'out' }),
  },
  {
    name: 'Connect + TcpConnectionConfirmed -> OpenSent on the inbound connection',
    from: connect,
    event: { type: 'tcpAccepted', conn: 2 },
    to: State.OpenSent,
    actions: [
      { type: 'abortConnect' },
      { type: 'stopTimer', timer: CR },
      send(2, localOpen),
      { type: 'startTimer', timer: 'hold', ms: 240_000 },
    ],
    check: (s) => assert.deepEqual(s.conn, { id: 2, dir: 'in' }),
  },
  {
    name: 'Connect + TcpConnectionFails -> Active (ConnectRetry keeps running)',
    from: connect,
    event: { type: 'tcpFailed', conn: 1, reason: 'ECONNREFUSED' },
    to: State.Active,
    actions: [],
  },
  {
    name: 'Connect + ManualStop -> Idle',
    from: connect,
    event: { type: 'stop', restart: false, reason: 'x' },
    to: State.Idle,
    actions: [{ type: 'abortConnect' }, ...stopAll],
    check: (s) => assert.equal(s.started, false),
  },
  // Active
  {
    name: 'Active + ConnectRetry expires -> Connect',
    from: active,
    event: { type: 'timer', timer: CR },
    to: State.Connect,
    actions: [{ type: 'connect' }, { type: 'startTimer', timer: CR, ms: 4375 }],
  },
  {
    name: 'Active (passive) + ConnectRetry expires -> stays Active',
    from: active,
    cfg: passive,
    event: { type: 'timer', timer: CR },
    to: State.Active,
    actions: [],
  },
  {
    name: 'Active + TcpConnectionConfirmed -> OpenSent',
    from: active,
    event: { type: 'tcpAccepted', conn: 4 },
    to: State.OpenSent,
    actions: [{ type: 'stopTimer', timer: CR }, send(4, localOpen), { type: 'startTimer', timer: 'hold', ms: 240_000 }],
  },
  {
    name: 'Active + ManualStop -> Idle',
    from: active,
    event: { type: 'stop', restart: false, reason: 'x' },
    to: State.Idle,
    actions: stopAll,
  },
  // OpenSent
  {
    name: 'OpenSent + valid OPEN -> OpenConfirm, KEEPALIVE, negotiated timers',
    from: openSent,
    event: { type: 'open', conn: 1, msg: peerOpen() },
    to: State.OpenConfirm,
    actions: toOpenConfirm(1),
    check: (s) => {
      assert.equal(s.negotiated?.holdTimeSec, 30);
      assert.equal(s.negotiated?.keepaliveSec, 10);
    },
  },
  {
    name: 'OpenSent + OPEN with hold time 0 -> OpenConfirm without hold/keepalive timers',
    from: openSent,
    event: { type: 'open', conn: 1, msg: peerOpen('10.0.0.9', { holdTimeSec: 0 }) },
    to: State.OpenConfirm,
    actions: [
      { type: 'stopTimer', timer: CR },
      send(1, KEEPALIVE),
      { type: 'stopTimer', timer: 'hold' },
      { type: 'stopTimer', timer: 'keepalive' },
    ],
  },
  {
    name: 'OpenSent + OPEN with wrong AS -> NOTIFICATION 2/2, Idle, IdleHold',
    from: openSent,
    event: { type: 'open', conn: 1, msg: badAsOpen },
    to: State.Idle,
    actions: [
      send(1, { type: 'notification', code: 2, subcode: 2, data: badAsErr.data }),
      { type: 'close', conn: 1 },
      ...stopAll,
      idleHold(875),
    ],
  },
  {
    name: 'OpenSent + hold timer expires -> NOTIFICATION 4/0, Idle',
    from: openSent,
    event: { type: 'timer', timer: 'hold' },
    to: State.Idle,
    actions: [send(1, notifications.holdTimerExpired()), { type: 'close', conn: 1 }, ...stopAll, idleHold(875)],
  },
  {
    name: 'OpenSent + TcpConnectionFails -> Active, ConnectRetry restarted',
    from: openSent,
    event: { type: 'tcpFailed', conn: 1, reason: 'reset' },
    to: State.Active,
    actions: [
      { type: 'close', conn: 1 },
      { type: 'stopTimer', timer: 'hold' },
      { type: 'startTimer', timer: CR, ms: 4375 },
    ],
  },
  {
    name: 'OpenSent + KEEPALIVE -> NOTIFICATION 5/1, Idle',
    from: openSent,
    event: { type: 'keepalive', conn: 1 },
    to: State.Idle,
    actions: [send(1, notifications.fsmError(1, 4)), { type: 'close', conn: 1 }, ...stopAll, idleHold(875)],
  },
  {
    name: 'OpenSent + NOTIFICATION -> Idle',
    from: openSent,
    event: { type: 'notification', conn: 1, msg: notifications.cease(5) },
    to: State.Idle,
    actions: [{ type: 'close', conn: 1 }, ...stopAll, idleHold(875)],
  },
  {
    name: 'OpenSent + ManualStop -> Cease 6/2 with communication, Idle',
    from: openSent,
    event: { type: 'stop', notification: adminDown, restart: false, reason: 'admin' },
    to: State.Idle,
    actions: [send(1, adminDown), { type: 'close', conn: 1 }, ...stopAll],
    check: (s) => assert.equal(s.started, false),
  },
  {
    name: 'OpenSent + header error -> NOTIFICATION from the error, Idle',
    from: openSent,
    event: { type: 'decodeError', conn: 1, error: decodeErr },
    to: State.Idle,
    actions: [
      send(1, { type: 'notification', code: 3, subcode: 1, data: decodeErr.data }),
      { type: 'close', conn: 1 },
      ...stopAll,
      idleHold(875),
    ],
  },
  // OpenConfirm
  {
    name: 'OpenConfirm + KEEPALIVE -> Established',
    from: openConfirm,
    event: { type: 'keepalive', conn: 1 },
    to: State.Established,
    actions: [
      { type: 'startTimer', timer: 'hold', ms: 30_000 },
      { type: 'established', conn: 1, session: openConfirm.negotiated as Negotiated },
    ],
  },
  {
    name: 'OpenConfirm + keepalive timer -> KEEPALIVE sent, timer restarted',
    from: openConfirm,
    event: { type: 'timer', timer: 'keepalive' },
    to: State.OpenConfirm,
    actions: [send(1, KEEPALIVE), { type: 'startTimer', timer: 'keepalive', ms: 8750 }],
  },
  {
    name: 'OpenConfirm + hold timer expires -> 4/0, Idle',
    from: openConfirm,
    event: { type: 'timer', timer: 'hold' },
    to: State.Idle,
    actions: [send(1, notifications.holdTimerExpired()), { type: 'close', conn: 1 }, ...stopAll, idleHold(875)],
  },
  {
    name: 'OpenConfirm + UPDATE -> NOTIFICATION 5/2, Idle',
    from: openConfirm,
    event: { type: 'update', conn: 1, msg: upd },
    to: State.Idle,
    actions: [send(1, notifications.fsmError(2, 2)), { type: 'close', conn: 1 }, ...stopAll, idleHold(875)],
  },
  {
    name: 'OpenConfirm + NOTIFICATION -> Idle',
    from: openConfirm,
    event: { type: 'notification', conn: 1, msg: notifications.cease(2) },
    to: State.Idle,
    actions: [{ type: 'close', conn: 1 }, ...stopAll, idleHold(875)],
  },
  {
    name: 'OpenConfirm + TcpConnectionFails -> Idle',
    from: openConfirm,
    event: { type: 'tcpFailed', conn: 1, reason: 'reset' },
    to: State.Idle,
    actions: [{ type: 'close', conn: 1 }, ...stopAll, idleHold(875)],
  },
  // Established
  {
    name: 'Established + KEEPALIVE -> hold timer restarted',
    from: established,
    event: { type: 'keepalive', conn: 1 },
    to: State.Established,
    actions: [{ type: 'startTimer', timer: 'hold', ms: 30_000 }],
  },
  {
    name: 'Established + UPDATE -> hold restarted, UPDATE to the RIB',
    from: established,
    event: { type: 'update', conn: 1, msg: upd },
    to: State.Established,
    actions: [
      { type: 'startTimer', timer: 'hold', ms: 30_000 },
      { type: 'update', msg: upd },
    ],
  },
  {
    name: 'Established + ROUTE-REFRESH -> re-advertise',
    from: established,
    event: { type: 'routeRefresh', conn: 1, msg: rr },
    to: State.Established,
    actions: [{ type: 'routeRefresh', msg: rr }],
  },
  {
    name: 'Established + keepalive timer -> KEEPALIVE',
    from: established,
    event: { type: 'timer', timer: 'keepalive' },
    to: State.Established,
    actions: [send(1, KEEPALIVE), { type: 'startTimer', timer: 'keepalive', ms: 8750 }],
  },
  {
    name: 'Established + hold timer expires -> 4/0, down (routes withdrawn), Idle',
    from: established,
    event: { type: 'timer', timer: 'hold' },
    to: State.Idle,
    actions: [
      send(1, notifications.holdTimerExpired()),
      { type: 'close', conn: 1 },
      ...stopAll,
      down('hold timer expired', false),
      idleHold(875),
    ],
  },
  {
    name: 'Established + TCP closed, GR negotiated -> down graceful (routes kept stale)',
    from: establishedGr,
    cfg: grCfg,
    event: { type: 'tcpFailed', conn: 1, reason: 'reset' },
    to: State.Idle,
    actions: [{ type: 'close', conn: 1 }, ...stopAll, down('reset', true), idleHold(875)],
  },
  {
    name: 'Established + TCP closed, no GR -> down not graceful',
    from: established,
    event: { type: 'tcpFailed', conn: 1, reason: 'reset' },
    to: State.Idle,
    actions: [{ type: 'close', conn: 1 }, ...stopAll, down('reset', false), idleHold(875)],
  },
  {
    name: 'Established + OPEN -> NOTIFICATION 5/3, Idle',
    from: established,
    event: { type: 'open', conn: 1, msg: peerOpen() },
    to: State.Idle,
    actions: [
      send(1, notifications.fsmError(3, 1)),
      { type: 'close', conn: 1 },
      ...stopAll,
      down('fsm error', false),
      idleHold(875),
    ],
  },
  {
    name: 'Established + NOTIFICATION -> down not graceful',
    from: establishedGr,
    cfg: grCfg,
    event: { type: 'notification', conn: 1, msg: notifications.cease(2) },
    to: State.Idle,
    actions: [{ type: 'close', conn: 1 }, ...stopAll, down('notification received 6/2', false), idleHold(875)],
  },
  {
    name: 'Established + ManualStop -> Cease 6/2, down, Idle, stopped',
    from: established,
    event: { type: 'stop', notification: adminDown, restart: false, reason: 'admin' },
    to: State.Idle,
    actions: [send(1, adminDown), { type: 'close', conn: 1 }, ...stopAll, down('admin', false)],
    check: (s) => assert.equal(s.started, false),
  },
  {
    name: 'Established + max prefixes -> Cease 6/1, down, restart after IdleHold',
    from: established,
    event: { type: 'stop', notification: notifications.maxPrefixes(1, 1, 10), restart: true, reason: 'max prefixes' },
    to: State.Idle,
    actions: [
      send(1, notifications.maxPrefixes(1, 1, 10)),
      { type: 'close', conn: 1 },
      ...stopAll,
      down('max prefixes', false),
      idleHold(875),
    ],
    check: (s) => assert.equal(s.started, true),
  },
  {
    name: 'Established + decode error -> NOTIFICATION, down',
    from: established,
    event: { type: 'decodeError', conn: 1, error: decodeErr },
    to: State.Idle,
    actions: [
      send(1, { type: 'notification', code: 3, subcode: 1, data: decodeErr.data }),
      { type: 'close', conn: 1 },
      ...stopAll,
      down('3/1 bad', false),
      idleHold(875),
    ],
  },
  {
    name: 'Established + message on an old connection -> that connection closed',
    from: established,
    event: { type: 'keepalive', conn: 9 },
    to: State.Established,
    actions: [{ type: 'close', conn: 9 }],
  },
  // §6.8 collisions
  {
    name: 'OpenConfirm + Cease 6/7 (peer kept the other connection) -> Active, no failure counted',
    from: openConfirm,
    event: { type: 'notification', conn: 1, msg: cease67 },
    to: State.Active,
    actions: [
      { type: 'close', conn: 1 },
      { type: 'stopTimer', timer: 'keepalive' },
      { type: 'stopTimer', timer: 'hold' },
      { type: 'startTimer', timer: CR, ms: 4375 },
    ],
    check: (s) => assert.equal(s.failures, 0),
  },
  {
    name: 'OpenSent + Cease 6/7 with another connection -> continue on it',
    from: { ...openSent, other: { id: 2, dir: 'in' } },
    event: { type: 'notification', conn: 1, msg: cease67 },
    to: State.OpenSent,
    actions: [
      { type: 'close', conn: 1 },
      { type: 'stopTimer', timer: 'keepalive' },
      { type: 'startTimer', timer: 'hold', ms: 240_000 },
    ],
    check: (s) => assert.equal(s.conn?.id, 2),
  },
  {
    name: 'OpenSent + second (inbound) connection -> OPEN on it, kept as other',
    from: openSent,
    event: { type: 'tcpAccepted', conn: 2 },
    to: State.OpenSent,
    actions: [send(2, localOpen)],
    check: (s) => assert.deepEqual(s.other, { id: 2, dir: 'in' }),
  },
  {
    name: 'OpenSent + third connection -> closed',
    from: { ...openSent, other: { id: 2, dir: 'in' } },
    event: { type: 'tcpAccepted', conn: 3 },
    to: State.OpenSent,
    actions: [{ type: 'close', conn: 3 }],
  },
  {
    name: 'collision, peer id higher: our outbound connection loses (Cease 6/7)',
    from: { ...openSent, other: { id: 2, dir: 'in' } },
    event: { type: 'open', conn: 1, msg: peerOpen('10.0.0.9') },
    to: State.OpenSent,
    actions: [send(1, cease67), { type: 'close', conn: 1 }],
    check: (s) => {
      assert.equal(s.conn?.id, 2);
      assert.equal(s.other, undefined);
    },
  },
  {
    name: 'collision, peer id lower: the inbound connection loses',
    from: { ...openSent, other: { id: 2, dir: 'in' } },
    event: { type: 'open', conn: 1, msg: peerOpen('10.0.0.1') },
    to: State.OpenConfirm,
    actions: [send(2, cease67), { type: 'close', conn: 2 }, ...toOpenConfirm(1)],
    check: (s) => assert.equal(s.other, undefined),
  },
  {
    name: 'OpenConfirm + OPEN on the other connection, peer id higher -> other wins',
    from: { ...openConfirm, other: { id: 2, dir: 'in' } },
    event: { type: 'open', conn: 2, msg: peerOpen('10.0.0.9') },
    to: State.OpenConfirm,
    actions: [send(1, cease67), { type: 'close', conn: 1 }, ...toOpenConfirm(2)],
    check: (s) => assert.equal(s.conn?.id, 2),
  },
  {
    name: 'OpenConfirm + OPEN on the other connection, peer id lower -> other closed',
    from: { ...openConfirm, other: { id: 2, dir: 'in' } },
    event: { type: 'open', conn: 2, msg: peerOpen('10.0.0.1') },
    to: State.OpenConfirm,
    actions: [send(2, cease67), { type: 'close', conn: 2 }],
    check: (s) => assert.equal(s.conn?.id, 1),
  },
  {
    name: 'OpenSent + main connection fails while another exists -> continue on the other',
    from: { ...openSent, other: { id: 2, dir: 'in' } },
    event: { type: 'tcpFailed', conn: 1, reason: 'reset' },
    to: State.OpenSent,
    actions: [
      { type: 'close', conn: 1 },
      { type: 'stopTimer', timer: 'keepalive' },
      { type: 'startTimer', timer: 'hold', ms: 240_000 },
    ],
    check: (s) => assert.equal(s.conn?.id, 2),
  },
  {
    name: 'other connection sends KEEPALIVE before OPEN -> 5/1 on it only',
    from: { ...openSent, other: { id: 2, dir: 'in' } },
    event: { type: 'keepalive', conn: 2 },
    to: State.OpenSent,
    actions: [send(2, notifications.fsmError(1, 4)), { type: 'close', conn: 2 }],
  },
  {
    name: 'Established + new inbound connection -> OPEN on it',
    from: established,
    event: { type: 'tcpAccepted', conn: 2 },
    to: State.Established,
    actions: [send(2, localOpen)],
  },
  {
    name: 'Established (no GR) + OPEN on new connection -> Cease 6/7 on it',
    from: { ...established, other: { id: 2, dir: 'in' } },
    event: { type: 'open', conn: 2, msg: peerOpen() },
    to: State.Established,
    actions: [send(2, cease67), { type: 'close', conn: 2 }],
  },
  {
    name: 'Established (GR) + OPEN on new connection -> peer restarted: down graceful, OpenConfirm on it',
    from: { ...establishedGr, other: { id: 2, dir: 'in' } },
    cfg: grCfg,
    event: { type: 'open', conn: 2, msg: grOpen },
    to: State.OpenConfirm,
    actions: [{ type: 'close', conn: 1 }, ...stopAll, down('peer restarted', true), ...toOpenConfirm(2)],
    check: (s) => assert.equal(s.conn?.id, 2),
  },
];

for (const r of rows) {
  test(r.name, () => {
    const { state, actions } = step(r.from, r.event, r.cfg ?? cfg, env);
    assert.equal(state.state, r.to);
    assert.deepEqual(actions, r.actions);
    r.check?.(state);
  });
}

test('IdleHold backs off exponentially per consecutive failure, capped', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 10].map((n) => idleHoldFor(n, cfg, { random: () => 0 })),
    [750, 1500, 3000, 6000, 6000, 6000],
  );
  const s1 = step({ ...openSent, failures: 2 }, { type: 'timer', timer: 'hold' }, cfg, env).state;
  assert.equal(s1.failures, 3);
});

test('reaching Established resets the failure count', () => {
  const s = step({ ...openConfirm, failures: 4 }, { type: 'keepalive', conn: 1 }, cfg, env).state;
  assert.equal(s.failures, 0);
});

test('jitter stays within 0.75..1.0 of the value', () => {
  assert.equal(jitter(1000, { random: () => 0 }), 750);
  assert.equal(jitter(1000, { random: () => 0.999999 }), 1000);
});

test('collisionLoser: higher BGP identifier keeps the connection it initiated (RFC 4271 §6.8)', () => {
  const out = { id: 1, dir: 'out' as const };
  const inn = { id: 2, dir: 'in' as const };
  assert.equal(collisionLoser('10.0.0.1', '10.0.0.2', out, inn), out);
  assert.equal(collisionLoser('10.0.0.3', '10.0.0.2', out, inn), inn);
  // numeric, not lexical comparison
  assert.equal(collisionLoser('9.0.0.1', '10.0.0.1', out, inn), out);
});

test('negotiation: hold time is the minimum, keepalive a third, families intersected', () => {
  const n = neg(buildOpen({ asn: 64512, bgpId: '10.0.0.9', holdTimeSec: 9, families: ['ipv6-unicast'] }));
  assert.equal(n.holdTimeSec, 9);
  assert.equal(n.keepaliveSec, 3);
  assert.deepEqual(n.families, ['ipv6-unicast']);
  assert.equal(n.isIbgp, true);
  assert.equal(n.routeRefresh, true);
  assert.equal(n.ctx.as4, true);
});

test('negotiation: an OPEN without MP capabilities means IPv4 unicast (RFC 4760 §8)', () => {
  assert.deepEqual(
    openFamilies({ type: 'open', version: 4, myAs: 1, holdTimeSec: 90, bgpId: '1.1.1.1', capabilities: [] }),
    ['ipv4-unicast'],
  );
});

test('negotiation: OPEN with hold time 1 -> 2/6; own identifier on iBGP -> 2/3', () => {
  const e1 = negotiateSession(localOpen, peerOpen('10.0.0.9', { holdTimeSec: 1 }), cfg);
  assert.ok(e1 instanceof BgpError);
  assert.deepEqual([e1.code, e1.subcode], [2, 6]);
  const e2 = negotiateSession(localOpen, peerOpen(LOCAL), cfg);
  assert.ok(e2 instanceof BgpError);
  assert.deepEqual([e2.code, e2.subcode], [2, 3]);
});

test('negotiation: graceful restart only when both sides advertise it', () => {
  assert.equal(neg(grOpen).peerGracefulRestart, undefined);
  const n = neg(grOpen, grCfg);
  assert.deepEqual(n.peerGracefulRestart, {
    restartTimeSec: 120,
    restarting: false,
    notification: false,
    families: [{ family: 'ipv4-unicast', forwardingPreserved: true }],
  });
});

test('4-octet AS: OPEN carries AS_TRANS and the capability', () => {
  const o = buildOpen({ asn: 4200000001, bgpId: LOCAL, holdTimeSec: 90, families: ['ipv4-unicast'] });
  assert.equal(o.myAs, 23456);
  assert.ok(o.capabilities.some((c) => c.type === 'four-octet-as' && c.asn === 4200000001));
});
