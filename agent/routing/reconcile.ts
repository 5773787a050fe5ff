/**
 * The route reconciler: declare, then apply (Calico's RouteTable.SetRoutes + Apply). Callers hand
 * it the whole desired state (setDesired(plan(input))), or a change of some routes (patchRoutes,
 * from a LearnedTable); it diffs that against what it knows of the kernel and applies only the
 * difference through a Kernel.
 *
 * Complicating factors:
 * - Adopt on start, never flush: the first pass lists the kernel and leaves every route that
 *   already matches alone (an agent restart must not blackhole a pod). Routes of ours that the new
 *   desired state lacks are removed only once the caller says its desired state is complete
 *   (setDesired(d, { complete: true }), e.g. after BGP end-of-RIB) or `startupGraceMs` has passed:
 *   until then a route learned over BGP but not yet re-learned stays.
 * - Per-object errors: each failed change is kept in a map with its kind and attempts and retried
 *   with exponential backoff (jittered, clock-injected); the rest of the batch goes on. One bad
 *   route never blocks the others.
 * - Ownership: `add` for a destination we do not hold (fails 'exists' on a foreign route, which is
 *   then left alone and retried later), `replace` only for one of ours, `delete` only ours.
 * - Drift: kernel events (route monitor) mark a key dirty when our route vanished or changed; a
 *   periodic full resync re-lists everything and catches what events miss (link-down flushes,
 *   neighbour/FDB changes, a lost monitor).
 * - One pass at a time: setDesired/events during a pass mark keys dirty and cause another pass.
 * - Order inside a pass: neighbours and FDB entries before the routes that use them; route
 *   deletions before neighbour/FDB deletions.
 */
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import {
  type Change,
  type ChangeResult,
  isKernelError,
  type Kernel,
  KernelError,
  type KernelErrorKind,
  type KernelEvent,
  type KernelObject,
  objectKey,
  routeObjectKey,
} from './kernel.js';
import type { DesiredState, FdbSpec, NeighSpec, RouteSpec } from './types.js';

export interface ReconcilerOptions {
  kernel: Kernel;
  clock: Clock;
  log: Logger;
  /** Full re-list of the kernel every this many ms (default 90 s, Felix's route refresh). */
  resyncIntervalMs?: number;
  /** Deletions of our routes wait for a complete desired state or this long after start (default 120 s). */
  startupGraceMs?: number;
  /** First retry after this many ms, doubling up to maxRetryMs (defaults 100 ms and 30 s). */
  retryBaseMs?: number;
  maxRetryMs?: number;
  /** Called after each pass with its duration (for a metrics histogram). */
  onPass?: (ms: number) => void;
}

export interface ObjectFailure {
  key: string;
  op: Change['op'];
  kind: KernelErrorKind;
  message: string;
  attempts: number;
  /** Clock ms of the next attempt. */
  retryAt: number;
}

export interface ReconcilerStatus {
  desiredRoutes: number;
  /** Desired routes the kernel holds as desired. */
  routesProgrammed: number;
  /** Routes of ours in the kernel that are not desired, kept until the desired state is complete. */
  deletionsDeferred: number;
  failures: ObjectFailure[];
  passes: number;
  lastPassMs: number;
  fullSyncs: number;
  /** Clock ms of the last successful full list, or null. */
  lastFullSyncAt: number | null;
  /** True once every desired object is in the kernel and nothing is failing. */
  converged: boolean;
}

function same(a: KernelObject, b: KernelObject): boolean {
  if (a.type === 'route' && b.type === 'route') {
    const x = a.route;
    const y = b.route;
    return (
      x.family === y.family &&
      x.dst === y.dst &&
      x.type === y.type &&
      (x.gateway ?? '') === (y.gateway ?? '') &&
      (x.type === 'blackhole' || (x.dev ?? '') === (y.dev ?? '')) &&
      Boolean(x.onlink) === Boolean(y.onlink)
    );
  }
  if (a.type === 'neigh' && b.type === 'neigh') return a.neigh.mac.toLowerCase() === b.neigh.mac.toLowerCase();
  if (a.type === 'fdb' && b.type === 'fdb') return a.fdb.dst === b.fdb.dst;
  return false;
}

const rank = { neigh: 0, fdb: 0, route: 1 } as const;

export class RouteReconciler {
  private readonly kernel: Kernel;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly resyncIntervalMs: number;
  private readonly startupGraceMs: number;
  private readonly retryBaseMs: number;
  private readonly maxRetryMs: number;
  private readonly onPass: ((ms: number) => void) | undefined;

  private desired = new Map<string, KernelObject>();
  private actual = new Map<string, KernelObject>();
  private dirty = new Set<string>();
  private deferred = new Set<string>();
  private failures = new Map<string, ObjectFailure>();
  private complete = false;
  private graceOver = false;
  private needFullSync = true;
  private listFailures = 0;
  private started = false;
  private running: Promise<void> | null = null;
  private rerun = false;
  private wake: TimerHandle | null = null;
  private wakeAt = Number.POSITIVE_INFINITY;
  private resyncTimer: TimerHandle | null = null;
  private graceTimer: TimerHandle | null = null;
  private unwatch: (() => void) | null = null;
  private idleWaiters: (() => void)[] = [];
  private stats = { passes: 0, lastPassMs: 0, fullSyncs: 0, lastFullSyncAt: null as number | null };

  constructor(opts: ReconcilerOptions) {
    this.kernel = opts.kernel;
    this.clock = opts.clock;
    this.log = opts.log.child({ component: 'routing' });
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 90_000;
    this.startupGraceMs = opts.startupGraceMs ?? 120_000;
    this.retryBaseMs = opts.retryBaseMs ?? 100;
    this.maxRetryMs = opts.maxRetryMs ?? 30_000;
    this.onPass = opts.onPass;
  }

  /**
   * Declares the whole desired state. `complete: false` while the sources are still converging
   * (deletions of our other routes wait); the default `true` allows them.
   */
  setDesired(d: Pick<DesiredState, 'routes' | 'neighbours' | 'fdb'>, opts: { complete?: boolean } = {}): void {
    const next = new Map<string, KernelObject>();
    const put = (o: KernelObject) => next.set(objectKey(o), o);
    for (const route of d.routes) put({ type: 'route', route });
    for (const neigh of d.neighbours) put({ type: 'neigh', neigh });
    for (const fdb of d.fdb) put({ type: 'fdb', fdb });
    for (const [k, o] of next) {
      const old = this.desired.get(k);
      if (!old || !same(old, o)) {
        this.dirty.add(k);
        this.failures.delete(k); // a new wish is tried now, not after the old one's backoff
      }
    }
    for (const k of this.desired.keys()) {
      if (!next.has(k)) {
        this.dirty.add(k);
        this.failures.delete(k);
      }
    }
    this.desired = next;
    if (opts.complete !== false && !this.complete) {
      this.complete = true;
      for (const k of this.deferred) this.dirty.add(k);
      this.deferred.clear();
    }
    this.kick();
  }

  /**
   * Changes some desired routes (key: routeKey; no route = no longer desired) and leaves the rest
   * as they are: O(changes), for a learned table streaming in (learned-table.ts). The desired
   * state's completeness stays as the last setDesired said.
   */
  patchRoutes(changes: readonly { key: string; route?: RouteSpec }[]): void {
    for (const c of changes) {
      const k = routeObjectKey(c.key);
      const old = this.desired.get(k);
      if (c.route) {
        const o: KernelObject = { type: 'route', route: c.route };
        if (old && same(old, o)) continue;
        this.desired.set(k, o);
      } else {
        if (!old) continue;
        this.desired.delete(k);
      }
      this.dirty.add(k);
      this.failures.delete(k);
    }
    this.kick();
  }

  /** Subscribes to kernel events, adopts what is there and starts the periodic resync. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.unwatch = this.kernel.watch((e) => this.onEvent(e));
    this.needFullSync = true;
    this.graceTimer = this.clock.setTimer(this.startupGraceMs, () => {
      this.graceOver = true;
      for (const k of this.deferred) this.dirty.add(k);
      this.deferred.clear();
      this.kick();
    });
    this.graceTimer.unref();
    this.armResync();
    this.kick();
  }

  /** Stops timers and the event subscription (kernel routes stay); waits for a running pass. */
  async stop(): Promise<void> {
    this.started = false;
    this.unwatch?.();
    this.unwatch = null;
    this.wake?.cancel();
    this.wake = null;
    this.wakeAt = Number.POSITIVE_INFINITY;
    this.resyncTimer?.cancel();
    this.graceTimer?.cancel();
    await this.running;
  }

  /** Forces a full re-list and diff now. */
  resync(): void {
    this.needFullSync = true;
    this.kick();
  }

  /** Resolves when no pass is running and nothing is due right now (retries may still be pending). */
  idle(): Promise<void> {
    if (!this.running && !this.hasDueWork()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  status(): ReconcilerStatus {
    let desiredRoutes = 0;
    let programmed = 0;
    for (const [k, o] of this.desired) {
      if (o.type !== 'route') continue;
      desiredRoutes++;
      const a = this.actual.get(k);
      if (a && same(a, o)) programmed++;
    }
    const failures = [...this.failures.values()];
    let converged = failures.length === 0 && this.stats.lastFullSyncAt !== null;
    if (converged) {
      for (const [k, o] of this.desired) {
        const a = this.actual.get(k);
        if (!a || !same(a, o)) {
          converged = false;
          break;
        }
      }
    }
    return {
      desiredRoutes,
      routesProgrammed: programmed,
      deletionsDeferred: this.deferred.size,
      failures,
      ...this.stats,
      converged,
    };
  }

  private onEvent(e: KernelEvent): void {
    if (e.type === 'lost') {
      this.log.warn({ reason: e.reason }, 'kernel events lost, full resync');
      this.resync();
      return;
    }
    if (!e.ours) return; // foreign routes are never touched; a conflict shows up on our next add
    const k = objectKey({ type: 'route', route: e.route });
    const obj: KernelObject = { type: 'route', route: e.route };
    const a = this.actual.get(k);
    if (e.deleted) {
      if (!a) return; // our own deletion's echo
      this.actual.delete(k);
    } else {
      if (a && same(a, obj)) return; // our own change's echo
      this.actual.set(k, obj);
    }
    const d = this.desired.get(k);
    if (d ? !(this.actual.has(k) && same(this.actual.get(k)!, d)) : this.actual.has(k)) {
      this.log.info({ key: k, deleted: e.deleted }, 'route drift, repairing');
      this.dirty.add(k);
      this.failures.delete(k);
      this.kick();
    }
  }

  private armResync(): void {
    this.resyncTimer = this.clock.setTimer(this.resyncIntervalMs, () => {
      if (!this.started) return;
      this.resync();
      this.armResync();
    });
    this.resyncTimer.unref();
  }

  private deletesAllowed(): boolean {
    return this.complete || this.graceOver;
  }

  private hasDueWork(): boolean {
    if (!this.started) return false;
    if (this.needFullSync) return true;
    const now = this.clock.now();
    for (const k of this.dirty) {
      const f = this.failures.get(k);
      if (!f || f.retryAt <= now) return true;
    }
    return false;
  }

  /** Runs a pass soon (after the current turn, so a burst of setDesired/events makes one pass). */
  private kick(): void {
    if (!this.started) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    const at = this.clock.now() + delayMs;
    if (this.wake && this.wakeAt <= at) return;
    this.wake?.cancel();
    this.wakeAt = at;
    this.wake = this.clock.setTimer(delayMs, () => {
      this.wake = null;
      this.wakeAt = Number.POSITIVE_INFINITY;
      this.running = this.loop().finally(() => {
        this.running = null;
        this.afterLoop();
      });
    });
  }

  private afterLoop(): void {
    if (!this.started) {
      this.resolveIdle();
      return;
    }
    if (this.rerun || this.hasDueWork()) {
      this.rerun = false;
      this.schedule(0);
      return;
    }
    // Next retry, if any.
    let next = Number.POSITIVE_INFINITY;
    for (const k of this.dirty) {
      const f = this.failures.get(k);
      if (f) next = Math.min(next, f.retryAt);
    }
    if (next < Number.POSITIVE_INFINITY) this.schedule(Math.max(0, next - this.clock.now()));
    this.resolveIdle();
  }

  private resolveIdle(): void {
    if (this.running || this.hasDueWork() || this.rerun) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }

  private backoffMs(attempts: number): number {
    const base = Math.min(this.maxRetryMs, this.retryBaseMs * 2 ** Math.min(attempts - 1, 20));
    return Math.round(base * (0.8 + 0.4 * this.clock.random()));
  }

  private async loop(): Promise<void> {
    this.rerun = false;
    const t0 = this.clock.now();
    if (this.needFullSync) {
      this.needFullSync = false;
      try {
        const [routes, neighbours, fdb] = await Promise.all([
          this.kernel.listRoutes(),
          this.kernel.listNeighbours(),
          this.kernel.listFdb(),
        ]);
        this.adopt(routes, neighbours, fdb);
        this.listFailures = 0;
        this.stats.fullSyncs++;
        this.stats.lastFullSyncAt = this.clock.now();
      } catch (err) {
        this.listFailures++;
        const ms = this.backoffMs(this.listFailures);
        this.log.warn({ err, retryMs: ms }, 'listing kernel state failed');
        this.needFullSync = false;
        const h = this.clock.setTimer(ms, () => this.resync());
        h.unref();
        return;
      }
    }
    const now = this.clock.now();
    const changes: { key: string; change: Change }[] = [];
    for (const k of [...this.dirty]) {
      const f = this.failures.get(k);
      if (f && f.retryAt > now) continue;
      this.dirty.delete(k);
      const d = this.desired.get(k);
      const a = this.actual.get(k);
      if (d && !a) changes.push({ key: k, change: { op: 'add', obj: d } });
      else if (d && a && !same(a, d)) changes.push({ key: k, change: { op: 'replace', obj: d } });
      else if (!d && a) {
        if (this.deletesAllowed()) changes.push({ key: k, change: { op: 'delete', obj: a } });
        else this.deferred.add(k);
      } else this.failures.delete(k);
    }
    if (changes.length > 0) {
      changes.sort((x, y) => {
        const rx = x.change.op === 'delete' ? 2 + (1 - rank[x.change.obj.type]) : rank[x.change.obj.type];
        const ry = y.change.op === 'delete' ? 2 + (1 - rank[y.change.obj.type]) : rank[y.change.obj.type];
        return rx - ry;
      });
      let results: ChangeResult[];
      try {
        results = await this.kernel.apply(changes.map((c) => c.change));
      } catch (err) {
        // Nothing could be tried (e.g. the channel is gone): every change is retried.
        const kind = isKernelError(err) ? err.kind : 'transient';
        results = changes.map((c) => ({
          ok: false as const,
          error: new KernelError(c.change.op, kind, err instanceof Error ? err.message : String(err), { cause: err }),
        }));
      }
      const failedNow = this.clock.now();
      results.forEach((r, i) => {
        const { key, change } = changes[i]!;
        // A delete that finds nothing, or no device (a tunnel removed takes its routes, neighbours
        // and FDB entries with it), is done; a full resync would show anything left.
        if (r.ok || (change.op === 'delete' && (r.error.kind === 'not-found' || r.error.kind === 'iface-down'))) {
          if (change.op === 'delete') this.actual.delete(key);
          else this.actual.set(key, change.obj);
          this.failures.delete(key);
          return;
        }
        const prev = this.failures.get(key);
        const attempts = (prev?.attempts ?? 0) + 1;
        const f: ObjectFailure = {
          key,
          op: change.op,
          kind: r.error.kind,
          message: r.error.message,
          attempts,
          retryAt: failedNow + this.backoffMs(attempts),
        };
        this.failures.set(key, f);
        this.dirty.add(key);
        if (change.op === 'add' && r.error.kind === 'exists' && attempts === 1) {
          // Either a foreign route holds the destination (left alone) or ours is there and our
          // view is stale: the next pass lists again to tell.
          this.needFullSync = true;
        }
        const level = attempts === 1 ? 'warn' : 'debug';
        this.log[level]({ key, op: change.op, kind: f.kind, attempts, err: r.error.message }, 'kernel change failed');
      });
    }
    this.stats.passes++;
    this.stats.lastPassMs = this.clock.now() - t0;
    if (changes.length) this.log.debug({ changes: changes.length, ms: this.stats.lastPassMs }, 'reconcile pass');
    this.onPass?.(this.stats.lastPassMs);
  }

  /** Replaces our view of the kernel with a fresh listing; every key that differs becomes dirty. */
  private adopt(routes: RouteSpec[], neighbours: NeighSpec[], fdb: FdbSpec[]): void {
    const next = new Map<string, KernelObject>();
    for (const route of routes) next.set(objectKey({ type: 'route', route }), { type: 'route', route });
    for (const neigh of neighbours) next.set(objectKey({ type: 'neigh', neigh }), { type: 'neigh', neigh });
    for (const f of fdb) next.set(objectKey({ type: 'fdb', fdb: f }), { type: 'fdb', fdb: f });
    for (const [k, d] of this.desired) {
      const a = next.get(k);
      if (!a || !same(a, d)) this.dirty.add(k);
    }
    for (const k of next.keys()) if (!this.desired.has(k)) this.dirty.add(k);
    this.actual = next;
  }
}
