/**
 * The calico-node part of petrel-agent: registration, the etcd sync, the BGP speaker and the
 * status endpoint, wired together. main.ts builds it after the IPAM socket is up.
 *
 * Complicating factors:
 *  - etcd unreachable at start: registration retries with backoff (1 s doubling to 30 s); /readyz
 *    says why; the IPAM socket already answers (code 11 while etcd is away).
 *  - an address claimed by another node: a fatal DuplicateAddressError (the agent does not route).
 *  - etcd lost while running: the last state stays (sessions and, later, routes), the sync
 *    resumes when etcd returns.
 *  - the routing part (agent/routing, wired in main.ts) takes `snapshot` events (nodes, pools,
 *    blocks), `learned` events (Loc-RIB changes that pass the import filter, once per loop turn)
 *    and `learnedReplace` (the filter changed), and fills the `routesProgrammed` / `routesReady` hooks.
 */
import { EventEmitter } from 'node:events';
import type { RouteEvent } from '../bgp/index.js';
import { type Ipam, parseSelector } from '../ipam-etcd/index.js';
import { BgpRunner } from './bgp-runner.js';
import type { Clock, TimerHandle } from './common/clock.js';
import type { Logger } from './common/log.js';
import type { AgentConfig } from './config.js';
import { type DetectMethod, ifaceOf } from './node/autodetect.js';
import { autodetect, type InternalIpSource, readInterfaces } from './node/autodetect-edge.js';
import { addrOf, nodeKeys } from './node/record.js';
import { DuplicateAddressError, NodeRegistration } from './node/register.js';
import type { LearnedChange } from './routing/learned-table.js';
import { type AgentMetrics, createAgentMetrics } from './status/metrics.js';
import type { Readiness } from './status/server.js';
import { ClusterSync } from './sync/cluster-sync.js';
import { type ClusterEtcd, EtcdUnavailableError } from './sync/etcd.js';
import { routingSnapshot } from './sync/snapshot.js';
import type { ClusterState, RoutingSnapshot } from './sync/types.js';

export const AGENT_VERSION = '0.1.0';

export class FatalStartError extends Error {
  override readonly name = 'FatalStartError';
}

export interface NodeAgentHooks {
  /** Kernel routes programmed (for metrics); the routing part sets it. */
  routesProgrammed?: () => number;
  /** Undefined = ready; else why routes are not programmed yet. */
  routesNotReady?: () => string | undefined;
  /** The data plane's status for /status. */
  dataplane?: () => unknown;
}

const checkSelector = (s: string) => {
  parseSelector(s);
};

/** `route`/`routesReset`: the speaker's best-path changes, for the status server's /routes/watch. */
export class NodeAgent extends EventEmitter<{
  snapshot: [RoutingSnapshot];
  /** Loc-RIB changes that pass the import filter (a filtered-out route arrives as a withdrawal). */
  learned: [LearnedChange[]];
  /** The import filter changed (node addresses): the whole filtered Loc-RIB. */
  learnedReplace: [{ prefix: string; nextHop: string }[]];
  fatal: [Error];
  route: [RouteEvent];
  routesReset: [];
}> {
  readonly hooks: NodeAgentHooks = {};
  readonly metrics: AgentMetrics;
  private reg: NodeRegistration | undefined;
  private sync: ClusterSync | undefined;
  private bgp: BgpRunner | undefined;
  private uplink = '';
  private retry: TimerHandle | undefined;
  private backoffMs = 1000;
  private stopped = false;
  private startError: string | undefined = 'registering';
  private lastPools = '';
  /** Labels from the Kubernetes Node that arrived before registration. */
  private pendingLabels: Record<string, string> | undefined;
  private tunnelBusy = false;
  private snapshotTimer: TimerHandle | undefined;
  private lastSnapshotMs = 0;
  private learnedTimer: TimerHandle | undefined;
  /** Addresses of every node record (the import filter: routes from peers that are nodes). */
  private nodeAddrs = new Set<string>();
  private nodeAddrsKey = '';
  /** sourcesComplete() as the last snapshot carried it. */
  private lastComplete = false;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly etcd: ClusterEtcd,
    private readonly ipam: Ipam,
    private readonly deps: { clock: Clock; log: Logger; internalIps?: InternalIpSource },
  ) {
    super();
    this.metrics = createAgentMetrics({
      peers: () => this.bgp?.peerStatus() ?? [],
      locRibPrefixes: () => this.bgp?.status()?.locRibPrefixes ?? 0,
      routesProgrammed: () => this.hooks.routesProgrammed?.() ?? 0,
      registered: () => this.reg?.alive ?? false,
      etcdConnected: () => this.sync?.status.connected ?? false,
    });
  }

  /** Resolves the node's addresses (fatal on failure: the message names the method). */
  private async addresses(): Promise<{ ipv4?: string; ipv6?: string }> {
    const out: { ipv4?: string; ipv6?: string } = {};
    const one = async (setting: AgentConfig['ip'], family: 4 | 6, method: DetectMethod, flag: string) => {
      if (setting.kind === 'none') return undefined;
      if (setting.kind === 'fixed') return setting.addrLen;
      const d = await autodetect(family, method, this.deps.internalIps);
      if (!d.ok) throw new FatalStartError(`${flag} autodetect: ${d.error}`);
      return d.addrLen;
    };
    const v4 = await one(this.cfg.ip, 4, this.cfg.ipDetect, '--ip');
    const v6 = await one(this.cfg.ip6, 6, this.cfg.ip6Detect, '--ip6');
    if (v4) out.ipv4 = v4;
    if (v6) out.ipv6 = v6;
    const ifaces = await readInterfaces();
    const a = (v4 ?? v6 ?? '').split('/')[0] ?? '';
    this.uplink = ifaceOf(ifaces, a) ?? '';
    return out;
  }

  /**
   * Replaces the node's labels (from its Kubernetes Node): the node record (pool nodeSelectors)
   * and the IPAM's view of them; tunnel addresses are re-judged on the next cluster state.
   * Before registration the labels are kept and written by it.
   */
  async setLabels(labels: Record<string, string>): Promise<void> {
    if (!this.reg) {
      this.pendingLabels = labels;
      return;
    }
    await this.reg.update({ labels });
    // The same labels through the IPAM, which drops its cached copy of them.
    await this.ipam.setNodeLabels(this.cfg.nodeName, labels);
    this.lastPools = '';
  }

  /** Starts registration in the background (retrying while etcd is away). Fatal errors emit 'fatal'. */
  async start(): Promise<void> {
    // Reading the interfaces can fail for a moment (an `ip` run cut by its timeout on a loaded
    // host): retried with backoff like registration; only a detection that finds no address is fatal.
    let addrs: { ipv4?: string; ipv6?: string } | undefined;
    for (let wait = 500; !addrs; wait = Math.min(wait * 2, 10_000)) {
      try {
        addrs = await this.addresses();
      } catch (err) {
        if (err instanceof FatalStartError || this.stopped) throw err;
        this.startError = `reading the node's addresses: ${(err as Error).message}`;
        this.deps.log.warn({ err: (err as Error).message, retryInMs: wait }, 'reading interfaces failed, retrying');
        await new Promise<void>((r) => this.deps.clock.setTimer(wait, r));
      }
    }
    this.startError = 'registering';
    this.deps.log.info({ ...addrs, uplink: this.uplink }, 'node addresses');
    const attempt = async () => {
      if (this.stopped) return;
      try {
        const restarting = (await this.etcd.get(nodeKeys.aliveOf(this.cfg.nodeName))) !== null;
        this.reg = await NodeRegistration.register(
          this.etcd,
          {
            name: this.cfg.nodeName,
            ...addrs,
            ...(this.cfg.asNumber !== undefined ? { asNumber: this.cfg.asNumber } : {}),
            ...(this.cfg.labels
              ? { labels: this.cfg.labels }
              : this.pendingLabels
                ? { labels: this.pendingLabels }
                : {}),
            ...(this.cfg.routeReflectorClusterId ? { routeReflectorClusterId: this.cfg.routeReflectorClusterId } : {}),
            agentVersion: AGENT_VERSION,
            leaseTtlSec: this.cfg.nodeLeaseTtlSec,
          },
          this.deps,
        );
        this.startError = undefined;
        if (this.pendingLabels) {
          // Kubernetes labels that arrived while registering (after it read its options).
          const l = this.pendingLabels;
          this.pendingLabels = undefined;
          void this.setLabels(l).catch((e: unknown) =>
            this.deps.log.warn({ err: (e as Error).message }, 'node labels: not applied'),
          );
        }
        this.afterRegistered(restarting);
      } catch (err) {
        if (err instanceof DuplicateAddressError) {
          this.startError = err.message;
          this.emit('fatal', err);
          return;
        }
        this.startError = `registration: ${(err as Error).message}`;
        this.deps.log.warn({ err: (err as Error).message, retryInMs: this.backoffMs }, 'registration failed, retrying');
        if (!(err instanceof EtcdUnavailableError)) this.deps.log.debug({ err }, 'registration error');
        this.retry = this.deps.clock.setTimer(
          this.backoffMs * (1 + 0.2 * this.deps.clock.random()),
          () => void attempt(),
        );
        this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
      }
    };
    await attempt();
  }

  private afterRegistered(restarting: boolean): void {
    if (this.cfg.networkingBackend === 'bgp') {
      this.bgp = new BgpRunner(
        {
          self: this.cfg.nodeName,
          selector: parseSelector,
          restarting,
          ...(this.cfg.bgpListenAddress ? { listenAddress: this.cfg.bgpListenAddress } : {}),
        },
        this.deps,
      );
      this.bgp.on('learned', () => this.scheduleLearned());
      this.bgp.on('route', (ev) => this.emit('route', ev));
      this.bgp.on('reset', () => this.emit('routesReset'));
    }
    this.sync = new ClusterSync(this.etcd, { ...this.deps, checkSelector });
    this.sync.on('state', (s) => this.onState(s));
    this.sync.start();
  }

  private onState(s: ClusterState): void {
    void this.bgp?.apply(s);
    const addrs = new Set<string>();
    for (const n of s.nodes) for (const a of [n.ipv4, n.ipv6]) if (a) addrs.add(addrOf(a).toLowerCase());
    const key = [...addrs].sort().join(',');
    if (key !== this.nodeAddrsKey) {
      this.nodeAddrs = addrs;
      this.nodeAddrsKey = key;
      if (!this.cfg.importExternalRoutes && this.bgp) {
        this.bgp.takeChanges(); // the whole table goes out now
        this.emit(
          'learnedReplace',
          this.bgp
            .learnedRoutes()
            .filter((r) => this.imports(r.peer))
            .map((r) => ({ prefix: r.prefix, nextHop: r.nextHop })),
        );
      }
    }
    const pools = JSON.stringify(s.pools);
    if (pools !== this.lastPools && !this.tunnelBusy && this.reg) {
      this.tunnelBusy = true;
      const reg = this.reg;
      void reg
        .ensureTunnelAddresses(this.ipam, s.pools)
        .then(() => {
          this.lastPools = pools;
        })
        .catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'tunnel addresses: will retry'))
        .finally(() => {
          this.tunnelBusy = false;
        });
    }
    this.scheduleSnapshot();
  }

  /**
   * Routes from external peers (a peer that is no node: a ToR, an upstream router) reach the
   * kernel only with --import-external-routes; the mesh and reflectors are nodes.
   */
  private imports(peer: string | undefined): boolean {
    return this.cfg.importExternalRoutes || peer === undefined || this.nodeAddrs.has(peer.toLowerCase());
  }

  /** Loc-RIB changes go out once per loop turn (a BGP UPDATE's prefixes together). */
  private scheduleLearned(): void {
    if (this.learnedTimer) return;
    this.learnedTimer = this.deps.clock.setTimer(0, () => {
      this.learnedTimer = undefined;
      const bgp = this.bgp;
      if (!bgp) return;
      const changes: LearnedChange[] = bgp
        .takeChanges()
        .map(({ prefix, route }) =>
          route && this.imports(route.peer) ? { prefix, nextHop: route.nextHop } : { prefix },
        );
      if (changes.length) this.emit('learned', changes);
      // Sessions up (end of the initial tables): the data plane may now delete what it lacks.
      if (this.sourcesComplete() !== this.lastComplete) this.scheduleSnapshot();
    });
  }

  private scheduleSnapshot(): void {
    if (this.snapshotTimer) return;
    // A snapshot is O(nodes + blocks): after an expensive one, the next waits as long (bursts of
    // etcd events coalesce); a cheap one goes out after this loop turn.
    const delay = this.lastSnapshotMs >= 5 ? Math.min(this.lastSnapshotMs, 500) : 0;
    this.snapshotTimer = this.deps.clock.setTimer(delay, () => {
      this.snapshotTimer = undefined;
      const t0 = this.deps.clock.now();
      const snap = this.snapshot();
      this.lastSnapshotMs = this.deps.clock.now() - t0;
      this.lastComplete = this.sourcesComplete();
      if (snap) this.emit('snapshot', snap);
    });
  }

  /** The planner's input now, without the Loc-RIB (the `learned` events carry it); undefined before the first state. */
  snapshot(): RoutingSnapshot | undefined {
    const s = this.sync?.state;
    if (!s) return undefined;
    return routingSnapshot(s, this.cfg.nodeName, this.uplink);
  }

  /**
   * True when the routing snapshot is complete enough for the data plane to delete routes it no
   * longer finds in it: etcd read, and every configured BGP session Established.
   */
  sourcesComplete(): boolean {
    if (!this.sync?.status.ready) return false;
    return !this.bgp || this.bgp.notEstablished().length === 0;
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.startError) reasons.push(this.startError);
    if (this.sync && !this.sync.status.ready) reasons.push('etcd: no state read yet');
    if (this.sync && !this.sync.status.connected) reasons.push('etcd (IPAM) unreachable');
    if (this.reg && !this.reg.alive) reasons.push('node lease lost');
    if (this.bgp) reasons.push(...this.bgp.notEstablished().map((x) => `BGP: ${x}`));
    const r = this.hooks.routesNotReady?.();
    if (r) reasons.push(`routes: ${r}`);
    return { ready: reasons.length === 0, reasons };
  }

  status(): unknown {
    const bgp = this.bgp?.status();
    const st = this.sync?.state;
    return {
      node: this.cfg.nodeName,
      version: AGENT_VERSION,
      ...(this.reg ? { record: this.reg.record } : {}),
      uplink: this.uplink,
      readiness: this.readiness(),
      etcd: this.sync?.status ?? { ready: false, connected: false },
      // `petrelctl bgp status` reads these fields.
      asn: bgp?.asn ?? 0,
      routerId: bgp?.routerId ?? '',
      routeReflector: bgp?.routeReflector ?? false,
      ...(bgp?.clusterId ? { clusterId: bgp.clusterId } : {}),
      locRibPrefixes: bgp?.locRibPrefixes ?? 0,
      announced: bgp?.announced ?? [],
      peers: bgp?.peers ?? [],
      blocks: st ? st.blocks.filter((b) => b.node === this.cfg.nodeName).map((b) => b.cidr) : [],
      ...(this.hooks.dataplane ? { dataplane: this.hooks.dataplane() } : {}),
    };
  }

  routes(): unknown {
    return this.bgp?.bestRoutes() ?? [];
  }

  /** `graceful`: SIGTERM (keep sessions for graceful restart, lease left to expire). */
  async stop(graceful: boolean): Promise<void> {
    this.stopped = true;
    this.retry?.cancel();
    this.snapshotTimer?.cancel();
    this.learnedTimer?.cancel();
    await this.sync?.stop();
    await this.bgp?.stop(graceful);
    await this.reg?.close(false);
  }
}
