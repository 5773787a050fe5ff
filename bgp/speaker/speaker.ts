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
import { type Logger, silentLogger } from '../../agent/common/log.js';
import {
  type BgpMessage,
  CeaseSubcode,
  community,
  endOfRib,
  type FamilyName,
  familyName,
  notifications,
  type Prefix,
  packUpdates,
  type RouteRefreshMessage,
  shutdownNotification,
  type UpdateMessage,
} from '../codec/index.js';
import { buildOpen, type DownReason, FAMILY_AFI_SAFI, type FsmConfig, type Negotiated, State } from '../fsm/index.js';
import {
  AdjRibIn,
  addSlot,
  announceNlri,
  attrsKey,
  type BestChange,
  bestOf,
  type CompiledFilter,
  canonicalPrefix,
  compileFilter,
  type ExportPeer,
  exportRoute,
  familyOfPrefix,
  hasPaths,
  hasSlot,
  isEmptySlots,
  type LocalIdentity,
  LocRib,
  type LocRibEntry,
  nextHopsOf,
  type PeerInfo,
  type Route,
  type RouteAttrs,
  removeSlot,
  ribOpsFromUpdate,
  type Selection,
  toPrefix,
  withdrawNlri,
} from '../rib/index.js';
import { Session } from './session.js';
import { type Conn, type ListenHandle, type Network, tcpNetwork, unmapAddress } from './transport.js';
import {
  type AnnounceOptions,
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
}

interface PeerStats {
  messagesIn: number;
  messagesOut: number;
  updatesIn: number;
  updatesOut: number;
  flaps: number;
  notificationsIn: Record<string, number>;
  notificationsOut: Record<string, number>;
}

interface PeerEntry {
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
  establishedAt?: { mono: number; wall: number };
  negotiated?: Negotiated;
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

/** RFC 4724 §4.1 selection deferral default (FRR's `select-defer-time` default too). */
const DEFAULT_SELECTION_DEFERRAL_SEC = 360;

/** Changed Loc-RIB entries exported at once at most (see markDirty). */
const FLUSH_CHUNK = 4096;

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
  /** Peer per Adj-RIB-Out slot (see LocRibEntry.out). */
  private readonly slots: (PeerEntry | undefined)[] = [];
  /** Loc-RIB entries changed since the last flush (each once: LocRibEntry.dirty). */
  private dirty: LocRibEntry[] = [];
  private readonly me: LocalIdentity;
  private listener?: ListenHandle;
  private flushTimer?: { cancel(): void } | undefined;
  private stopped = false;
  /** RFC 4724 §4.1 selection deferral in progress (restarting speaker). */
  private deferring: boolean;
  private deferralTimer?: { cancel(): void } | undefined;

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
    this.deferring = config.gracefulRestart?.restarting === true;
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
      this.deferralTimer = this.clock.setTimer(sec * 1000, () => {
        this.deferralTimer = undefined;
        this.endDeferral('selection deferral timer expired');
      });
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
    this.deferralTimer?.cancel();
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
      },
    });
    this.peers.set(address, entry);
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
    const canon = canonicalPrefix(prefix);
    if (!canon) throw new SpeakerError('invalid-config', `invalid prefix ${prefix}`);
    const attrs: RouteAttrs = { origin: 'igp', asPath: [], nextHop: opts.nextHop ?? '' };
    if (opts.med !== undefined) attrs.med = opts.med;
    if (opts.localPref !== undefined) attrs.localPref = opts.localPref;
    if (opts.communities?.length) {
      for (const c of opts.communities) {
        const parts = c.split(':').map(Number);
        if (parts.length === 2 && parts.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff)) {
          attrs.communities ??= [];
          attrs.communities.push(community(parts[0] as number, parts[1] as number));
        } else if (parts.length === 3 && parts.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff)) {
          attrs.largeCommunities ??= [];
          attrs.largeCommunities.push({
            globalAdmin: parts[0] as number,
            localData1: parts[1] as number,
            localData2: parts[2] as number,
          });
        } else throw new SpeakerError('invalid-config', `invalid community ${c}`);
      }
    }
    const route: Route = { prefix: canon, family: familyOfPrefix(canon), attrs, peer: undefined, stale: false };
    this.local.set(canon, route);
    this.apply(this.rib.upsert(route));
    this.scheduleFlush();
  }

  /** Stops originating a prefix. */
  withdraw(prefix: string): void {
    const canon = canonicalPrefix(prefix);
    if (!canon || !this.local.delete(canon)) return;
    this.apply(this.rib.remove(canon, undefined));
    this.scheduleFlush();
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
    p.staleTimer?.cancel();
    delete p.staleTimer;
    const keep = new Set(
      (n.peerGracefulRestart?.families ?? []).filter((f) => f.forwardingPreserved).map((f) => f.family),
    );
    for (const f of [...p.rin.byFamily.keys()]) if (!keep.has(f)) this.sweepStale(p, f);
    if ([...p.rin.routes()].some((r) => r.stale)) {
      const ms = (this.config.gracefulRestart?.staleTimeSec ?? 300) * 1000;
      p.staleTimer = this.clock.setTimer(ms, () => {
        delete p.staleTimer;
        this.sweepStale(p);
        this.scheduleFlush();
      });
    }
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
    if (n.peerGracefulRestart)
      for (const f of n.families) p.session.send(endOfRib(FAMILY_AFI_SAFI[f].afi, FAMILY_AFI_SAFI[f].safi));
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

  /**
   * RFC 4724 §4.1: has `p` stopped holding back our selection? Peers that are shut down, or up
   * without GR, or restarting themselves (R bit) do not count; others must be up and have sent
   * End-of-RIB for every negotiated family.
   */
  private peerSettled(p: PeerEntry): boolean {
    if (p.cfg.shutdown || p.removed) return true;
    const n = p.session.negotiated;
    if (!n) return false;
    const gr = n.peerGracefulRestart;
    if (!gr || gr.restarting) return true;
    return n.families.every((f) => p.eorReceived.has(f));
  }

  private checkDeferral(): void {
    if (!this.deferring || this.stopped || !this.started()) return;
    for (const p of this.peers.values()) if (!this.peerSettled(p)) return;
    this.endDeferral('End-of-RIB from every peer');
  }

  /** Ends selection deferral: route events for the Loc-RIB, the table and End-of-RIB to every peer. */
  private endDeferral(reason: string): void {
    if (!this.deferring) return;
    this.deferring = false;
    this.deferralTimer?.cancel();
    this.deferralTimer = undefined;
    this.log.info({ reason, prefixes: this.rib.size }, 'selection deferral over: advertising');
    for (const e of this.rib.selected()) {
      const sel = visible(e.selection);
      if (sel) this.emit('route', this.selectedEvent('add', e, sel));
      this.markDirty(e);
    }
    this.flushNow();
    for (const p of this.peers.values()) {
      const n = p.session.negotiated;
      if (p.exportPeer && n?.peerGracefulRestart)
        for (const f of n.families) p.session.send(endOfRib(FAMILY_AFI_SAFI[f].afi, FAMILY_AFI_SAFI[f].safi));
    }
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
    if (reason.graceful && gr && !p.removed) {
      const families = gr.families.map((f) => f.family);
      p.log.info(
        { reason: reason.reason, restartTimeSec: gr.restartTimeSec, families },
        'session down, graceful restart: keeping routes as stale',
      );
      for (const f of [...p.rin.byFamily.keys()]) if (!families.includes(f)) this.sweepStale(p, f, true);
      p.rin.markStale(families);
      p.staleTimer?.cancel();
      p.staleTimer = this.clock.setTimer(gr.restartTimeSec * 1000, () => {
        delete p.staleTimer;
        p.log.info({}, 'graceful restart time over: dropping stale routes');
        this.sweepStale(p);
        this.scheduleFlush();
      });
    } else {
      p.log.info({ reason: reason.reason }, 'session down: withdrawing its routes');
      this.dropRoutes(p, p.rin.clear());
    }
    this.scheduleFlush();
  }

  /** Removes stale routes (of one family, or all; `all` = every route of the family, stale or not). */
  private sweepStale(p: PeerEntry, family?: FamilyName, all = false): void {
    if (all && family) p.rin.markStale([family]);
    const gone = p.rin.sweepStale(family);
    if (gone.length > 0) p.log.info({ family: family ?? 'all', routes: gone.length }, 'stale routes removed');
    this.dropRoutes(p, gone);
  }

  private dropRoutes(p: PeerEntry, routes: Route[]): void {
    for (const r of routes) this.apply(this.rib.remove(r.prefix, p.info.address));
    if (routes.length > 0) this.scheduleFlush();
  }

  private onUpdate(p: PeerEntry, msg: UpdateMessage): void {
    const n = p.session.negotiated;
    if (!n) return;
    const ops = ribOpsFromUpdate(msg, n.ctx.as4, n.families);
    if (ops.endOfRib) {
      p.log.debug({ family: ops.endOfRib }, 'End-of-RIB received');
      p.eorReceived.add(ops.endOfRib);
      this.sweepStale(p, ops.endOfRib);
      if (![...p.rin.routes()].some((r) => r.stale)) {
        p.staleTimer?.cancel();
        delete p.staleTimer;
      }
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
    for (const p of this.peers.values()) if (p.exportPeer) peers.push(p);
    const n = peers.length;
    const groups: Map<RouteAttrs, { family: FamilyName; prefixes: Prefix[] }>[] = [];
    const withdraws: Map<FamilyName, Prefix[]>[] = [];
    // Per peer: the export result for the last (attribute object, source, family) seen; the
    // prefixes of one received UPDATE share these, so most lookups end here (when the peer's
    // export filter does not depend on the prefix).
    const lastAttrs: (RouteAttrs | undefined)[] = [];
    const lastSrc: (PeerInfo | undefined)[] = [];
    const lastFamily: (FamilyName | undefined)[] = [];
    const lastOut: (RouteAttrs | undefined)[] = [];
    const lastGroupAttrs: (RouteAttrs | undefined)[] = [];
    const lastGroup: ({ family: FamilyName; prefixes: Prefix[] } | undefined)[] = [];
    for (let i = 0; i < n; i++) {
      groups.push(new Map());
      withdraws.push(new Map());
      lastAttrs.push(undefined);
      lastSrc.push(undefined);
      lastFamily.push(undefined);
      lastOut.push(undefined);
      lastGroupAttrs.push(undefined);
      lastGroup.push(undefined);
    }
    // Advertised-prefix counts per peer and family, applied once at the end (sessions carry
    // only the unicast families: see FAMILY_OF).
    const delta4 = new Int32Array(n);
    const delta6 = new Int32Array(n);
    for (const e of list) {
      e.dirty = false;
      const v6 = e.family === 'ipv6-unicast';
      const best = e.selection && bestOf(e.selection);
      const sent = e.sent;
      // Codec form of the prefix, made once for all peers.
      let nlri: Prefix | undefined;
      for (let i = 0; i < n; i++) {
        const p = peers[i] as PeerEntry;
        const s = p.slot;
        const ep = p.exportPeer as ExportPeer;
        let next: RouteAttrs | undefined;
        if (best !== undefined) {
          if (
            best.attrs === lastAttrs[i] &&
            best.peer === lastSrc[i] &&
            e.family === lastFamily[i] &&
            ep.exportFilter.always !== undefined
          )
            next = lastOut[i];
          else {
            next = exportRoute(best, ep);
            lastAttrs[i] = best.attrs;
            lastSrc[i] = best.peer;
            lastFamily[i] = e.family;
            lastOut[i] = next;
          }
        }
        // The peer has the export of `sent` when its slot is in `out` (see LocRibEntry).
        const had = hasSlot(e.out, s);
        if (next === undefined) {
          if (!had) continue;
          e.out = removeSlot(e.out, s);
          const d = v6 ? delta6 : delta4;
          d[i] = (d[i] as number) - 1;
          const w = withdraws[i] as Map<FamilyName, Prefix[]>;
          let l = w.get(e.family);
          if (l === undefined) {
            l = [];
            w.set(e.family, l);
          }
          nlri ??= toPrefix(e.prefix);
          l.push(nlri);
          continue;
        }
        if (had) {
          if (best === sent) continue;
          const prev = exportRoute(sent as Route, ep);
          if (prev === next || (prev !== undefined && attrsKey(prev) === attrsKey(next))) continue;
        } else {
          e.out = addSlot(e.out, s);
          const d = v6 ? delta6 : delta4;
          d[i] = (d[i] as number) + 1;
        }
        let l = next === lastGroupAttrs[i] ? lastGroup[i] : undefined;
        if (l === undefined) {
          const g = groups[i] as Map<RouteAttrs, { family: FamilyName; prefixes: Prefix[] }>;
          l = g.get(next);
          if (l === undefined) {
            l = { family: e.family, prefixes: [] };
            g.set(next, l);
          }
          lastGroupAttrs[i] = next;
          lastGroup[i] = l;
        }
        nlri ??= toPrefix(e.prefix);
        l.prefixes.push(nlri);
      }
      e.sent = best;
      if (best === undefined && isEmptySlots(e.out)) this.rib.prune(e);
    }
    for (let i = 0; i < n; i++) {
      const p = peers[i] as PeerEntry;
      const d4 = delta4[i] as number;
      const d6 = delta6[i] as number;
      p.advertised += d4 + d6;
      if (d4 !== 0) p.advertisedByFamily.set('ipv4-unicast', (p.advertisedByFamily.get('ipv4-unicast') ?? 0) + d4);
      if (d6 !== 0) p.advertisedByFamily.set('ipv6-unicast', (p.advertisedByFamily.get('ipv6-unicast') ?? 0) + d6);
      const ctx = p.session.ctx;
      // One write per peer and flush: a burst becomes one (or a few) TCP segments per peer.
      const frames: Buffer[] = [];
      for (const [family, prefixes] of withdraws[i] as Map<FamilyName, Prefix[]>)
        for (const f of packUpdates(withdrawNlri(family, prefixes), ctx)) frames.push(f);
      // Distinct attribute objects with equal contents go out together.
      const byKey = new Map<string, { family: FamilyName; attrs: RouteAttrs; prefixes: Prefix[] }>();
      for (const [attrs, g] of groups[i] as Map<RouteAttrs, { family: FamilyName; prefixes: Prefix[] }>) {
        const k = `${g.family}|${attrsKey(attrs)}`;
        const have = byKey.get(k);
        if (have === undefined) byKey.set(k, { family: g.family, attrs, prefixes: g.prefixes });
        else for (const x of g.prefixes) have.prefixes.push(x);
      }
      for (const g of byKey.values())
        for (const f of packUpdates(announceNlri(g.family, g.attrs, g.prefixes), ctx)) frames.push(f);
      if (frames.length > 0) p.session.sendEncoded(frames, frames.length);
    }
  }

  // ---------------------------------------------------------------- status

  /** Best routes (learned and local), for status and tests. */
  bestRoutes(): {
    prefix: string;
    family: FamilyName;
    nextHops: string[];
    peer?: string;
    local: boolean;
    stale: boolean;
  }[] {
    const out: {
      prefix: string;
      family: FamilyName;
      nextHops: string[];
      peer?: string;
      local: boolean;
      stale: boolean;
    }[] = [];
    for (const e of this.rib.selected()) {
      const b = bestOf(e.selection);
      out.push({
        prefix: e.prefix,
        family: e.family,
        nextHops: nextHopsOf(e.selection),
        ...(b.peer ? { peer: b.peer.address } : {}),
        local: !b.peer,
        stale: b.stale === true,
      });
    }
    return out;
  }

  peerStatus(address?: string): PeerStatus[] {
    const list = address ? [this.peer(address)] : [...this.peers.values()];
    return list.map((p) => this.statusOf(p));
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

  private statusOf(p: PeerEntry): PeerStatus {
    const n = p.session.negotiated;
    const fams = new Set<FamilyName>([...p.families, ...p.rin.byFamily.keys()]);
    let stale = 0;
    if (p.staleTimer) for (const r of p.rin.routes()) if (r.stale) stale++;
    const st: PeerStatus = {
      address: p.info.address,
      asn: p.cfg.asn,
      state: p.session.state,
      adminShutdown: p.cfg.shutdown ?? false,
      isIbgp: p.info.isIbgp,
      routeReflectorClient: p.info.rrClient,
      uptimeSec: p.establishedAt ? Math.floor((this.clock.now() - p.establishedAt.mono) / 1000) : 0,
      families: [...fams].map((family) => ({
        family,
        received: p.rin.byFamily.get(family)?.received ?? 0,
        accepted: p.rin.byFamily.get(family)?.accepted ?? 0,
        advertised: p.advertisedByFamily.get(family) ?? 0,
      })),
      prefixesReceived: p.rin.received,
      prefixesAccepted: p.rin.accepted,
      prefixesAdvertised: p.advertised,
      flaps: p.stats.flaps,
      messagesIn: p.stats.messagesIn,
      messagesOut: p.stats.messagesOut,
      updatesIn: p.stats.updatesIn,
      updatesOut: p.stats.updatesOut,
      notificationsIn: { ...p.stats.notificationsIn },
      notificationsOut: { ...p.stats.notificationsOut },
      staleRoutes: stale,
    };
    if (p.cfg.description) st.description = p.cfg.description;
    if (p.info.bgpId) st.peerBgpId = p.info.bgpId;
    const la = p.session.localAddress;
    if (n && la) st.localAddress = la;
    if (p.establishedAt) st.establishedAt = new Date(p.establishedAt.wall).toISOString();
    if (n) {
      st.holdTimeSec = n.holdTimeSec;
      st.keepaliveSec = n.keepaliveSec;
      if (n.peerGracefulRestart) st.peerGracefulRestart = { restartTimeSec: n.peerGracefulRestart.restartTimeSec };
    }
    const err = p.lastError ?? p.session.fsmState.lastError;
    if (err) st.lastError = err;
    return st;
  }
}

/** The selection if it is a learned route (our own routes are not route events). */
const NO_HOPS: readonly string[] = Object.freeze([]);

function visible(s: Selection | undefined): Selection | undefined {
  return s && bestOf(s).peer ? s : undefined;
}
