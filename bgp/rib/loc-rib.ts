/**
 * Loc-RIB: all usable paths per prefix and the selected best path / ECMP group.
 * Every mutation returns the change of the selection (if any), which drives both the Adj-RIB-Out
 * of every peer and the best-route event stream.
 */
import type { FamilyName } from '../codec/index.js';
import { type Selection, selectBest } from './best-path.js';
import { type Route, type RouteAttrs, sourceKey } from './types.js';

export interface LocRibEntry {
  prefix: string;
  family: FamilyName;
  /** One path per source (peer address or 'local'); an array (few paths per prefix) rather than a Map. */
  paths: Route[];
  selection?: Selection | undefined;
  /**
   * What each peer was last sent for this prefix, by peer slot (kept by the speaker: one array per
   * prefix instead of an entry in every peer's map). An entry whose paths are gone stays while
   * any peer still has the prefix (until the withdrawal is sent), see prune().
   */
  out?: (RouteAttrs | undefined)[] | undefined;
  /** Queued for the next Adj-RIB-Out sync (speaker). */
  dirty?: boolean;
}

export interface BestChange {
  /** The entry (also after its last path went: its `out` state may still need a withdrawal). */
  entry: LocRibEntry;
  prefix: string;
  family: FamilyName;
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
  *selected(): IterableIterator<[string, LocRibEntry & { selection: Selection }]> {
    for (const [p, e] of this.entries) if (e.selection) yield [p, e as LocRibEntry & { selection: Selection }];
  }

  /** Adds or replaces the path from `route`'s source. */
  upsert(route: Route): BestChange | undefined {
    let e = this.entries.get(route.prefix);
    if (!e) {
      // Every field from the start: one object shape for all entries (no delete either).
      e = {
        prefix: route.prefix,
        family: route.family,
        paths: [route],
        selection: undefined,
        out: undefined,
        dirty: false,
      };
      this.entries.set(route.prefix, e);
    } else {
      if (e.paths.length === 0) this.empty--;
      const i = indexOfSource(e.paths, sourceKey(route));
      if (i >= 0) e.paths[i] = route;
      else e.paths.push(route);
    }
    return this.reselect(route.prefix, e);
  }

  /** Removes the path from `source` (peer address or 'local'). */
  remove(prefix: string, source: string): BestChange | undefined {
    const e = this.entries.get(prefix);
    if (e === undefined) return undefined;
    const i = indexOfSource(e.paths, source);
    if (i < 0) return undefined;
    e.paths.splice(i, 1);
    const ch = this.reselect(prefix, e);
    if (e.paths.length === 0) {
      if (e.out === undefined) this.entries.delete(prefix);
      else this.empty++;
    }
    return ch;
  }

  /** Drops `e` if it has no paths and nothing advertised any more. */
  prune(e: LocRibEntry): void {
    if (e.paths.length === 0 && e.out === undefined && this.entries.get(e.prefix) === e) {
      this.entries.delete(e.prefix);
      this.empty--;
    }
  }

  /** Every entry, also those without a selection. */
  all(): IterableIterator<LocRibEntry> {
    return this.entries.values();
  }

  private reselect(prefix: string, e: LocRibEntry): BestChange | undefined {
    const previous = e.selection;
    const next = selectBest(e.paths, this.multipath);
    e.selection = next;
    if (sameSelection(previous, next)) return undefined;
    const ch: BestChange = {
      entry: e,
      prefix,
      family: e.family,
      kind: !previous ? 'add' : !next ? 'remove' : 'replace',
    };
    if (next) ch.selection = next;
    if (previous) ch.previous = previous;
    return ch;
  }
}

function indexOfSource(paths: readonly Route[], source: string): number {
  for (let i = 0; i < paths.length; i++) if (sourceKey(paths[i] as Route) === source) return i;
  return -1;
}

function sameSelection(a: Selection | undefined, b: Selection | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.best !== b.best || a.multipath.length !== b.multipath.length) return false;
  return a.multipath.every((r, i) => r === b.multipath[i]);
}

/** Next hops of a selection, best first, without duplicates. */
export function nextHopsOf(s: Selection): string[] {
  const out: string[] = [];
  for (const r of s.multipath) if (r.attrs.nextHop !== '' && !out.includes(r.attrs.nextHop)) out.push(r.attrs.nextHop);
  return out;
}
