/**
 * The BGP speaker: peers (one Session each), the listener, the RIBs and the public API.
 *
 * Complicating factors:
 * - Route changes are applied to the Loc-RIB at once; the changed entries are queued once (not
 *   per peer) and exported to every established peer when the batch of received messages is
 *   done (or after `advertisementIntervalMs`, or every FLUSH_CHUNK entries), compared with what
 *   the peer was sent (per Loc-RIB entry: the route last exported and a set of peer slots, see
 *   LocRibEntry), so a burst of received UPDATEs goes out as few, well-packed UPDATEs.
 * - Received messages are handled in bounded batches per connection and event-loop turn
 *   (session.ts), so timers keep running while a full table arrives.
 * - Graceful restart helper (RFC 4724 §4.2): when a session with GR drops without NOTIFICATION
 *   the peer's routes stay in the Loc-RIB marked stale until the restart time runs out; when it
 *   comes back, stale routes of a family go at its End-of-RIB (or after staleTimeSec), and at once
 *   for families the new OPEN no longer covers with the F bit.
 * - Restarting speaker (RFC 4724 §4.1): with `gracefulRestart.restarting` the first OPEN to each
 *   peer carries the R bit, and best-path selection results are held back: the Loc-RIB fills, but
 *   nothing is advertised and no route events are emitted until every configured peer is either
 *   done (End-of-RIB for each negotiated family), or exempt (up without GR, or itself restarting,
 *   or shut down), or the selection-deferral timer expires. Then the table goes to every
 *   established peer, followed by End-of-RIB. Without deferral we send End-of-RIB after the
 *   initial table dump whenever GR was negotiated.
 * - Collision handling and timers live in the FSM; a connection from an unknown address is closed.
 */
import { EventEmitter } from 'node:events';
import { type Clock, systemClock } from '../../agent/common/clock.js';
import { type Logger, silentLogger } from '../../agent/common/logger.js';
import {
  type BgpMessage,
  CeaseSubcode,
  endOfRib,
  type FamilyName,
  familyName,
  notifications,
  packUpdates,
  type RouteRefreshMessage,
  shutdownNotification,
  type UpdateMessage,
} from '../codec/index.js';
import {
  buildOpen,
  type DeferralEvent,
  type DeferralPeerView,
  type DeferralState,
  type DownReason,
  deferralStep,
  FAMILY_AFI_SAFI,
  type FsmConfig,
  type GrEvent,
  grStep,
  initialGrState,
  type Negotiated,
  peerSettled,
  State,
} from '../fsm/index.js';
import {
  AdjRibIn,
  announceNlri,
  type BestChange,
  bestOf,
  type CompiledFilter,
  canonicalPrefix,
  compileFilter,
  type ExportTarget,
  familyOfPrefix,
  hasPaths,
  hasSlot,
  isEmptySlots,
  type LocalIdentity,
  LocRib,
  type LocRibEntry,
  nextHopsOf,
  type PeerInfo,
  type PeerPlan,
  parseCommunities,
  planExport,
  type Route,
  type RouteAttrs,
  removeSlot,
  ribOpsFromUpdate,
  type Selection,
  withdrawNlri,
} from '../rib/index.js';
import { type DesiredBgpConfig, diffSpeakerConfig, type SpeakerConfigDiff } from './config-diff.js';
import type { PeerEntry } from './peer-entry.js';
import { Session } from './session.js';
import { type BestRouteView, bestRoutesOf, peerStatusOf } from './status.js';
import { type Conn, type ListenHandle, type Network, tcpNetwork, unmapAddress } from './transport.js';
import {
  type AnnounceOptions,
  DEFAULT_SEND_BUFFER,
  type PeerConfig,
  type PeerStatus,
  type RouteEvent,
  type SpeakerConfig,
  SpeakerError,
  type SpeakerStatus,
} from './types.js';

export interface SpeakerDeps {
  clock?: Clock;
  log?: Logger;
  network?: Network;
  /** Routes withdrawn per event-loop turn when a peer's table goes (default WITHDRAW_CHUNK; tests). */
  withdrawChunk?: number;
}

/** RFC 4724 §4.1 selection deferral default (FRR's `select-defer-time` default too). */
const DEFAULT_SELECTION_DEFERRAL_SEC = 360;

/** Changed Loc-RIB entries exported at once at most (see markDirty). */
const FLUSH_CHUNK = 4096;
/**
 * Routes of a dropped peer withdrawn per event-loop turn (~20 ms of work): a 1M-route table goes
 * in ~250 turns with timers (keepalives, hold timers) and I/O running between them.
 */
const WITHDRAW_CHUNK = 4096;
const DRAIN_POLL_MS = 20;

const FAMILY_OF: Record<'ipv4' | 'ipv6', FamilyName> = { ipv4: 'ipv4-unicast', ipv6: 'ipv6-unicast' };

export interface SpeakerEvents {
  route: [RouteEvent];
  peerState: [{ peer: string; from: State; to: State }];
}

export class Speaker extends EventEmitter<SpeakerEvents> {
  readonly clock: Clock;
  private readonly log: Logger;
  private readonly network: Network;
  private readonly peers = new Map<string, PeerEntry>();
  private readonly rib: LocRib;
  private readonly local = new Map<string, Route>();
  /** Config as last declared per peer (addPeer / applyConfig; admin shutdown does not change it): applyConfig diffs against it. */
  private readonly declaredPeers = new Map<string, PeerConfig>();
  /** Options of each originated prefix as declared (canonical prefix). */
  private readonly declaredAnnounce = new Map<string, AnnounceOptions>();
  /** Peer per Adj-RIB-Out slot (see LocRibEntry.out). */
  private readonly slots: (PeerEntry | undefined)[] = [];
  /** Loc-RIB entries changed since the last flush (each once: LocRibEntry.dirty). */
  private dirty: LocRibEntry[] = [];
  private readonly me: LocalIdentity;
  private listener?: ListenHandle;
  private flushTimer?: { cancel(): void } | undefined;
  private stopped = false;
  /** RFC 4724 §4.1 selection deferral in progress (restarting speaker). */
  private deferral: DeferralState = { deferring: false };
  private deferralTimer?: { cancel(): void } | undefined;
  /** Routes of dropped peers still to be removed from the Loc-RIB (see sweepRoutes). */
  private readonly sweeps: Route[][] = [];
  private sweepAt = 0;
  private sweepTimer?: { cancel(): void } | undefined;
  private readonly withdrawChunk: number;
  /** pauseInput() in force (the consumer of route events is not keeping up). */
  private inputPaused = false;
  private readonly softLimit: number;
  private readonly hardLimit: number;

  constructor(
    readonly config: SpeakerConfig,
    deps: SpeakerDeps = {},
  ) {
    super();
    this.clock = deps.clock ?? systemClock;
    this.log = (deps.log ?? silentLogger).child({ component: 'bgp', asn: config.asn, routerId: config.routerId });
    this.network = deps.network ?? tcpNetwork;
    this.rib = new LocRib(config.multipath ?? true);
    this.me = {
      asn: config.asn,
      routerId: config.routerId,
      clusterId: config.routeReflector?.clusterId ?? config.routerId,
    };
    this.deferral = { deferring: config.gracefulRestart?.restarting === true };
    this.withdrawChunk = Math.max(1, deps.withdrawChunk ?? WITHDRAW_CHUNK);
    this.softLimit = config.sendBuffer?.softLimitBytes ?? DEFAULT_SEND_BUFFER.softLimitBytes;
    this.hardLimit = config.sendBuffer?.hardLimitBytes ?? DEFAULT_SEND_BUFFER.hardLimitBytes;
  }

  private get deferring(): boolean {
    return this.deferral.deferring;
  }

  /** Runs the selection-deferral reducer (bgp/fsm/graceful-restart.ts) and its actions. */
  private deferralEvent(e: DeferralEvent): void {
    const { state, actions } = deferralStep(this.deferral, e);
    this.deferral = state;
    for (const a of actions) {
      if (a.type === 'startTimer') {
        this.deferralTimer?.cancel();
        this.deferralTimer = this.clock.setTimer(a.ms, () => {
          this.deferralTimer = undefined;
          this.deferralEvent({ type: 'timer' });
        });
      } else if (a.type === 'stopTimer') {
        this.deferralTimer?.cancel();
        this.deferralTimer = undefined;
      } else this.endDeferral(a.reason);
    }
  }

  /** True while a restarting speaker holds back advertisements (RFC 4724 §4.1). */
  get selectionDeferred(): boolean {
    return this.deferring;
  }

  // ---------------------------------------------------------------- lifecycle

  /** Starts listening (if configured) and every configured peer. */
  async start(): Promise<void> {
    const l = this.config.listen;
    if (l) {
      try {
        this.listener = await this.network.listen(
          l.address,
          l.port,
          (c) => this.onInbound(c),
          (err) => this.log.error({ err }, 'listener error (still listening)'),
        );
      } catch (err) {
        throw new SpeakerError('listen', `cannot listen on ${l.address}:${l.port}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      this.log.info({ address: l.address, port: this.listener.port }, 'listening');
    }
    for (const p of this.peers.values()) if (!p.cfg.shutdown) p.session.start();
    if (this.deferring) {
      const sec = this.config.gracefulRestart?.selectionDeferralSec ?? DEFAULT_SELECTION_DEFERRAL_SEC;
      this.log.info({ selectionDeferralSec: sec }, 'restarting: deferring advertisement until End-of-RIB');
      this.deferralEvent({ type: 'start', restarting: true, selectionDeferralSec: sec });
      this.checkDeferral();
    }
  }

  /** The port actually listened on (useful with port 0). */
  get listenPort(): number | undefined {
    return this.listener?.port;
  }

  /** Sends Cease (6/2 with `communication`) to every peer, closes the listener. */
  async stop(communication = 'speaker shutting down'): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.deferralEvent({ type: 'stop' });
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.flushNow();
    for (const p of this.peers.values()) p.session.stop('shutdown', false, shutdownNotification(communication));
    await this.listener?.close();
    this.flushTimer?.cancel();
    // Let the NOTIFICATIONs reach the sockets (the caller decides how long to linger before exit).
    await new Promise((r) => setImmediate(r));
    for (const p of this.peers.values()) {
      p.staleTimer?.cancel();
      p.session.destroy();
    }
  }

  // ---------------------------------------------------------------- peers

  addPeer(cfg: PeerConfig): void {
    const address = unmapAddress(cfg.address) as string;
    if (this.peers.has(address)) throw new SpeakerError('duplicate-peer', `peer ${address} already configured`);
    let importFilter: CompiledFilter;
    let exportFilter: CompiledFilter;
    try {
      importFilter = compileFilter(cfg.importFilter);
      exportFilter = compileFilter(cfg.exportFilter);
    } catch (err) {
      throw new SpeakerError('invalid-config', `peer ${address}: ${(err as Error).message}`, { cause: err });
    }
    const families = (cfg.families ?? ['ipv4', 'ipv6']).map((f) => FAMILY_OF[f]);
    const log = this.log.child({ peer: address, peerAs: cfg.asn });
    const info: PeerInfo = {
      address,
      asn: cfg.asn,
      bgpId: '',
      isIbgp: cfg.asn === this.config.asn,
      rrClient: cfg.routeReflectorClient ?? false,
    };
    const entry = {
      cfg: { ...cfg, address },
      families,
      log,
      info,
      importFilter,
      exportFilter,
      rin: new AdjRibIn(info, this.me, importFilter),
      slot: this.allocSlot(),
      advertised: 0,
      advertisedByFamily: new Map(),
      paused: false,
      held: new Map(),
      eorPending: [],
      gr: initialGrState,
      restartingBit: this.config.gracefulRestart?.restarting ?? false,
      eorReceived: new Set(),
      stats: {
        messagesIn: 0,
        messagesOut: 0,
        updatesIn: 0,
        updatesOut: 0,
        flaps: 0,
        notificationsIn: {},
        notificationsOut: {},
      },
      maxPrefixWarned: false,
      removed: false,
    } as Omit<PeerEntry, 'session'> as PeerEntry;
    entry.session = new Session({
      address,
      port: cfg.port ?? 179,
      ...(cfg.localAddress ? { localAddress: cfg.localAddress } : {}),
      directOnly: !info.isIbgp && cfg.multihop === undefined,
      fsm: this.fsmConfig(entry),
      clock: this.clock,
      network: this.network,
      log,
      hooks: {
        onState: (from, to, s) => {
          log.info(
            { from, to, ...(s.lastError && to === State.Idle ? { reason: s.lastError } : {}) },
            'fsm transition',
          );
          if (to === State.Idle && s.lastError) entry.lastError = s.lastError;
          this.emit('peerState', { peer: address, from, to });
        },
        onEstablished: (n, localAddress) => this.onEstablished(entry, n, localAddress),
        onDown: (r) => this.onDown(entry, r),
        onUpdate: (m) => this.onUpdate(entry, m),
        onRouteRefresh: (m) => this.onRouteRefresh(entry, m),
        // Received changes go out when their batch is done, not a loop phase later (a single
        // withdrawal through a reflector is then one read, one pass, one write).
        onBatchDone: () => {
          if (this.flushTimer && !this.config.advertisementIntervalMs) {
            this.flushTimer.cancel();
            this.flushTimer = undefined;
            this.flushNow();
          }
        },
        onMessage: (dir, m) => this.count(entry, dir, m),
        onDrain: () => this.onDrain(entry),
      },
    });
    this.peers.set(address, entry);
    this.declaredPeers.set(address, structuredClone(cfg));
    if (this.inputPaused) entry.session.pauseInput();
    this.slots[entry.slot] = entry;
    log.info({ passive: cfg.passive ?? false, families }, 'peer added');
    if (this.listener !== undefined || !this.config.listen) {
      if (!cfg.shutdown && this.started()) entry.session.start();
    }
  }

  private allocSlot(): number {
    let i = 0;
    while (this.slots[i] !== undefined) i++;
    return i;
  }

  private started(): boolean {
    return !this.stopped && (this.listener !== undefined || !this.config.listen);
  }

  /** Removes a peer: Cease 6/3 (peer de-configured), its routes withdrawn. */
  removePeer(address: string): void {
    const p = this.peer(address);
    p.removed = true;
    p.session.stop('peer removed', false, notifications.cease(CeaseSubcode.PeerDeconfigured));
    p.staleTimer?.cancel();
    this.dropRoutes(p, p.rin.clear());
    this.peers.delete(p.info.address);
    this.declaredPeers.delete(p.info.address);
    this.resetOut(p);
    this.slots[p.slot] = undefined;
    this.clock.setTimer(2500, () => p.session.destroy()).unref();
    this.checkDeferral();
  }

  /** Administrative shutdown with an RFC 9003 communication; the peer stays configured. */
  shutdownPeer(address: string, communication = 'administrative shutdown'): void {
    const p = this.peer(address);
    p.cfg.shutdown = true;
    p.session.stop('administrative shutdown', false, shutdownNotification(communication));
    this.checkDeferral();
  }

  /** Undoes shutdownPeer. */
  enablePeer(address: string): void {
    const p = this.peer(address);
    p.cfg.shutdown = false;
    if (this.started()) p.session.start();
  }

  /**
   * Soft reset (default): ask the peer to re-send its routes (ROUTE-REFRESH, RFC 2918) and re-send
   * ours. Hard reset: Cease 6/4 and reconnect.
   */
  resetPeer(address: string, opts: { soft?: boolean; communication?: string } = {}): void {
    const p = this.peer(address);
    if (opts.soft === false) {
      p.session.stop(
        'administrative reset',
        true,
        shutdownNotification(opts.communication ?? 'administrative reset', 4),
      );
      return;
    }
    const n = p.session.negotiated;
    if (!n) return;
    for (const f of n.families) {
      if (n.routeRefresh) p.session.send({ type: 'route-refresh', ...FAMILY_AFI_SAFI[f], subtype: 0 });
      this.resend(p, f);
    }
    this.scheduleFlush();
  }

  private peer(address: string): PeerEntry {
    const p = this.peers.get(unmapAddress(address) as string);
    if (!p) throw new SpeakerError('unknown-peer', `no peer ${address}`);
    return p;
  }

  private fsmConfig(p: PeerEntry): FsmConfig {
    const c = p.cfg;
    const gr = this.config.gracefulRestart && c.gracefulRestart !== false ? this.config.gracefulRestart : undefined;
    const localOpen = buildOpen({
      asn: this.config.asn,
      bgpId: this.config.routerId,
      holdTimeSec: c.holdTimeSec ?? 90,
      families: p.families,
      extendedMessage: this.config.extendedMessage ?? true,
      ...(gr
        ? {
            gracefulRestart: {
              restartTimeSec: gr.restartTimeSec,
              restarting: p.restartingBit,
              forwardingPreserved: true,
            },
          }
        : {}),
    });
    return {
      localAs: this.config.asn,
      localBgpId: this.config.routerId,
      peerAs: c.asn,
      passive: c.passive ?? false,
      localOpen,
      connectRetryMs: (c.connectRetrySec ?? 5) * 1000,
      ...(c.keepaliveSec !== undefined ? { keepaliveSec: c.keepaliveSec } : {}),
      idleHoldMs: (c.idleHoldSec ?? 5) * 1000,
      idleHoldMaxMs: (c.idleHoldMaxSec ?? 120) * 1000,
      openHoldMs: 240_000,
    };
  }

  private onInbound(sock: Conn): void {
    const remote = unmapAddress(sock.remoteAddress);
    const p = remote ? this.peers.get(remote) : undefined;
    if (!p || this.stopped) {
      this.log.info({ remote }, 'connection from unknown address refused');
      sock.destroy();
      return;
    }
    p.session.accept(sock);
  }

  // ---------------------------------------------------------------- local routes

  /** Originates a prefix (IPv4 or IPv6). */
  announce(prefix: string, opts: AnnounceOptions = {}): void {
    const route = localRoute(prefix, opts);
    this.local.set(route.prefix, route);
    this.declaredAnnounce.set(route.prefix, { ...opts });
    this.apply(this.rib.upsert(route));
    this.scheduleFlush();
  }

  /** Stops originating a prefix. */
  withdraw(prefix: string): void {
    const canon = canonicalPrefix(prefix);
    if (!canon || !this.local.delete(canon)) return;
    this.declaredAnnounce.delete(canon);
    this.apply(this.rib.remove(canon, undefined));
    this.scheduleFlush();
  }

  // ---------------------------------------------------------------- run-time reconfiguration

  /**
   * Declare, then apply: moves the running speaker to `next` (peers and announcements; see
   * config-diff.ts). Peers whose config is unchanged keep their sessions; removed peers get
   * Cease 6/3; a changed peer is updated in place (description), shut down / enabled, or replaced.
   * Speaker-wide changes are not applied (they are in every OPEN): `restartRequired` lists them.
   * Everything is validated before anything changes: an invalid new config throws SpeakerError
   * and leaves the speaker as it was.
   */
  applyConfig(next: DesiredBgpConfig): SpeakerConfigDiff {
    const prev: DesiredBgpConfig = {
      peers: [...this.declaredPeers.values()],
      announce: [...this.declaredAnnounce].map(([prefix, options]) => ({ prefix, options })),
      ...(next.speaker !== undefined ? { speaker: this.config } : {}),
    };
    const d = diffSpeakerConfig(prev, next);
    for (const p of [...d.addPeers, ...d.changePeers.filter((c) => c.action === 'replace').map((c) => c.to)]) {
      try {
        compileFilter(p.importFilter);
        compileFilter(p.exportFilter);
      } catch (err) {
        throw new SpeakerError('invalid-config', `peer ${p.address}: ${(err as Error).message}`, { cause: err });
      }
    }
    const routes = d.announce.map((a) => ({ route: localRoute(a.prefix, a.options), options: a.options }));
    for (const a of d.removePeers) this.removePeer(a);
    for (const c of d.changePeers) {
      const address = unmapAddress(c.from.address) as string;
      if (c.action === 'replace') {
        this.removePeer(address);
        this.addPeer(c.to);
        continue;
      }
      const p = this.peer(address);
      if (c.to.description === undefined) delete p.cfg.description;
      else p.cfg.description = c.to.description;
      if (c.action === 'shutdown') this.shutdownPeer(address, 'peer shut down in the configuration');
      else if (c.action === 'enable') this.enablePeer(address);
      this.declaredPeers.set(address, structuredClone(c.to));
    }
    for (const p of d.addPeers) this.addPeer(p);
    for (const prefix of d.withdraw) this.withdraw(prefix);
    for (const { route, options } of routes) {
      this.local.set(route.prefix, route);
      this.declaredAnnounce.set(route.prefix, { ...options });
      this.apply(this.rib.upsert(route));
    }
    if (routes.length > 0) this.scheduleFlush();
    this.log.info(
      {
        added: d.addPeers.map((p) => p.address),
        removed: d.removePeers,
        changed: d.changePeers.map((c) => ({ peer: c.address, action: c.action, keys: c.keys })),
        unchanged: d.unchangedPeers.length,
        announced: d.announce.length,
        withdrawn: d.withdraw.length,
      },
      'configuration applied',
    );
    if (d.restartRequired.length > 0)
      this.log.warn({ keys: d.restartRequired }, 'speaker-wide settings changed: not applied until restart');
    return d;
  }

  // ---------------------------------------------------------------- session events

  private onEstablished(p: PeerEntry, n: Negotiated, localAddress: string | undefined): void {
    p.info.bgpId = n.peerBgpId;
    p.negotiated = n;
    p.establishedAt = { mono: this.clock.now(), wall: this.clock.wallNow() };
    delete p.lastError;
    p.maxPrefixWarned = false;
    p.log.info(
      {
        holdTimeSec: n.holdTimeSec,
        families: n.families,
        peerBgpId: n.peerBgpId,
        gracefulRestart: n.peerGracefulRestart !== undefined,
      },
      'session established',
    );
    if (p.restartingBit) {
      // The R bit belongs to the first session after our restart only.
      p.restartingBit = false;
      p.session.fsmConfig = this.fsmConfig(p);
    }
    // RFC 4724 §4.2: stale routes survive only for families still covered with the F bit.
    this.grEvent(p, { type: 'established', peerGr: n.peerGracefulRestart });
    p.exportPeer = {
      info: p.info,
      localAs: this.config.asn,
      families: n.families,
      nextHopSelf: p.cfg.nextHopSelf ?? false,
      selfNextHop: this.selfNextHop(p, localAddress),
      routeReflector: this.config.routeReflector !== undefined,
      clusterId: this.me.clusterId,
      exportFilter: p.exportFilter,
    };
    this.resetOut(p);
    p.eorReceived = new Set();
    if (this.deferring) this.checkDeferral();
    else this.advertiseTable(p);
  }

  /**
   * Initial table dump (every selected prefix queued; the peers that have it already find nothing
   * to send), then End-of-RIB per family when GR was negotiated (RFC 4724 §4.1).
   */
  private advertiseTable(p: PeerEntry): void {
    const n = p.session.negotiated;
    if (!p.exportPeer || !n) return;
    for (const e of this.rib.selected()) this.markDirty(e);
    this.flushNow();
    if (n.peerGracefulRestart) this.sendEndOfRib(p, n.families);
  }

  private markDirty(e: LocRibEntry): void {
    if (e.dirty) return;
    e.dirty = true;
    // A full table arrives in a few event-loop turns (libuv reads up to 2 MB per socket per
    // turn): exporting it in bounded chunks keeps what a flush holds (prefix lists, frames per
    // peer) small and short-lived instead of hundreds of MB at once. UPDATEs stay full: a chunk
    // still holds thousands of prefixes per attribute set.
    if (this.dirty.push(e) >= FLUSH_CHUNK && !this.deferring) this.flushNow();
  }

  /** Forgets what `p` was sent (session down or new session), for all families or one. */
  private resetOut(p: PeerEntry, family?: FamilyName): void {
    if (this.slots[p.slot] !== p) return;
    if (family === undefined) {
      p.held.clear();
      p.paused = false;
      p.eorPending = [];
    } else for (const e of p.held.keys()) if (e.family === family) p.held.delete(e);
    const s = p.slot;
    const had = family === undefined ? p.advertised : (p.advertisedByFamily.get(family) ?? 0);
    if (family === undefined) {
      p.advertised = 0;
      p.advertisedByFamily.clear();
    } else {
      p.advertised -= had;
      p.advertisedByFamily.delete(family);
    }
    if (had === 0) return;
    for (const e of this.rib.all()) {
      if (!hasSlot(e.out, s) || (family !== undefined && e.family !== family)) continue;
      e.out = removeSlot(e.out, s);
      if (!hasPaths(e) && isEmptySlots(e.out)) {
        e.sent = undefined;
        this.rib.prune(e);
      }
    }
  }

  private checkDeferral(): void {
    if (!this.deferring || this.stopped || !this.started()) return;
    let settled = true;
    for (const p of this.peers.values()) {
      const n = p.session.negotiated;
      const view: DeferralPeerView = {
        shutdown: p.cfg.shutdown === true || p.removed,
        eorReceived: p.eorReceived,
        ...(n ? { established: { families: n.families, peerGr: n.peerGracefulRestart } } : {}),
      };
      if (!peerSettled(view)) {
        settled = false;
        break;
      }
    }
    this.deferralEvent({ type: 'check', settled });
  }

  /** Ends selection deferral: route events for the Loc-RIB, the table and End-of-RIB to every peer. */
  private endDeferral(reason: string): void {
    this.log.info({ reason, prefixes: this.rib.size }, 'selection deferral over: advertising');
    for (const e of this.rib.selected()) {
      const sel = visible(e.selection);
      if (sel) this.emit('route', this.selectedEvent('add', e, sel));
      this.markDirty(e);
    }
    this.flushNow();
    for (const p of this.peers.values()) {
      const n = p.session.negotiated;
      if (p.exportPeer && n?.peerGracefulRestart) this.sendEndOfRib(p, n.families);
    }
  }

  /** End-of-RIB after the table (RFC 4724 §4.1); waits while exports to `p` are held back. */
  private sendEndOfRib(p: PeerEntry, families: readonly FamilyName[]): void {
    if (p.paused || p.held.size > 0) {
      for (const f of families) if (!p.eorPending.includes(f)) p.eorPending.push(f);
      return;
    }
    for (const f of families) p.session.send(endOfRib(FAMILY_AFI_SAFI[f].afi, FAMILY_AFI_SAFI[f].safi));
  }

  private selfNextHop(p: PeerEntry, localAddress: string | undefined): Partial<Record<FamilyName, string>> {
    const local = p.cfg.localAddress ?? localAddress;
    const localIs6 = local?.includes(':') ?? false;
    const v4 = this.config.nextHop?.ipv4 ?? (local && !localIs6 ? local : undefined);
    // An IPv6 route over an IPv4 session without a configured IPv6 next hop: IPv4-mapped (RFC 4291 §2.5.5.2).
    const v6 = this.config.nextHop?.ipv6 ?? (local ? (localIs6 ? local : `::ffff:${local}`) : undefined);
    const out: Partial<Record<FamilyName, string>> = {};
    if (v4) out['ipv4-unicast'] = v4;
    if (v6) out['ipv6-unicast'] = v6;
    return out;
  }

  private onDown(p: PeerEntry, reason: DownReason): void {
    p.stats.flaps++;
    p.lastError = reason.reason;
    delete p.exportPeer;
    delete p.establishedAt;
    this.resetOut(p);
    const gr = p.negotiated?.peerGracefulRestart;
    if (reason.graceful && gr && !p.removed)
      p.log.info(
        { reason: reason.reason, restartTimeSec: gr.restartTimeSec, families: gr.families.map((f) => f.family) },
        'session down, graceful restart: keeping routes as stale',
      );
    else p.log.info({ reason: reason.reason }, 'session down: withdrawing its routes');
    this.grEvent(p, {
      type: 'down',
      graceful: reason.graceful === true,
      peerGr: gr,
      removed: p.removed,
      families: [...p.rin.byFamily.keys()],
    });
    this.scheduleFlush();
  }

  /** Runs the graceful-restart helper reducer (bgp/fsm/graceful-restart.ts) for `p` and its actions. */
  private grEvent(p: PeerEntry, e: GrEvent): void {
    const { state, actions } = grStep(p.gr, e, this.config.gracefulRestart ?? {});
    p.gr = state;
    for (const a of actions) {
      switch (a.type) {
        case 'dropAll':
          this.dropRoutes(p, p.rin.clear());
          break;
        case 'markStale':
          p.rin.markStale(a.families);
          break;
        case 'sweep':
          this.sweepStale(p, a.family, a.all === true, a.reason);
          break;
        case 'startTimer':
          p.staleTimer?.cancel();
          p.staleTimer = this.clock.setTimer(a.ms, () => {
            delete p.staleTimer;
            this.grEvent(p, { type: 'timer' });
            this.scheduleFlush();
          });
          break;
        case 'stopTimer':
          p.staleTimer?.cancel();
          delete p.staleTimer;
          break;
      }
    }
  }

  /** Removes stale routes (of one family, or all; `all` = every route of the family, stale or not). */
  private sweepStale(p: PeerEntry, family: FamilyName | undefined, all: boolean, reason: string): void {
    if (all && family) p.rin.markStale([family]);
    const gone = p.rin.sweepStale(family);
    if (gone.length > 0) p.log.info({ family: family ?? 'all', routes: gone.length, reason }, 'stale routes removed');
    this.dropRoutes(p, gone);
  }

  /**
   * Removes a dropped peer's routes (already gone from its Adj-RIB-In) from the Loc-RIB: up to
   * withdrawChunk at once, the rest in chunks on later event-loop turns (issue 9: a 1M-route
   * table in one pass would block ~5 s, past a 3 s hold timer). Each route is removed only if it
   * is still the Loc-RIB path (LocRib.removeRoute), so a session that came back meanwhile keeps
   * the routes it has sent since.
   */
  private dropRoutes(_p: PeerEntry, routes: Route[]): void {
    if (routes.length === 0) return;
    this.sweeps.push(routes);
    if (this.sweepTimer === undefined && !this.inputPaused) this.sweepChunk();
  }

  private sweepChunk(): void {
    this.sweepTimer = undefined;
    let budget = this.withdrawChunk;
    while (budget > 0 && this.sweeps.length > 0) {
      const list = this.sweeps[0] as Route[];
      const end = Math.min(list.length, this.sweepAt + budget);
      for (let i = this.sweepAt; i < end; i++) this.apply(this.rib.removeRoute(list[i] as Route));
      budget -= end - this.sweepAt;
      this.sweepAt = end;
      if (end === list.length) {
        this.sweeps.shift();
        this.sweepAt = 0;
      }
    }
    this.scheduleFlush();
    if (this.sweeps.length > 0 && !this.stopped && !this.inputPaused)
      this.sweepTimer = this.clock.setTimer(0, () => this.sweepChunk());
  }

  /**
   * Back-pressure from the consumer of route events (e.g. stdout of `petrelctl bgp run`): stop
   * reading from every peer and pause the chunked withdrawals until resumeInput(). Timers and
   * keepalives go on; a pause longer than a peer's hold time ends that session.
   */
  pauseInput(): void {
    if (this.inputPaused) return;
    this.inputPaused = true;
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    for (const p of this.peers.values()) p.session.pauseInput();
  }

  resumeInput(): void {
    if (!this.inputPaused) return;
    this.inputPaused = false;
    for (const p of this.peers.values()) p.session.resumeInput();
    if (this.sweeps.length > 0 && this.sweepTimer === undefined && !this.stopped)
      this.sweepTimer = this.clock.setTimer(0, () => this.sweepChunk());
  }

  get inputIsPaused(): boolean {
    return this.inputPaused;
  }

  /** Routes of dropped peers not yet removed from the Loc-RIB (chunked withdrawal in progress). */
  get pendingWithdrawals(): number {
    let n = 0;
    for (const l of this.sweeps) n += l.length;
    return n - this.sweepAt;
  }

  private onUpdate(p: PeerEntry, msg: UpdateMessage): void {
    const n = p.session.negotiated;
    if (!n) return;
    const ops = ribOpsFromUpdate(msg, n.ctx.as4, n.families);
    if (ops.endOfRib) {
      p.log.debug({ family: ops.endOfRib }, 'End-of-RIB received');
      p.eorReceived.add(ops.endOfRib);
      this.grEvent(p, { type: 'endOfRib', family: ops.endOfRib });
      this.checkDeferral();
      return;
    }
    const src = p.info.address;
    let withdrawn = 0;
    for (const w of ops.withdraw) {
      withdrawn += w.prefixes.length;
      for (const prefix of w.prefixes) if (p.rin.withdraw(prefix, w.family)) this.apply(this.rib.remove(prefix, src));
    }
    const max = p.cfg.maxPrefixes;
    let announced = 0;
    for (const a of ops.announce) {
      const family = a.family;
      const attrs = ops.attrs[family] as RouteAttrs;
      announced += a.prefixes.length;
      for (const prefix of a.prefixes) {
        if (max?.action === 'discard' && p.rin.accepted >= max.limit && !p.rin.get(prefix)) continue;
        const res = p.rin.update(prefix, family, attrs);
        if (res.route) this.apply(this.rib.upsert(res.route));
        else if (res.replaced) this.apply(this.rib.remove(prefix, src));
        if (res.reject) p.log.debug({ prefix, reason: res.reject }, 'route rejected');
      }
    }
    if (announced + withdrawn > 0) p.log.debug({ announced, withdrawn }, 'UPDATE');
    if (max && p.rin.accepted > max.limit) {
      const action = max.action ?? 'cease';
      if (action === 'cease') {
        const f = ops.announce[0]?.family ?? 'ipv4-unicast';
        p.log.warn({ limit: max.limit, accepted: p.rin.accepted }, 'maximum prefixes exceeded: Cease 6/1');
        p.session.stop(
          'maximum prefixes exceeded',
          true,
          notifications.maxPrefixes(FAMILY_AFI_SAFI[f].afi, FAMILY_AFI_SAFI[f].safi, max.limit),
        );
      } else if (action === 'warn' && !p.maxPrefixWarned) {
        p.maxPrefixWarned = true;
        p.log.warn({ limit: max.limit, accepted: p.rin.accepted }, 'maximum prefixes exceeded');
      }
    }
    this.scheduleFlush();
  }

  private onRouteRefresh(p: PeerEntry, msg: RouteRefreshMessage): void {
    const f = familyName(msg.afi, msg.safi);
    // RFC 7313 §5: BoRR/EoRR and unknown subtypes from the peer are not requests.
    if (!f || msg.subtype !== 0 || !p.exportPeer?.families.includes(f)) return;
    p.log.info({ family: f }, 'route refresh requested');
    this.resend(p, f);
    this.scheduleFlush();
  }

  private resend(p: PeerEntry, family: FamilyName): void {
    if (!p.exportPeer) return;
    this.resetOut(p, family);
    for (const e of this.rib.selected()) if (e.family === family) this.markDirty(e);
  }

  private count(p: PeerEntry, dir: 'in' | 'out', m: BgpMessage): void {
    const s = p.stats;
    if (dir === 'in') {
      s.messagesIn++;
      if (m.type === 'update') s.updatesIn++;
      if (m.type === 'notification') {
        const k = `${m.code}/${m.subcode}`;
        s.notificationsIn[k] = (s.notificationsIn[k] ?? 0) + 1;
      }
    } else {
      s.messagesOut++;
      if (m.type === 'update') s.updatesOut++;
      if (m.type === 'notification') {
        const k = `${m.code}/${m.subcode}`;
        s.notificationsOut[k] = (s.notificationsOut[k] ?? 0) + 1;
      }
    }
  }

  // ---------------------------------------------------------------- propagation

  /** Applies one Loc-RIB change: event stream + staging into every established peer. */
  private apply(ch: BestChange | undefined): void {
    // While deferring (RFC 4724 §4.1) the Loc-RIB changes but nothing is advertised or emitted.
    if (!ch || this.deferring) return;
    this.markDirty(ch.entry);
    const before = visible(ch.previous);
    const after = visible(ch.selection);
    if (!before && !after) return;
    const e = ch.entry;
    this.emit(
      'route',
      after
        ? this.selectedEvent(before ? 'replace' : 'add', e, after)
        : { event: 'withdraw', prefix: e.prefix, family: e.family, nextHops: NO_HOPS },
    );
  }

  /** The route event for a learned selection. */
  private selectedEvent(event: 'add' | 'replace', e: LocRibEntry, sel: Selection): RouteEvent {
    const best = bestOf(sel);
    this.pathOf(best.attrs);
    const nextHops = sel === best ? this.lastHops : nextHopsOf(sel);
    const ev: RouteEvent = { event, prefix: e.prefix, family: e.family, nextHops, asPath: this.lastPath };
    if (best.peer) ev.peer = best.peer.address;
    return ev;
  }

  /**
   * The flattened AS path and the next hops of a lone best route, for the last attribute object
   * seen: the prefixes of one UPDATE share it, so their events share these (read-only) arrays.
   */
  private lastPathAttrs?: RouteAttrs;
  private lastPath: readonly number[] = [];
  private lastHops: readonly string[] = NO_HOPS;
  private pathOf(a: RouteAttrs): void {
    if (a === this.lastPathAttrs) return;
    this.lastPathAttrs = a;
    this.lastPath = Object.freeze(a.asPath.flatMap((s) => s.asns));
    this.lastHops = a.nextHop === '' ? NO_HOPS : Object.freeze([a.nextHop]);
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = this.clock.setTimer(this.config.advertisementIntervalMs ?? 0, () => {
      this.flushTimer = undefined;
      this.flushNow();
    });
  }

  /**
   * Brings every established peer's Adj-RIB-Out up to date with the changed Loc-RIB entries: the
   * export decision per peer, compared with what the peer was last sent (LocRibEntry.out), and
   * the differences sent as UPDATEs packed per attribute set (withdrawals first).
   */
  private flushNow(): void {
    const list = this.dirty;
    if (list.length === 0) return;
    this.dirty = [];
    const peers: PeerEntry[] = [];
    const targets: ExportTarget[] = [];
    for (const p of this.peers.values()) {
      if (!p.exportPeer) continue;
      peers.push(p);
      targets.push({ slot: p.slot, peer: p.exportPeer, paused: p.paused, held: p.held });
    }
    const plan = planExport(list, targets);
    for (const e of plan.prune) this.rib.prune(e);
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i] as PeerEntry;
      const pp = plan.peers[i] as PeerPlan;
      const d4 = pp.delta['ipv4-unicast'];
      const d6 = pp.delta['ipv6-unicast'];
      p.advertised += d4 + d6;
      if (d4 !== 0) p.advertisedByFamily.set('ipv4-unicast', (p.advertisedByFamily.get('ipv4-unicast') ?? 0) + d4);
      if (d6 !== 0) p.advertisedByFamily.set('ipv6-unicast', (p.advertisedByFamily.get('ipv6-unicast') ?? 0) + d6);
      const ctx = p.session.ctx;
      // One write per peer and flush: a burst becomes one (or a few) TCP segments per peer.
      const frames: Buffer[] = [];
      for (const [family, prefixes] of pp.withdraw)
        for (const f of packUpdates(withdrawNlri(family, prefixes), ctx)) frames.push(f);
      for (const g of pp.announce)
        for (const f of packUpdates(announceNlri(g.family, g.attrs, g.prefixes), ctx)) frames.push(f);
      if (frames.length > 0) p.session.sendEncoded(frames, frames.length);
      this.checkSendBuffer(p);
    }
  }

  /**
   * Back-pressure: above the soft limit exports to `p` pause (held, see export-plan.ts) until
   * the socket drains; above the hard limit the session ends with Cease 6/8 (Out of Resources).
   */
  private checkSendBuffer(p: PeerEntry): void {
    const queued = p.session.writableLength;
    if (queued > this.hardLimit) {
      p.log.warn({ queuedBytes: queued, hardLimitBytes: this.hardLimit }, 'send buffer over hard limit: Cease 6/8');
      p.session.stop('send buffer over hard limit', true, notifications.cease(CeaseSubcode.OutOfResources));
      return;
    }
    if (!p.paused && queued > this.softLimit) {
      p.paused = true;
      p.log.info({ queuedBytes: queued, softLimitBytes: this.softLimit }, 'peer not reading: exports paused');
      this.pollDrain(p);
    }
  }

  /**
   * 'drain' comes only after a write() returned false (past the socket's highWaterMark, 16 kB):
   * with a soft limit below that, or when the socket empties between checks, the buffer is
   * polled as well (DRAIN_POLL_MS) while paused.
   */
  private pollDrain(p: PeerEntry): void {
    const session = p.session;
    this.clock.setTimer(DRAIN_POLL_MS, () => {
      if (!p.paused || p.session !== session || !p.exportPeer || this.stopped) return;
      if (session.writableLength <= this.softLimit / 2) this.onDrain(p);
      else this.pollDrain(p);
    });
  }

  /** The socket drained: resume exports with what was held back, then any pending End-of-RIB. */
  private onDrain(p: PeerEntry): void {
    if (!p.paused || !p.exportPeer) return;
    p.paused = false;
    p.log.info({ held: p.held.size }, 'peer reading again: exports resumed');
    for (const e of p.held.keys()) {
      if (p.paused) break;
      this.markDirty(e);
    }
    this.flushNow();
    if (!p.paused && p.held.size === 0 && p.eorPending.length > 0) {
      const fams = p.eorPending;
      p.eorPending = [];
      this.sendEndOfRib(p, fams);
    }
  }

  // ---------------------------------------------------------------- status

  /** Best routes (learned and local), for status and tests. */
  bestRoutes(): BestRouteView[] {
    return bestRoutesOf(this.rib);
  }

  peerStatus(address?: string): PeerStatus[] {
    const list = address ? [this.peer(address)] : [...this.peers.values()];
    return list.map((p) => peerStatusOf(p, this.clock.now()));
  }

  status(): SpeakerStatus {
    const s: SpeakerStatus = {
      asn: this.config.asn,
      routerId: this.config.routerId,
      routeReflector: this.config.routeReflector !== undefined,
      locRibPrefixes: this.rib.size,
      announced: [...this.local.keys()],
      ...(this.deferring ? { selectionDeferred: true } : {}),
      peers: this.peerStatus(),
    };
    if (this.config.listen)
      s.listen = { address: this.config.listen.address, port: this.listener?.port ?? this.config.listen.port };
    if (this.config.routeReflector) s.clusterId = this.me.clusterId;
    return s;
  }
}

/** The selection if it is a learned route (our own routes are not route events). */
const NO_HOPS: readonly string[] = Object.freeze([]);

function visible(s: Selection | undefined): Selection | undefined {
  return s && bestOf(s).peer ? s : undefined;
}

/** The route this speaker originates for `prefix` (canonicalised); SpeakerError when invalid. */
function localRoute(prefix: string, opts: AnnounceOptions): Route {
  const canon = canonicalPrefix(prefix);
  if (!canon) throw new SpeakerError('invalid-config', `invalid prefix ${prefix}`);
  const attrs: RouteAttrs = { origin: 'igp', asPath: [], nextHop: opts.nextHop ?? '' };
  if (opts.med !== undefined) attrs.med = opts.med;
  if (opts.localPref !== undefined) attrs.localPref = opts.localPref;
  if (opts.communities?.length) {
    const c = parseCommunities(opts.communities);
    if (!c.ok) throw new SpeakerError('invalid-config', `invalid community ${c.bad}`);
    if (c.attrs.communities) attrs.communities = c.attrs.communities;
    if (c.attrs.largeCommunities) attrs.largeCommunities = c.attrs.largeCommunities;
  }
  return { prefix: canon, family: familyOfPrefix(canon), attrs, peer: undefined, stale: false };
}
