/**
 * The BGP finite state machine (RFC 4271 §8) as a pure reducer: (state, event) -> (state, actions).
 * Timers, sends, connects and closes are actions that the session driver performs.
 *
 * Complicating factors:
 * - Both ends listen and connect (Calico mesh), so two TCP connections to one peer can exist at
 *   once. The FSM tracks the main connection (`conn`) and at most one more (`other`); when an OPEN
 *   arrives while both exist, RFC 4271 §6.8 decides which one is closed with Cease 6/7.
 * - A connection that arrives while Established is kept aside: if the peer sends an OPEN on it
 *   and negotiated graceful restart, the peer has restarted (RFC 4724 §4.2) and the old session
 *   goes down gracefully; otherwise the new connection is refused with Cease 6/7.
 * - Connect failures go to Active with the ConnectRetry timer still running (the RFC's DelayOpen
 *   variant, which is what BIRD and GoBGP do) rather than to Idle.
 * - After an error the FSM goes to Idle and, if still started, restarts itself after the IdleHold
 *   timer, which doubles per consecutive failure up to a maximum (RFC 4271 §8.1.1
 *   DampPeerOscillations). Reaching Established resets the count.
 * - Jitter (RFC 4271 §10: 0.75..1.0 of the value) applies to ConnectRetry, Keepalive and IdleHold,
 *   using the injected `random()`; the hold timer is exact.
 * - Timer events reach the FSM only while the driver considers the timer armed (generation
 *   numbers), so an expiry that does not fit the state is ignored rather than treated as an error.
 */
import {
  type BgpError,
  CeaseSubcode,
  errorToNotification,
  FsmSubcode,
  KEEPALIVE,
  type NotificationMessage,
  notifications,
  type OpenMessage,
} from '../codec/index.js';
import type { Action, DownReason } from './actions.js';
import { collisionLoser } from './collision.js';
import { type FsmEvent, TimerName } from './events.js';
import { negotiateSession } from './negotiate.js';
import { type ConnRef, type FsmState, type Negotiated, State } from './states.js';

export interface FsmConfig {
  localAs: number;
  localBgpId: string;
  peerAs: number;
  /** Never connect; wait for the peer (RFC 4271 §8.1.1 PassiveTcpEstablishment). */
  passive: boolean;
  /** The OPEN we send (see `buildOpen`). */
  localOpen: OpenMessage;
  connectRetryMs: number;
  /** Configured keepalive (default hold/3). */
  keepaliveSec?: number;
  /** IdleHold after the first failure; doubles per consecutive failure. */
  idleHoldMs: number;
  idleHoldMaxMs: number;
  /** Hold timer while waiting for the OPEN (RFC 4271 §8.2.2 suggests 4 minutes). */
  openHoldMs: number;
}

/** Injected randomness for jitter; `random()` is uniform in [0, 1). */
export interface FsmEnv {
  random(): number;
}

export interface StepResult {
  state: FsmState;
  actions: Action[];
}

const FSM_SUBCODE: Partial<Record<State, number>> = {
  [State.OpenSent]: FsmSubcode.OpenSent,
  [State.OpenConfirm]: FsmSubcode.OpenConfirm,
  [State.Established]: FsmSubcode.Established,
};
const MSG_TYPE = { open: 1, update: 2, notification: 3, keepalive: 4, routeRefresh: 5 } as const;

/** RFC 4271 §10 jitter: the value scaled by a random factor in [0.75, 1.0). */
export function jitter(ms: number, env: FsmEnv): number {
  return Math.round(ms * (0.75 + 0.25 * env.random()));
}

/** IdleHold for the n-th consecutive failure (n >= 1): base * 2^(n-1), capped, jittered. */
export function idleHoldFor(failures: number, cfg: FsmConfig, env: FsmEnv): number {
  const exp = Math.min(Math.max(failures - 1, 0), 20);
  return jitter(Math.min(cfg.idleHoldMs * 2 ** exp, cfg.idleHoldMaxMs), env);
}

const ALL_TIMERS: Action[] = [
  { type: 'stopTimer', timer: TimerName.ConnectRetry },
  { type: 'stopTimer', timer: TimerName.Hold },
  { type: 'stopTimer', timer: TimerName.Keepalive },
];

/** One FSM step. Pure: the result depends only on the arguments (and `env.random()`). */
export function step(s: FsmState, e: FsmEvent, cfg: FsmConfig, env: FsmEnv): StepResult {
  const actions: Action[] = [];
  const next = reduce(s, e, cfg, env, actions);
  return { state: next, actions };
}

function reduce(s: FsmState, e: FsmEvent, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  switch (e.type) {
    case 'start':
      return start(s, cfg, env, out);
    case 'stop':
      return stop(s, e.notification, e.restart, e.reason, cfg, env, out);
    case 'timer':
      return onTimer(s, e.timer, cfg, env, out);
    default:
      break;
  }
  // Connection events.
  if (s.conn?.id === e.conn) return onMain(s, e, cfg, env, out);
  if (s.other?.id === e.conn) return onOther(s, e, cfg, env, out);
  return onNewConn(s, e, cfg, env, out);
}

// ---------------------------------------------------------------- administrative + timers

function start(s: FsmState, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  if (s.state !== State.Idle) return s.started ? s : { ...s, started: true };
  out.push({ type: 'stopTimer', timer: TimerName.IdleHold });
  // RFC 4271 §8.2.2 Idle, Events 1/3/4/5: ConnectRetryCounter <- 0 on a manual start.
  if (cfg.passive) return { ...s, state: State.Active, started: true };
  out.push(
    { type: 'connect' },
    { type: 'startTimer', timer: TimerName.ConnectRetry, ms: jitter(cfg.connectRetryMs, env) },
  );
  return { ...s, state: State.Connect, started: true };
}

function autoStart(s: FsmState, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  if (cfg.passive) return { ...s, state: State.Active };
  out.push(
    { type: 'connect' },
    { type: 'startTimer', timer: TimerName.ConnectRetry, ms: jitter(cfg.connectRetryMs, env) },
  );
  return { ...s, state: State.Connect };
}

function stop(
  s: FsmState,
  notification: NotificationMessage | undefined,
  restart: boolean,
  reason: string,
  cfg: FsmConfig,
  env: FsmEnv,
  out: Action[],
): FsmState {
  if (s.state === State.Idle) {
    if (restart) return s;
    out.push({ type: 'stopTimer', timer: TimerName.IdleHold });
    return { ...s, started: false, connectRetryCounter: 0 };
  }
  if (s.state === State.Connect) out.push({ type: 'abortConnect' });
  if (notification && s.conn && s.state !== State.Connect && s.state !== State.Active) {
    out.push({ type: 'send', conn: s.conn.id, msg: notification });
  }
  // RFC 4271 §8.2.2 ManualStop: ConnectRetryCounter <- 0; automatic stops count as failures.
  return toIdle(
    s,
    { reason, failure: restart, down: { reason, graceful: false }, keepStarted: restart },
    cfg,
    env,
    out,
  );
}

function onTimer(s: FsmState, timer: TimerName, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  switch (timer) {
    case TimerName.IdleHold:
      return s.state === State.Idle && s.started ? autoStart(s, cfg, env, out) : s;
    case TimerName.ConnectRetry:
      if (s.state === State.Connect) {
        // RFC 4271 §8.2.2 Connect, Event 9: drop the attempt, restart the timer, connect again.
        out.push(
          { type: 'abortConnect' },
          { type: 'connect' },
          { type: 'startTimer', timer: TimerName.ConnectRetry, ms: jitter(cfg.connectRetryMs, env) },
        );
        return { ...s, connectRetryCounter: s.connectRetryCounter + 1 };
      }
      if (s.state === State.Active && !cfg.passive) {
        // RFC 4271 §8.2.2 Active, Event 9: initiate a connection, go to Connect.
        out.push(
          { type: 'connect' },
          { type: 'startTimer', timer: TimerName.ConnectRetry, ms: jitter(cfg.connectRetryMs, env) },
        );
        return { ...s, state: State.Connect, connectRetryCounter: s.connectRetryCounter + 1 };
      }
      return s;
    case TimerName.Hold:
      if (s.state === State.OpenSent || s.state === State.OpenConfirm || s.state === State.Established) {
        // RFC 4271 §8.2.2 Event 10: NOTIFICATION Hold Timer Expired, drop the connection, Idle.
        if (s.conn) out.push({ type: 'send', conn: s.conn.id, msg: notifications.holdTimerExpired() });
        return toIdle(
          s,
          { reason: 'hold timer expired', failure: true, down: { reason: 'hold timer expired', graceful: false } },
          cfg,
          env,
          out,
        );
      }
      return s;
    case TimerName.Keepalive:
      if ((s.state === State.OpenConfirm || s.state === State.Established) && s.conn && s.negotiated) {
        // RFC 4271 §8.2.2 Event 11: send KEEPALIVE, restart the timer.
        out.push(
          { type: 'send', conn: s.conn.id, msg: KEEPALIVE },
          { type: 'startTimer', timer: TimerName.Keepalive, ms: jitter(s.negotiated.keepaliveSec * 1000, env) },
        );
      }
      return s;
  }
}

// ---------------------------------------------------------------- connections

type ConnEvent = Exclude<FsmEvent, { type: 'start' } | { type: 'stop' } | { type: 'timer' }>;

/** An event for a connection the FSM does not know yet (or any more). */
function onNewConn(s: FsmState, e: ConnEvent, cfg: FsmConfig, _env: FsmEnv, out: Action[]): FsmState {
  switch (e.type) {
    case 'tcpConnected':
    case 'tcpAccepted': {
      const dir = e.type === 'tcpConnected' ? 'out' : 'in';
      if (s.state === State.Connect || (s.state === State.Active && dir === 'in')) {
        // RFC 4271 §8.2.2 Connect/Active, Events 16/17: stop ConnectRetry, send OPEN, hold timer large, OpenSent.
        if (s.state === State.Connect && dir === 'in') out.push({ type: 'abortConnect' });
        out.push(
          { type: 'stopTimer', timer: TimerName.ConnectRetry },
          { type: 'send', conn: e.conn, msg: cfg.localOpen },
          { type: 'startTimer', timer: TimerName.Hold, ms: cfg.openHoldMs },
        );
        return { ...s, state: State.OpenSent, conn: { id: e.conn, dir } };
      }
      if (
        dir === 'in' &&
        s.other === undefined &&
        (s.state === State.OpenSent || s.state === State.OpenConfirm || s.state === State.Established)
      ) {
        // RFC 4271 §6.8: a second connection; answer its OPEN, resolve when the peer's OPEN arrives.
        out.push({ type: 'send', conn: e.conn, msg: cfg.localOpen });
        return { ...s, other: { id: e.conn, dir } };
      }
      // Idle (RFC 4271 §8.2.2 Idle: refuse connections), or a third connection.
      out.push({ type: 'close', conn: e.conn });
      return s;
    }
    case 'tcpFailed':
      if (s.state === State.Connect) {
        // The outgoing attempt failed: wait in Active for the peer or the next ConnectRetry.
        return { ...s, state: State.Active, lastError: e.reason };
      }
      return s;
    default:
      // A message from a connection already dropped: make sure it is closed, otherwise ignore.
      out.push({ type: 'close', conn: e.conn });
      return s;
  }
}

function onMain(s: FsmState, e: ConnEvent, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  const conn = s.conn as ConnRef;
  const fsmError = (t: keyof typeof MSG_TYPE): FsmState => {
    // RFC 6608: unexpected message -> NOTIFICATION 5/<state>.
    out.push({ type: 'send', conn: conn.id, msg: notifications.fsmError(FSM_SUBCODE[s.state] ?? 0, MSG_TYPE[t]) });
    return toIdle(
      s,
      { reason: `unexpected ${t} in ${s.state}`, failure: true, down: { reason: 'fsm error', graceful: false } },
      cfg,
      env,
      out,
    );
  };
  switch (e.type) {
    case 'tcpConnected':
    case 'tcpAccepted':
      return s;
    case 'tcpFailed': {
      const graceful = s.state === State.Established && s.negotiated?.peerGracefulRestart !== undefined;
      if (s.other && (s.state === State.OpenSent || s.state === State.OpenConfirm)) {
        // The colliding connection survives: continue on it.
        out.push(
          { type: 'close', conn: conn.id },
          { type: 'stopTimer', timer: TimerName.Keepalive },
          { type: 'startTimer', timer: TimerName.Hold, ms: cfg.openHoldMs },
        );
        const { other, negotiated: _n, ...rest } = s;
        return { ...rest, state: State.OpenSent, conn: other };
      }
      if (s.state === State.OpenSent) {
        // RFC 4271 §8.2.2 OpenSent, Event 18: close, restart ConnectRetry, Active.
        out.push(
          { type: 'close', conn: conn.id },
          { type: 'stopTimer', timer: TimerName.Hold },
          { type: 'startTimer', timer: TimerName.ConnectRetry, ms: jitter(cfg.connectRetryMs, env) },
        );
        const { conn: _c, ...rest } = s;
        return { ...rest, state: State.Active, lastError: e.reason };
      }
      return toIdle(s, { reason: e.reason, failure: true, down: { reason: e.reason, graceful } }, cfg, env, out);
    }
    case 'decodeError':
      return sendErrorToIdle(s, e.error, cfg, env, out);
    case 'notification': {
      const reason = `notification received ${e.msg.code}/${e.msg.subcode}${e.msg.communication ? `: ${e.msg.communication}` : ''}`;
      if (
        e.msg.code === 6 &&
        e.msg.subcode === CeaseSubcode.ConnectionCollisionResolution &&
        (s.state === State.OpenSent || s.state === State.OpenConfirm)
      ) {
        // RFC 4271 §6.8: the peer kept the other connection. Not a failure: continue on the other
        // connection if we have it, else wait in Active for it to arrive.
        out.push({ type: 'close', conn: conn.id }, { type: 'stopTimer', timer: TimerName.Keepalive });
        const { other, negotiated: _n, conn: _c, ...rest } = s;
        if (other) {
          out.push({ type: 'startTimer', timer: TimerName.Hold, ms: cfg.openHoldMs });
          return { ...rest, state: State.OpenSent, conn: other };
        }
        out.push({ type: 'stopTimer', timer: TimerName.Hold });
        if (!cfg.passive)
          out.push({ type: 'startTimer', timer: TimerName.ConnectRetry, ms: jitter(cfg.connectRetryMs, env) });
        return { ...rest, state: State.Active };
      }
      return toIdle(s, { reason, failure: true, down: { reason, graceful: false } }, cfg, env, out);
    }
    case 'open':
      if (s.state !== State.OpenSent) return fsmError('open');
      return receiveOpen(s, conn, e.msg, cfg, env, out);
    case 'keepalive':
      if (s.state === State.OpenSent) return fsmError('keepalive');
      restartHold(s, out);
      if (s.state === State.OpenConfirm) {
        // RFC 4271 §8.2.2 OpenConfirm, Event 26: Established.
        out.push({ type: 'established', conn: conn.id, session: s.negotiated as Negotiated });
        const { lastError: _l, ...rest } = s;
        return { ...rest, state: State.Established, failures: 0, connectRetryCounter: 0 };
      }
      return s;
    case 'update':
      if (s.state !== State.Established) return fsmError('update');
      restartHold(s, out);
      out.push({ type: 'update', msg: e.msg });
      return s;
    case 'routeRefresh':
      if (s.state !== State.Established) return fsmError('routeRefresh');
      out.push({ type: 'routeRefresh', msg: e.msg });
      return s;
  }
}

/** Events on the second connection (collision candidate or reconnecting peer). */
function onOther(s: FsmState, e: ConnEvent, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  const other = s.other as ConnRef;
  const { other: _o, ...without } = s;
  switch (e.type) {
    case 'tcpConnected':
    case 'tcpAccepted':
      return s;
    case 'open': {
      const n = negotiateSession(cfg.localOpen, e.msg, cfg);
      if (!('peerBgpId' in n)) {
        out.push({ type: 'send', conn: other.id, msg: errorToNotification(n) }, { type: 'close', conn: other.id });
        return without;
      }
      if (s.state === State.Established) {
        if (s.negotiated?.peerGracefulRestart === undefined) {
          // RFC 4271 §6.8: a collision with an Established session closes the new connection.
          out.push(
            { type: 'send', conn: other.id, msg: notifications.cease(CeaseSubcode.ConnectionCollisionResolution) },
            { type: 'close', conn: other.id },
          );
          return without;
        }
        // RFC 4724 §4.2: the peer restarted; keep its routes (stale) and continue on the new connection.
        out.push({ type: 'close', conn: (s.conn as ConnRef).id }, ...ALL_TIMERS, {
          type: 'down',
          reason: { reason: 'peer restarted', graceful: true },
        });
        return openConfirm({ ...without, state: State.OpenSent, conn: other }, other, e.msg, n, env, out);
      }
      const conn = s.conn as ConnRef;
      const loser = collisionLoser(cfg.localBgpId, n.peerBgpId, conn, other);
      out.push(
        { type: 'send', conn: loser.id, msg: notifications.cease(CeaseSubcode.ConnectionCollisionResolution) },
        { type: 'close', conn: loser.id },
      );
      if (loser.id === other.id) return without;
      // The new connection wins: it becomes the session, in OpenConfirm.
      return openConfirm({ ...without, conn: other }, other, e.msg, n, env, out);
    }
    case 'decodeError':
      out.push({ type: 'send', conn: other.id, msg: errorToNotification(e.error) }, { type: 'close', conn: other.id });
      return without;
    case 'keepalive':
    case 'update':
    case 'routeRefresh':
      // Before its OPEN: RFC 6608 FSM error in OpenSent, on that connection only.
      out.push(
        { type: 'send', conn: other.id, msg: notifications.fsmError(FsmSubcode.OpenSent, MSG_TYPE[e.type]) },
        { type: 'close', conn: other.id },
      );
      return without;
    case 'notification':
    case 'tcpFailed':
      out.push({ type: 'close', conn: other.id });
      return without;
  }
}

function receiveOpen(
  s: FsmState,
  conn: ConnRef,
  open: OpenMessage,
  cfg: FsmConfig,
  env: FsmEnv,
  out: Action[],
): FsmState {
  const n = negotiateSession(cfg.localOpen, open, cfg);
  if (!('peerBgpId' in n)) return sendErrorToIdle(s, n, cfg, env, out);
  if (s.other) {
    // RFC 4271 §6.8 collision detection, now that the peer's identifier is known.
    const loser = collisionLoser(cfg.localBgpId, n.peerBgpId, conn, s.other);
    out.push(
      { type: 'send', conn: loser.id, msg: notifications.cease(CeaseSubcode.ConnectionCollisionResolution) },
      { type: 'close', conn: loser.id },
    );
    const { other, ...rest } = s;
    if (loser.id === conn.id) return { ...rest, conn: other };
    return openConfirm(rest, conn, open, n, env, out);
  }
  return openConfirm(s, conn, open, n, env, out);
}

/** RFC 4271 §8.2.2 OpenSent, Event 19: KEEPALIVE, negotiated hold + keepalive timers, OpenConfirm. */
function openConfirm(
  s: FsmState,
  conn: ConnRef,
  open: OpenMessage,
  n: Negotiated,
  env: FsmEnv,
  out: Action[],
): FsmState {
  out.push({ type: 'stopTimer', timer: TimerName.ConnectRetry }, { type: 'send', conn: conn.id, msg: KEEPALIVE });
  if (n.holdTimeSec > 0) {
    out.push(
      { type: 'startTimer', timer: TimerName.Hold, ms: n.holdTimeSec * 1000 },
      { type: 'startTimer', timer: TimerName.Keepalive, ms: jitter(n.keepaliveSec * 1000, env) },
    );
  } else {
    out.push({ type: 'stopTimer', timer: TimerName.Hold }, { type: 'stopTimer', timer: TimerName.Keepalive });
  }
  return { ...s, state: State.OpenConfirm, conn: { ...conn, open }, negotiated: n };
}

function restartHold(s: FsmState, out: Action[]): void {
  const hold = s.negotiated?.holdTimeSec ?? 0;
  if (hold > 0) out.push({ type: 'startTimer', timer: TimerName.Hold, ms: hold * 1000 });
}

function sendErrorToIdle(s: FsmState, err: BgpError, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  if (s.conn) out.push({ type: 'send', conn: s.conn.id, msg: errorToNotification(err) });
  const reason = `${err.code}/${err.subcode} ${err.message}`;
  return toIdle(s, { reason, failure: true, down: { reason, graceful: false } }, cfg, env, out);
}

interface IdleOpts {
  reason: string;
  /** Counts towards the backoff and restarts after IdleHold (if still started). */
  failure: boolean;
  /** Reported if the session was Established. */
  down: DownReason;
  /** For stop events: stay started (automatic restart) or not. */
  keepStarted?: boolean;
}

/** Leave for Idle: close both connections, stop the timers, report `down`, arm IdleHold on failure. */
function toIdle(s: FsmState, o: IdleOpts, cfg: FsmConfig, env: FsmEnv, out: Action[]): FsmState {
  if (s.conn) out.push({ type: 'close', conn: s.conn.id });
  if (s.other) out.push({ type: 'close', conn: s.other.id });
  out.push(...ALL_TIMERS);
  if (s.state === State.Established) out.push({ type: 'down', reason: o.down });
  const started = o.keepStarted ?? s.started;
  const failures = o.failure ? s.failures + 1 : 0;
  if (started && o.failure)
    out.push({ type: 'startTimer', timer: TimerName.IdleHold, ms: idleHoldFor(failures, cfg, env) });
  return {
    state: State.Idle,
    started,
    connectRetryCounter: o.failure ? s.connectRetryCounter + 1 : 0,
    failures,
    lastError: o.reason,
  };
}
