/**
 * Session driver: one per configured peer. It owns the TCP connections (socket + framer + codec
 * context each), feeds decoded messages to the pure FSM and performs the FSM's actions against
 * the sockets and an injected Clock.
 *
 * Complicating factors:
 * - Timers carry a generation number: stopping or re-arming a timer bumps it, so a callback
 *   from a replaced timer that was already queued is dropped (grpc-js transitionToState idea).
 * - Actions can cause events (a close while another event is being handled): events raised while
 *   the FSM is stepping are queued and run afterwards, so `step` never re-enters.
 * - RFC 7606: UPDATE errors whose action is weaker than session-reset are applied here
 *   (treat-as-withdraw rewrites the UPDATE, attribute-discard was done by the decoder);
 *   afi-safi-disable is a session reset until families can be disabled (STYLE §4).
 * - Closing a connection ends it (flushing a NOTIFICATION) and destroys it shortly after.
 */
import type { Clock, TimerHandle } from '../../agent/common/clock.js';
import type { Logger } from '../../agent/common/logger.js';
import {
  type BgpError,
  type BgpMessage,
  type CodecContext,
  DEFAULT_CONTEXT,
  decodeMessage,
  encodeMessage,
  Framer,
  maxMessageLen,
  type NotificationMessage,
  type RouteRefreshMessage,
  strongestError,
  treatAsWithdraw,
  type UpdateMessage,
} from '../codec/index.js';
import {
  type Action,
  type DownReason,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
  initialState,
  type Negotiated,
  State,
  step,
  TimerName,
} from '../fsm/index.js';
import { type Conn, type Network, unmapAddress } from './transport.js';

export interface SessionHooks {
  onState(from: State, to: State, s: FsmState): void;
  onEstablished(n: Negotiated, localAddress: string | undefined): void;
  onDown(reason: DownReason): void;
  onUpdate(msg: UpdateMessage): void;
  onRouteRefresh(msg: RouteRefreshMessage): void;
  /** Every message in or out (counters) and UPDATE errors handled without a reset. */
  onMessage(dir: 'in' | 'out', msg: BgpMessage): void;
  onAttrError?(err: BgpError): void;
  /** A batch of received messages was handled (the queue is empty or this turn's budget used). */
  onBatchDone?(): void;
  /** The established connection's write buffer drained (back-pressure: exports may resume). */
  onDrain?(): void;
}

export interface SessionOptions {
  address: string;
  port: number;
  localAddress?: string;
  /** eBGP without multihop: only connect while the peer is on a directly connected network. */
  directOnly?: boolean;
  fsm: FsmConfig;
  clock: Clock;
  network: Network;
  log: Logger;
  hooks: SessionHooks;
}

interface LiveConn {
  id: number;
  sock: Conn;
  framer: Framer;
  ctx: CodecContext;
  /** Handles what arrived while input was paused (set by attach). */
  kick?: () => void;
}

const CLOSE_GRACE_MS = 2000;
/** Bytes of received messages handled per connection and event-loop turn (see attach). */
const TURN_BUDGET = 16 * 1024;
const TIMER_NAMES = Object.values(TimerName);

export class Session {
  private fsm: FsmState = initialState;
  private readonly conns = new Map<number, LiveConn>();
  private pending: { id: number; sock: Conn } | undefined;
  private nextId = 1;
  private readonly timers = new Map<TimerName, { gen: number; handle?: TimerHandle }>();
  private readonly queue: FsmEvent[] = [];
  private stepping = false;
  private inputPaused = false;
  fsmConfig: FsmConfig;

  constructor(private readonly o: SessionOptions) {
    this.fsmConfig = o.fsm;
    for (const t of TIMER_NAMES) this.timers.set(t, { gen: 0 });
  }

  get state(): State {
    return this.fsm.state;
  }
  get fsmState(): FsmState {
    return this.fsm;
  }
  get negotiated(): Negotiated | undefined {
    return this.fsm.state === State.Established ? this.fsm.negotiated : undefined;
  }
  /** Local address of the established connection. */
  get localAddress(): string | undefined {
    const c = this.fsm.conn ? this.conns.get(this.fsm.conn.id) : undefined;
    return unmapAddress(c?.sock.localAddress);
  }

  start(): void {
    this.dispatch({ type: 'start' });
  }

  stop(reason: string, restart: boolean, notification?: NotificationMessage): void {
    this.dispatch(notification ? { type: 'stop', reason, restart, notification } : { type: 'stop', reason, restart });
  }

  /** A connection from the peer's address arrived on the listener. */
  accept(sock: Conn): void {
    if (this.offLink()) {
      this.o.log.info({}, 'connection refused: eBGP peer not on a directly connected network (configure multihop)');
      sock.destroy();
      return;
    }
    const id = this.nextId++;
    this.attach(id, sock);
    this.dispatch({ type: 'tcpAccepted', conn: id });
  }

  /** An eBGP single-hop peer that is not on a directly connected network (now). */
  private offLink(): boolean {
    const net = this.o.network;
    return this.o.directOnly === true && net.onLink !== undefined && !net.onLink(this.o.address);
  }

  /** Sends a message on the established connection (UPDATE, ROUTE-REFRESH); false if not established. */
  send(msg: BgpMessage): boolean {
    const c = this.establishedConn();
    if (!c) return false;
    this.write(c, msg);
    return true;
  }

  /** Sends pre-encoded UPDATEs on the established connection. */
  sendEncoded(frames: readonly Buffer[], msgs: number): boolean {
    const c = this.establishedConn();
    if (!c) return false;
    if (frames.length === 1) c.sock.write(frames[0] as Buffer);
    else if (frames.length > 1) c.sock.write(Buffer.concat(frames as Buffer[]));
    for (let i = 0; i < msgs; i++) this.o.hooks.onMessage('out', UPDATE_MARK);
    return true;
  }

  /**
   * Stops handling received messages (the socket is paused: TCP flow control slows the peer
   * down) until resumeInput(); for a consumer of route events that is not keeping up.
   */
  pauseInput(): void {
    this.inputPaused = true;
    for (const c of this.conns.values()) c.sock.pause?.();
  }

  resumeInput(): void {
    if (!this.inputPaused) return;
    this.inputPaused = false;
    for (const c of [...this.conns.values()]) c.kick?.();
  }

  /** Bytes queued on the established connection and not yet taken by the kernel (0 if none). */
  get writableLength(): number {
    return this.establishedConn()?.sock.writableLength ?? 0;
  }

  /** The codec context of the established connection. */
  get ctx(): CodecContext {
    return this.establishedConn()?.ctx ?? DEFAULT_CONTEXT;
  }

  /** Drop every connection and timer without sending anything (process exit in tests). */
  destroy(): void {
    for (const t of TIMER_NAMES) this.stopTimer(t);
    this.pending?.sock.destroy();
    this.pending = undefined;
    for (const c of this.conns.values()) c.sock.destroy();
    this.conns.clear();
  }

  private establishedConn(): LiveConn | undefined {
    if (this.fsm.state !== State.Established || !this.fsm.conn) return undefined;
    return this.conns.get(this.fsm.conn.id);
  }

  private dispatch(e: FsmEvent): void {
    this.queue.push(e);
    if (this.stepping) return;
    this.stepping = true;
    try {
      for (let ev = this.queue.shift(); ev; ev = this.queue.shift()) {
        const from = this.fsm.state;
        const { state, actions } = step(this.fsm, ev, this.fsmConfig, this.o.clock);
        this.fsm = state;
        if (from !== state.state) this.o.hooks.onState(from, state.state, state);
        for (const a of actions) this.run(a);
      }
    } finally {
      this.stepping = false;
    }
  }

  private run(a: Action): void {
    switch (a.type) {
      case 'connect':
        this.connect();
        return;
      case 'abortConnect':
        this.pending?.sock.destroy();
        this.pending = undefined;
        return;
      case 'send': {
        const c = this.conns.get(a.conn);
        if (c) this.write(c, a.msg);
        return;
      }
      case 'close':
        this.close(a.conn);
        return;
      case 'startTimer':
        this.startTimer(a.timer, a.ms);
        return;
      case 'stopTimer':
        this.stopTimer(a.timer);
        return;
      case 'established': {
        const c = this.conns.get(a.conn);
        if (c) {
          c.ctx = a.session.ctx;
          c.framer.maxMessageLen = maxMessageLen(c.ctx);
        }
        this.o.hooks.onEstablished(a.session, unmapAddress(c?.sock.localAddress));
        return;
      }
      case 'down':
        this.o.hooks.onDown(a.reason);
        return;
      case 'update':
        this.o.hooks.onUpdate(a.msg);
        return;
      case 'routeRefresh':
        this.o.hooks.onRouteRefresh(a.msg);
        return;
    }
  }

  private write(c: LiveConn, msg: BgpMessage): void {
    let buf: Buffer;
    try {
      buf = encodeMessage(msg, c.ctx);
    } catch (err) {
      this.o.log.error({ err, msgType: msg.type }, 'encode failed');
      return;
    }
    c.sock.write(buf);
    this.o.hooks.onMessage('out', msg);
  }

  private connect(): void {
    this.pending?.sock.destroy();
    const id = this.nextId++;
    if (this.offLink()) {
      // Like a failed connect: the FSM retries after its backoff (the interface may come up).
      this.dispatch({
        type: 'tcpFailed',
        conn: id,
        reason: 'peer not on a directly connected network (eBGP without multihop)',
      });
      return;
    }
    const opts = {
      host: this.o.address,
      port: this.o.port,
      ...(this.o.localAddress ? { localAddress: this.o.localAddress } : {}),
    };
    const sock = this.o.network.connect(opts);
    this.pending = { id, sock };
    let failed = false;
    const fail = (reason: string) => {
      if (failed || this.pending?.id !== id) return;
      failed = true;
      this.pending = undefined;
      sock.destroy();
      this.dispatch({ type: 'tcpFailed', conn: id, reason });
    };
    sock.on('error', (err) => fail(`connect: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    sock.on('close', () => fail('connect: closed'));
    sock.on('connect', () => {
      if (this.pending?.id !== id) {
        sock.destroy();
        return;
      }
      this.pending = undefined;
      this.attach(id, sock);
      this.dispatch({ type: 'tcpConnected', conn: id });
    });
  }

  /** Wires a connected socket: bytes -> framer -> decode -> FSM events. */
  private attach(id: number, sock: Conn): void {
    const c: LiveConn = { id, sock, framer: new Framer(), ctx: DEFAULT_CONTEXT };
    this.conns.set(id, c);
    let gone = false;
    const lost = (reason: string) => {
      if (gone) return;
      gone = true;
      if (this.conns.get(id) !== c) return;
      this.conns.delete(id);
      sock.destroy();
      this.dispatch({ type: 'tcpFailed', conn: id, reason });
    };
    sock.on('error', (err) => lost(`socket: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    sock.on('close', () => lost('connection closed'));
    sock.on('drain', () => {
      if (this.conns.get(id) === c && this.fsm.conn?.id === id) this.o.hooks.onDrain?.();
    });
    // Received messages are handled at most TURN_BUDGET bytes per connection and event-loop
    // turn; the rest waits (socket paused) for the next turn. libuv reads up to 2 MB per socket
    // per turn, and a full table is several seconds of work: without this, keepalives and hold
    // timers would not run until it is all done.
    const queue: Uint8Array[] = [];
    let next = 0;
    let waiting = false;
    let framingError: BgpError | undefined;
    const drain = () => {
      let budget = TURN_BUDGET;
      while (next < queue.length) {
        if (this.conns.get(id) !== c) return;
        if (this.inputPaused) {
          sock.pause?.();
          return;
        }
        const f = queue[next++] as Uint8Array;
        this.onFrame(c, f);
        budget -= f.length;
        if (budget <= 0 && next < queue.length) {
          this.o.hooks.onBatchDone?.();
          waiting = true;
          sock.pause?.();
          this.o.clock.setTimer(0, () => {
            waiting = false;
            sock.resume?.();
            drain();
          });
          return;
        }
      }
      queue.length = 0;
      next = 0;
      this.o.hooks.onBatchDone?.();
      if (framingError && this.conns.get(id) === c)
        this.dispatch({ type: 'decodeError', conn: id, error: framingError });
    };
    sock.on('data', (chunk) => {
      if (this.conns.get(id) !== c || framingError) return;
      const { frames, error } = c.framer.push(chunk);
      for (const f of frames) queue.push(f);
      if (error) framingError = error;
      if (!waiting) drain();
    });
    c.kick = () => {
      sock.resume?.();
      if (!waiting) drain();
    };
    if (this.inputPaused) sock.pause?.();
  }

  private onFrame(c: LiveConn, frame: Uint8Array): void {
    const r = decodeMessage(frame, c.ctx);
    if (!r.ok) {
      this.o.log.warn({ code: r.error.code, subcode: r.error.subcode, err: r.error.message }, 'malformed message');
      this.dispatch({ type: 'decodeError', conn: c.id, error: r.error });
      return;
    }
    const msg = r.msg;
    this.o.hooks.onMessage('in', msg);
    switch (msg.type) {
      case 'open':
        this.dispatch({ type: 'open', conn: c.id, msg });
        return;
      case 'keepalive':
        this.dispatch({ type: 'keepalive', conn: c.id });
        return;
      case 'notification':
        this.o.log.warn(
          { code: msg.code, subcode: msg.subcode, communication: msg.communication },
          'notification received',
        );
        this.dispatch({ type: 'notification', conn: c.id, msg });
        return;
      case 'route-refresh':
        this.dispatch({ type: 'routeRefresh', conn: c.id, msg });
        return;
      case 'update': {
        let upd = msg;
        const worst = strongestError(r.attrErrors);
        if (worst) {
          this.o.hooks.onAttrError?.(worst);
          this.o.log.warn(
            { code: worst.code, subcode: worst.subcode, action: worst.action, err: worst.message },
            'UPDATE error (RFC 7606)',
          );
          if (worst.action === 'afi-safi-disable') {
            this.dispatch({ type: 'decodeError', conn: c.id, error: worst });
            return;
          }
          if (worst.action === 'treat-as-withdraw') upd = treatAsWithdraw(msg);
        }
        this.dispatch({ type: 'update', conn: c.id, msg: upd });
        return;
      }
    }
  }

  private close(id: number): void {
    const c = this.conns.get(id);
    if (!c) return;
    this.conns.delete(id);
    c.sock.end();
    const t = this.o.clock.setTimer(CLOSE_GRACE_MS, () => c.sock.destroy());
    t.unref();
  }

  private startTimer(name: TimerName, ms: number): void {
    const t = this.timers.get(name) as { gen: number; handle?: TimerHandle };
    t.handle?.cancel();
    const gen = ++t.gen;
    t.handle = this.o.clock.setTimer(ms, () => {
      if (t.gen !== gen) return;
      delete t.handle;
      this.dispatch({ type: 'timer', timer: name });
    });
  }

  private stopTimer(name: TimerName): void {
    const t = this.timers.get(name) as { gen: number; handle?: TimerHandle };
    t.handle?.cancel();
    delete t.handle;
    t.gen++;
  }
}

const UPDATE_MARK: UpdateMessage = { type: 'update', withdrawn: [], attrs: {}, nlri: [] };
