/**
 * An in-memory Kernel for unit tests of the reconciler. It keeps routes (ours and foreign),
 * neighbours and FDB entries with the real kernel's semantics that matter here (add fails on any
 * route holding the destination, delete only removes our protocol's route), records every call,
 * and fails on purpose: failNext(op, kind) makes the next matching call fail.
 */

import {
  type Change,
  type ChangeResult,
  type Kernel,
  KernelError,
  type KernelErrorKind,
  type KernelEvent,
  type KernelOp,
  objectKey,
} from './kernel.js';
import { fdbKey, neighKey, routeKey } from './plan.js';
import type { FdbSpec, NeighSpec, RouteSpec } from './types.js';

interface Failure {
  op: KernelOp;
  kind: KernelErrorKind;
  times: number;
  match: ((c: Change) => boolean) | undefined;
}

export interface FakeCall {
  op: KernelOp | 'apply';
  /** For single changes: the object's key. */
  key?: string;
  count?: number;
}

export class FakeKernel implements Kernel {
  /** Our routes by routeKey. */
  readonly routes = new Map<string, RouteSpec>();
  /** Foreign routes (another protocol) by routeKey. */
  readonly foreign = new Map<string, RouteSpec>();
  readonly neighbours = new Map<string, NeighSpec>();
  readonly fdb = new Map<string, FdbSpec>();
  readonly calls: FakeCall[] = [];
  private failures: Failure[] = [];
  private watchers = new Set<(e: KernelEvent) => void>();

  /** The next `times` calls of `op` (matching `match` when given) fail with `kind`. */
  failNext(op: KernelOp, kind: KernelErrorKind, times = 1, match?: (c: Change) => boolean): void {
    this.failures.push({ op, kind, times, match });
  }
  /** Fails every matching call until clearFailures(). */
  failAlways(op: KernelOp, kind: KernelErrorKind, match?: (c: Change) => boolean): void {
    this.failNext(op, kind, Number.POSITIVE_INFINITY, match);
  }
  clearFailures(): void {
    this.failures = [];
  }
  /** Total number of failures injected and hit. */
  failuresHit = 0;

  private takeFailure(op: KernelOp, c?: Change): KernelError | undefined {
    const f = this.failures.find((x) => x.op === op && x.times > 0 && (!x.match || (c !== undefined && x.match(c))));
    if (!f) return undefined;
    f.times--;
    this.failuresHit++;
    return new KernelError(op, f.kind, `injected ${f.kind} on ${op}`);
  }

  async listRoutes(): Promise<RouteSpec[]> {
    this.calls.push({ op: 'list', key: 'routes' });
    const e = this.takeFailure('list');
    if (e) throw e;
    return [...this.routes.values()].map((r) => ({ ...r }));
  }
  async listNeighbours(): Promise<NeighSpec[]> {
    this.calls.push({ op: 'list', key: 'neighbours' });
    return [...this.neighbours.values()].map((n) => ({ ...n }));
  }
  async listFdb(): Promise<FdbSpec[]> {
    this.calls.push({ op: 'list', key: 'fdb' });
    return [...this.fdb.values()].map((f) => ({ ...f }));
  }

  async apply(changes: readonly Change[]): Promise<ChangeResult[]> {
    this.calls.push({ op: 'apply', count: changes.length });
    const out: ChangeResult[] = [];
    for (const c of changes) {
      this.calls.push({ op: c.op, key: objectKey(c.obj) });
      const e = this.takeFailure(c.op, c);
      if (e) {
        out.push({ ok: false, error: e });
        continue;
      }
      out.push(this.applyOne(c));
    }
    return out;
  }

  private applyOne(c: Change): ChangeResult {
    const fail = (kind: KernelErrorKind, msg: string): ChangeResult => ({
      ok: false,
      error: new KernelError(c.op, kind, msg),
    });
    const o = c.obj;
    if (o.type === 'route') {
      const k = routeKey(o.route);
      if (c.op === 'delete') {
        if (!this.routes.has(k)) return fail('not-found', 'No such process');
        this.routes.delete(k);
        return { ok: true };
      }
      if (c.op === 'add' && (this.routes.has(k) || this.foreign.has(k))) return fail('exists', 'File exists');
      this.foreign.delete(k); // replace takes over whatever holds the destination, as the kernel does
      this.routes.set(k, { ...o.route });
      return { ok: true };
    }
    const map: Map<string, NeighSpec | FdbSpec> = o.type === 'neigh' ? this.neighbours : this.fdb;
    const k = o.type === 'neigh' ? neighKey(o.neigh) : fdbKey(o.fdb);
    if (c.op === 'delete') {
      if (!map.delete(k)) return fail('not-found', 'No such file or directory');
      return { ok: true };
    }
    map.set(k, o.type === 'neigh' ? { ...o.neigh } : { ...o.fdb });
    return { ok: true };
  }

  watch(onEvent: (e: KernelEvent) => void): () => void {
    this.watchers.add(onEvent);
    return () => this.watchers.delete(onEvent);
  }
  emit(e: KernelEvent): void {
    for (const w of this.watchers) w(e);
  }
  watcherCount(): number {
    return this.watchers.size;
  }

  /** Drift by hand: removes our route and tells the watchers, as `ip route del` would. */
  deleteByHand(r: Pick<RouteSpec, 'family' | 'dst'>): void {
    const k = routeKey(r);
    const old = this.routes.get(k);
    if (!old) return;
    this.routes.delete(k);
    this.emit({ type: 'route', deleted: true, ours: true, route: old });
  }
  /** Drift by hand: changes our route (same protocol), as `ip route change ... proto 80` would. */
  changeByHand(r: RouteSpec, silent = false): void {
    this.routes.set(routeKey(r), { ...r });
    if (!silent) this.emit({ type: 'route', deleted: false, ours: true, route: { ...r } });
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }
}
