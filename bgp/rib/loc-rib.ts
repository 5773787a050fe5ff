/**
 * Loc-RIB: all usable paths per prefix and the selected best path / ECMP group.
 * Every mutation returns the change of the selection (if any), which drives both the Adj-RIB-Out
 * of every peer and the best-route event stream.
 */
import type { FamilyName } from '../codec/index.js';
import { type Selection, selectBest } from './best-path.js';
import { type Route, sourceKey } from './types.js';

export interface LocRibEntry {
  family: FamilyName;
  /** One path per source (peer address or 'local'). */
  paths: Map<string, Route>;
  selection?: Selection;
}

export interface BestChange {
  prefix: string;
  family: FamilyName;
  kind: 'add' | 'replace' | 'remove';
  /** New selection (absent for remove). */
  selection?: Selection;
  previous?: Selection;
}

export class LocRib {
  private readonly entries = new Map<string, LocRibEntry>();

  /** @param multipath keep ECMP groups (otherwise the group is just the best path). */
  constructor(readonly multipath = true) {}

  get size(): number {
    return this.entries.size;
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
      e = { family: route.family, paths: new Map() };
      this.entries.set(route.prefix, e);
    }
    e.paths.set(sourceKey(route), route);
    return this.reselect(route.prefix, e);
  }

  /** Removes the path from `source` (peer address or 'local'). */
  remove(prefix: string, source: string): BestChange | undefined {
    const e = this.entries.get(prefix);
    if (!e?.paths.delete(source)) return undefined;
    const ch = this.reselect(prefix, e);
    if (e.paths.size === 0) this.entries.delete(prefix);
    return ch;
  }

  private reselect(prefix: string, e: LocRibEntry): BestChange | undefined {
    const previous = e.selection;
    const next = selectBest([...e.paths.values()], this.multipath);
    if (next) e.selection = next;
    else delete e.selection;
    if (sameSelection(previous, next)) return undefined;
    const ch: BestChange = { prefix, family: e.family, kind: !previous ? 'add' : !next ? 'remove' : 'replace' };
    if (next) ch.selection = next;
    if (previous) ch.previous = previous;
    return ch;
  }
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
