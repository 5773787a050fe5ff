/**
 * Loc-RIB: all usable paths per prefix and the selected best path / ECMP group.
 * Every mutation returns the change of the selection (if any), which drives both the Adj-RIB-Out
 * of every peer and the best-route event stream.
 *
 * Memory: with a single path (most prefixes) an entry is one object that points at the route,
 * as path and as selection; path arrays (two or more paths) are replaced, never changed in
 * place, so a selection taken earlier stays valid. What the peers were sent is a slot set and one route
 * (see LocRibEntry.sent) instead of an array of attributes per prefix.
 */
import type { FamilyName } from '../codec/index.js';
import { groupOf, type Paths, type Selection, selectBest } from './best-path.js';
import { EMPTY_SLOTS, isEmptySlots, type SlotSet } from './slot-set.js';
import type { Route } from './types.js';

export interface LocRibEntry {
  prefix: string;
  family: FamilyName;
  /** One path per source: a route, or an array of them (empty: none); replaced, never mutated. */
  paths: Paths;
  /** The best route or ECMP group; undefined when there is no path. */
  selection: Selection | undefined;
  /**
   * Adj-RIB-Out state, kept by the speaker: the best path as of the last export, and the peer
   * slots that were sent it (each got the export of `sent` for that peer, which is a pure
   * function of route and session). An entry whose paths are gone stays while any peer still
   * has the prefix (until the withdrawal is sent), see prune().
   */
  sent: Route | undefined;
  out: SlotSet;
  /** Queued for the next Adj-RIB-Out sync (speaker). */
  dirty: boolean;
}

export interface BestChange {
  /** The entry (also after its last path went: its `out` state may still need a withdrawal). */
  entry: LocRibEntry;
  kind: 'add' | 'replace' | 'remove';
  /** New selection (absent for remove). */
  selection?: Selection;
  previous?: Selection;
}

export class LocRib {
  private readonly entries = new Map<string, LocRibEntry>();
  /** Entries kept without paths (awaiting a withdrawal to some peer): not counted in size. */
  private empty = 0;

  /** @param multipath keep ECMP groups (otherwise the group is just the best path). */
  constructor(readonly multipath = true) {}

  get size(): number {
    return this.entries.size - this.empty;
  }

  get(prefix: string): LocRibEntry | undefined {
    return this.entries.get(prefix);
  }

  /** Every prefix with a selection. */
  *selected(): IterableIterator<LocRibEntry & { selection: Selection }> {
    for (const e of this.entries.values()) if (e.selection) yield e as LocRibEntry & { selection: Selection };
  }

  /** Adds or replaces the path from `route`'s source. */
  upsert(route: Route): BestChange | undefined {
    let e = this.entries.get(route.prefix);
    if (!e) {
      // Every field from the start: one object shape for all entries.
      e = {
        prefix: route.prefix,
        family: route.family,
        paths: route,
        selection: undefined,
        sent: undefined,
        out: EMPTY_SLOTS,
        dirty: false,
      };
      this.entries.set(route.prefix, e);
    } else {
      const paths = groupOf(e.paths);
      if (paths.length === 0) this.empty--;
      const i = indexOfSource(paths, route.peer?.address);
      if (paths.length === 0 || (paths.length === 1 && i === 0)) e.paths = route;
      else {
        const next = paths.slice();
        if (i >= 0) next[i] = route;
        else next.push(route);
        e.paths = next;
      }
    }
    return this.reselect(e);
  }

  /** Removes the path from `source` (peer address, or undefined for this speaker's own route). */
  remove(prefix: string, source: string | undefined): BestChange | undefined {
    const e = this.entries.get(prefix);
    if (e === undefined) return undefined;
    const paths = groupOf(e.paths);
    const i = indexOfSource(paths, source);
    if (i < 0) return undefined;
    e.paths =
      paths.length === 1 ? NO_PATHS : paths.length === 2 ? (paths[1 - i] as Route) : paths.filter((_, j) => j !== i);
    const ch = this.reselect(e);
    if (e.paths === NO_PATHS) {
      if (isEmptySlots(e.out)) this.entries.delete(prefix);
      else this.empty++;
    }
    return ch;
  }

  /**
   * Removes `route` itself: only while it is still the path from its source. A sweep of an old
   * session's routes that runs across event-loop turns must not remove what a new session of
   * the same peer has put there since (a new route object for the prefix).
   */
  removeRoute(route: Route): BestChange | undefined {
    const e = this.entries.get(route.prefix);
    if (e === undefined) return undefined;
    const paths = groupOf(e.paths);
    const i = indexOfSource(paths, route.peer?.address);
    if (i < 0 || paths[i] !== route) return undefined;
    return this.remove(route.prefix, route.peer?.address);
  }

  /** Drops `e` if it has no paths and no peer has it any more. */
  prune(e: LocRibEntry): void {
    if (e.paths === NO_PATHS && isEmptySlots(e.out) && this.entries.get(e.prefix) === e) {
      this.entries.delete(e.prefix);
      this.empty--;
    }
  }

  /** Every entry, also those without a selection. */
  all(): IterableIterator<LocRibEntry> {
    return this.entries.values();
  }

  private reselect(e: LocRibEntry): BestChange | undefined {
    const previous = e.selection;
    const next = selectBest(e.paths, this.multipath);
    e.selection = next;
    if (sameSelection(previous, next)) return undefined;
    const ch: BestChange = { entry: e, kind: !previous ? 'add' : !next ? 'remove' : 'replace' };
    if (next) ch.selection = next;
    if (previous) ch.previous = previous;
    return ch;
  }
}

/** The paths of an entry that has none (kept until every peer was sent the withdrawal). */
export const NO_PATHS: readonly Route[] = Object.freeze([]);

/** True when the entry has at least one path. */
export function hasPaths(e: LocRibEntry): boolean {
  return e.paths !== NO_PATHS;
}

function indexOfSource(paths: readonly Route[], source: string | undefined): number {
  for (let i = 0; i < paths.length; i++) if ((paths[i] as Route).peer?.address === source) return i;
  return -1;
}

function sameSelection(a: Selection | undefined, b: Selection | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || !Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Next hops of a selection, best first, without duplicates. */
export function nextHopsOf(s: Selection): string[] {
  const out: string[] = [];
  for (const r of groupOf(s)) if (r.attrs.nextHop !== '' && !out.includes(r.attrs.nextHop)) out.push(r.attrs.nextHop);
  return out;
}
