/**
 * The agent's data plane (Felix's route, tunnel and NAT managers in one edge): takes routing
 * snapshots from the NodeAgent, plans (agent/routing/plan.ts, pure) and applies — tunnel devices
 * first (routes name them), then routes/neighbours/FDB through the RouteReconciler (persistent
 * `ip -batch`, route monitor, periodic resync), then the natOutgoing table. It also publishes the
 * pod MTU for the CNI plugin (one source of truth: `<stateDir>/mtu`, Calico's /var/lib/calico/mtu).
 *
 * Complicating factors:
 *  - Snapshots (nodes, pools, blocks) come in bursts of etcd events: one update runs at a time and
 *    only the newest pending snapshot is applied after it; each plans the whole table again.
 *  - The Loc-RIB arrives change by change (changeLearned), planned and diffed per prefix against
 *    the last snapshot's plan (LearnedTable): a table streaming in costs O(changes).
 *  - Device set-up costs process starts (`ip -d -json link show`): only when the planned devices
 *    change, and again on every periodic resync (a tunnel deleted by hand comes back). A device
 *    created or removed flushes what was on it without route events: the routes are re-listed.
 *  - Deletions of our routes wait until the caller says its sources are complete (BGP sessions up
 *    and etcd read), so an agent restart never withdraws a route it has not re-learned yet.
 *  - Stop leaves every route, device and NAT rule in place (pods keep working while the agent
 *    restarts); routes of a gone node go when the others' snapshots drop it.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock, TimerHandle } from './common/clock.js';
import type { Logger } from './common/logger.js';
import {
  type DesiredState,
  type DeviceResult,
  Iproute2Kernel,
  type Kernel,
  type LearnedChange,
  LearnedTable,
  NatTable,
  planBase,
  type ReconcilerStatus,
  RouteReconciler,
  TunnelDevices,
} from './routing/index.js';
import type { RoutingSnapshot } from './sync/types.js';

export interface DataplaneOptions {
  log: Logger;
  clock: Clock;
  /** Where the pod MTU is published for the CNI plugin; undefined: not written. */
  mtuFile?: string;
  /** Program learned prefixes outside every pool (default false). */
  externalRoutes?: boolean;
  /** Write routes through this petrel-netlink executable (default: `ip -batch`). */
  netlinkHelper?: string;
  /** If the helper cannot run here, fall back to `ip -batch` (--route-writer auto). */
  netlinkFallback?: boolean;
  /** Tests: a kernel, device and NAT edge other than iproute2/nft in the agent's own namespace. */
  kernel?: Kernel;
  devices?: Pick<TunnelDevices, 'apply' | 'enableForwarding'>;
  nat?: Pick<NatTable, 'apply'>;
  /** Reads an interface's MTU (default: /sys/class/net/<dev>/mtu); null when unknown. */
  readMtu?: (dev: string) => Promise<number | null>;
  /** Reconciler tuning (tests). */
  resyncIntervalMs?: number;
  startupGraceMs?: number;
  onPass?: (ms: number) => void;
}

export interface DataplaneStatus {
  /** How routes are written: petrel-netlink (rtnetlink) or `ip -batch`. */
  routeWriter: 'netlink' | 'iproute2';
  routes: ReconcilerStatus;
  devices: DeviceResult[];
  podMtu: number | null;
  uplinkMtu: number | null;
  skipped: DesiredState['skipped'];
  natPools: number;
  lastError?: string;
}

async function readSysMtu(dev: string): Promise<number | null> {
  if (!dev || dev.includes('/')) return null;
  try {
    const n = Number((await readFile(`/sys/class/net/${dev}/mtu`, 'utf8')).trim());
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

export class Dataplane {
  private readonly log: Logger;
  private readonly kernel: Kernel;
  private readonly reconciler: RouteReconciler;
  private readonly devices: Pick<TunnelDevices, 'apply' | 'enableForwarding'>;
  private readonly nat: Pick<NatTable, 'apply'>;
  private pending: { snap: RoutingSnapshot; complete: boolean } | undefined;
  private last: { snap: RoutingSnapshot; complete: boolean } | undefined;
  private running: Promise<void> | undefined;
  private lastDevices = '';
  private deviceResults: DeviceResult[] = [];
  /** The last base plan (devices, neighbours, FDB, block routes); learned routes are in `learned`. */
  private desired: DesiredState | undefined;
  private readonly learned = new LearnedTable();
  private uplinkMtu: number | null = null;
  private lastMtuWritten: number | null = null;
  private natPools = 0;
  private lastError: string | undefined;
  private forwardingOn = false;
  private deviceTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly opts: DataplaneOptions) {
    this.log = opts.log.child({ component: 'dataplane' });
    this.kernel =
      opts.kernel ??
      new Iproute2Kernel({
        log: opts.log,
        clock: opts.clock,
        ...(opts.netlinkHelper ? { netlinkHelper: opts.netlinkHelper } : {}),
        ...(opts.netlinkFallback ? { netlinkFallback: true } : {}),
      });
    this.reconciler = new RouteReconciler({
      kernel: this.kernel,
      clock: opts.clock,
      log: opts.log,
      ...(opts.resyncIntervalMs !== undefined ? { resyncIntervalMs: opts.resyncIntervalMs } : {}),
      ...(opts.startupGraceMs !== undefined ? { startupGraceMs: opts.startupGraceMs } : {}),
      ...(opts.onPass ? { onPass: opts.onPass } : {}),
    });
    this.devices = opts.devices ?? new TunnelDevices({ log: opts.log });
    this.nat = opts.nat ?? new NatTable({ log: opts.log });
  }

  /** Adopts the kernel's routes (nothing is removed until a complete snapshot). */
  start(): void {
    this.reconciler.start();
    // Tunnel devices are re-checked with the route resync's period (drift on links).
    const every = this.opts.resyncIntervalMs ?? 90_000;
    const arm = () => {
      this.deviceTimer = this.opts.clock.setTimer(every, () => {
        this.lastDevices = '';
        if (this.last) this.update(this.last.snap, this.last.complete);
        arm();
      });
      this.deviceTimer.unref();
    };
    arm();
  }

  /** Applies a snapshot (coalesced: a burst applies the newest once the running update ends). */
  update(snap: RoutingSnapshot, complete: boolean): void {
    if (this.stopped) return;
    if (snap.learned) this.learned.replace(snap.learned);
    this.queue(snap, complete);
  }

  private queue(snap: RoutingSnapshot, complete: boolean): void {
    this.last = { snap, complete };
    this.pending = this.last;
    if (!this.running) this.running = this.drain();
  }

  /**
   * Loc-RIB changes, applied at once route by route against the last plan (before the first plan
   * they wait in the table): O(changes). Routes are written on the reconciler's next pass.
   */
  changeLearned(changes: readonly LearnedChange[]): void {
    if (this.stopped || changes.length === 0) return;
    const d = this.learned.apply(changes);
    if (d.length) this.reconciler.patchRoutes(d);
  }

  /** The whole Loc-RIB again (the agent's import filter changed): re-planned on the next update. */
  replaceLearned(all: readonly { prefix: string; nextHop: string }[]): void {
    if (this.stopped) return;
    this.learned.replace(all);
    // Re-queued as it was (a snapshot's own `learned` is not read again: `all` is newer).
    if (this.last) this.queue(this.last.snap, this.last.complete);
  }

  private async drain(): Promise<void> {
    while (this.pending && !this.stopped) {
      const { snap, complete } = this.pending;
      this.pending = undefined;
      const t0 = this.opts.clock.now();
      try {
        await this.apply(snap, complete);
        this.lastError = undefined;
      } catch (err) {
        this.lastError = (err as Error).message;
        this.log.warn({ err: this.lastError }, 'data plane update failed; retried on the next snapshot');
      }
      // An update plans the whole table (base and learned): during a burst of snapshots, wait as
      // long as the last update took before planning again, so planning takes at most half the
      // time and later snapshots coalesce. A lone change (a block claimed) is planned at once.
      const took = this.opts.clock.now() - t0;
      if (this.pending && took >= 5 && !this.stopped) {
        await new Promise<void>((r) => this.opts.clock.setTimer(Math.min(took, 1000), r));
      }
    }
    this.running = undefined;
  }

  private async apply(snap: RoutingSnapshot, complete: boolean): Promise<void> {
    if (!this.forwardingOn) {
      await this.devices.enableForwarding();
      this.forwardingOn = true;
    }
    this.uplinkMtu = (await (this.opts.readMtu ?? readSysMtu)(snap.self.uplink)) ?? this.uplinkMtu;
    const base = planBase({
      ...snap,
      uplinkMtu: this.uplinkMtu ?? 1500,
      ...(this.opts.externalRoutes ? { externalRoutes: true } : {}),
    });
    const desired = base.desired;
    this.desired = desired;
    const devKey = JSON.stringify(desired.devices);
    if (devKey !== this.lastDevices) {
      this.deviceResults = await this.devices.apply(desired.devices);
      // A failed device is retried on the next snapshot or resync.
      this.lastDevices = this.deviceResults.every((r) => r.ok) ? devKey : '';
      // A device made or removed (also one recreated with new parameters) takes the routes,
      // neighbours and FDB entries on it along, and the kernel says nothing of IPv4 routes flushed
      // that way: re-list now rather than find them missing at the periodic resync.
      if (this.deviceResults.some((r) => r.action === 'created' || r.action === 'removed')) this.reconciler.resync();
    }
    // Planned against the new base only here, after the device set-up's awaits and with none
    // before setDesired: a Loc-RIB change that arrived meanwhile is in the table, so in this state.
    this.learned.setBase(base);
    this.reconciler.setDesired(
      { routes: [...desired.routes, ...this.learned.routes()], neighbours: desired.neighbours, fdb: desired.fdb },
      { complete },
    );
    await this.nat.apply(snap.pools);
    this.natPools = snap.pools.filter((p) => p.natOutgoing).length;
    await this.publishMtu(desired.podMtu);
  }

  private async publishMtu(mtu: number): Promise<void> {
    const file = this.opts.mtuFile;
    if (!file || mtu === this.lastMtuWritten) return;
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${mtu}\n`, { mode: 0o644 });
    await rename(tmp, file);
    this.lastMtuWritten = mtu;
    this.log.info({ podMtu: mtu, file }, 'pod MTU published');
  }

  /** Waits until the current update and reconcile pass are done (tests, benchmarks). */
  async idle(): Promise<void> {
    await this.running;
    await this.reconciler.idle();
  }

  /** Forces a full re-list of the kernel now. */
  resync(): void {
    this.reconciler.resync();
  }

  routesProgrammed(): number {
    return this.reconciler.status().routesProgrammed;
  }

  /** Undefined when routes are programmed as desired; else why not. */
  notReady(): string | undefined {
    if (!this.desired) return 'no routing snapshot applied yet';
    if (this.lastError) return this.lastError;
    const bad = this.deviceResults.filter((r) => !r.ok);
    if (bad.length) return `tunnel device ${bad.map((r) => r.device).join(', ')} failed`;
    const s = this.reconciler.status();
    if (s.failures.length) return `${s.failures.length} kernel object(s) failing, e.g. ${s.failures[0]?.message}`;
    if (s.routesProgrammed < s.desiredRoutes) return `${s.routesProgrammed}/${s.desiredRoutes} routes programmed`;
    return undefined;
  }

  /**
   * The planned pod veth MTU (null before the first plan). O(1): the IPAM service asks on every
   * assign, and status() walks every route.
   */
  podMtu(): number | null {
    return this.desired?.podMtu ?? null;
  }

  status(): DataplaneStatus {
    return {
      routeWriter: this.kernel instanceof Iproute2Kernel ? this.kernel.routeWriter : 'iproute2',
      routes: this.reconciler.status(),
      devices: this.deviceResults,
      podMtu: this.podMtu(),
      uplinkMtu: this.uplinkMtu,
      skipped: [...(this.desired?.skipped ?? []), ...this.learned.skipped()],
      natPools: this.natPools,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Stops watching and applying; routes, devices and NAT stay in the kernel. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.deviceTimer?.cancel();
    await this.running;
    await this.reconciler.stop();
    await this.kernel.close();
  }
}
