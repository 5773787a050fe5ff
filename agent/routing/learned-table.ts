/**
 * The Loc-RIB's routes planned one at a time (pure, no I/O): the data plane's view of what BGP
 * learned, each prefix with what the planner made of it. A change to one prefix costs one
 * planner call and names the one destination whose desired route changed, so a table streaming
 * in (100k routes in batches) costs O(changes), not O(table) per batch. Only a new base plan
 * (nodes, pools, blocks, this node's addresses changed) plans every route again.
 *
 * Same answer as plan() over the whole table (learned-table.test.ts checks it): a destination
 * wanted by two learned prefixes (host bits set, or one prefix under two spellings) is held by
 * the one that came first; when it goes, the next one takes over.
 */
import { type BasePlan, type LearnedOutcome, routeKey } from './plan.js';
import type { LearnedRoute, RouteSpec, Skipped } from './types.js';

/** One Loc-RIB change: a best route (prefix via nextHop), or `nextHop` undefined when it is withdrawn. */
export interface LearnedChange {
  prefix: string;
  nextHop?: string;
}

/** A destination (routeKey) whose desired route changed: its route now, or none when no learned route wants it. */
export interface DesiredRouteChange {
  key: string;
  route?: RouteSpec;
}

interface Entry {
  nextHop: string;
  out: LearnedOutcome;
  /** routeKey of the route it wants (out has a route). */
  key?: string | undefined;
}

export class LearnedTable {
  /** By prefix, in arrival order. */
  private readonly entries = new Map<string, Entry>();
  /** Route key -> the prefixes that want it, the first holding it. */
  private readonly claims = new Map<string, string[]>();
  private base: BasePlan | undefined;

  /** A new base plan: every learned route is planned again against it. */
  setBase(base: BasePlan): void {
    this.base = base;
    this.claims.clear();
    for (const [prefix, e] of this.entries) this.plan(prefix, e);
  }

  /** Replaces the whole table (planned against the current base, if any). */
  replace(all: readonly LearnedRoute[]): void {
    this.entries.clear();
    this.claims.clear();
    for (const l of all) this.apply([l]);
  }

  /**
   * Applies Loc-RIB changes in order; returns the destinations whose desired route changed (none
   * before the first base plan: setBase plans the table then).
   */
  apply(changes: readonly LearnedChange[]): DesiredRouteChange[] {
    const touched = new Set<string>();
    for (const c of changes) {
      const old = this.entries.get(c.prefix);
      if (old?.key !== undefined) {
        this.unclaim(c.prefix, old.key);
        touched.add(old.key);
      }
      // A changed prefix moves to the end of the arrival order (its claim joins the end too).
      this.entries.delete(c.prefix);
      if (c.nextHop === undefined) continue;
      const e: Entry = { nextHop: c.nextHop, out: null };
      this.entries.set(c.prefix, e);
      if (this.base && this.plan(c.prefix, e) !== undefined) touched.add(e.key!);
    }
    const out: DesiredRouteChange[] = [];
    for (const key of touched) {
      const route = this.holder(key);
      out.push(route ? { key, route } : { key });
    }
    return out;
  }

  /** The route each destination's holder wants. */
  routes(): RouteSpec[] {
    const out: RouteSpec[] = [];
    for (const key of this.claims.keys()) {
      const r = this.holder(key);
      if (r) out.push(r);
    }
    return out;
  }

  /** Learned routes the planner skipped, with its reason. */
  skipped(): Skipped[] {
    const out: Skipped[] = [];
    for (const [prefix, e] of this.entries) {
      if (e.out && 'skip' in e.out) out.push({ what: `learned ${prefix} via ${e.nextHop}`, reason: e.out.skip });
    }
    return out;
  }

  /** Plans one entry and claims its destination; returns the key it wants, if any. */
  private plan(prefix: string, e: Entry): string | undefined {
    e.out = this.base!.learned({ prefix, nextHop: e.nextHop });
    e.key = e.out && 'route' in e.out ? routeKey(e.out.route) : undefined;
    if (e.key === undefined) return undefined;
    const list = this.claims.get(e.key);
    if (list) list.push(prefix);
    else this.claims.set(e.key, [prefix]);
    return e.key;
  }

  private unclaim(prefix: string, key: string): void {
    const list = this.claims.get(key);
    if (!list) return;
    const i = list.indexOf(prefix);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.claims.delete(key);
  }

  private holder(key: string): RouteSpec | undefined {
    const first = this.claims.get(key)?.[0];
    const out = first === undefined ? undefined : this.entries.get(first)?.out;
    return out && 'route' in out ? out.route : undefined;
  }
}
