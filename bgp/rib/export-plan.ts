/**
 * Export planning: which prefixes each established peer must be sent (announced with which
 * attributes, or withdrawn) for a batch of changed Loc-RIB entries. Pure: plain data in, a plan
 * out; the speaker encodes the plan into UPDATEs and writes them.
 *
 * Complicating factors:
 * - Adj-RIB-Out state lives in the Loc-RIB entries (LocRibEntry.sent + .out slot set): a peer
 *   whose slot is in `out` was sent the export of `sent`. Planning updates that state in place
 *   (clears `dirty`, sets/clears slots, moves `sent` to the new best path) as it decides.
 * - Back-pressure: a paused target (its socket is not draining) is not planned for. The entry is
 *   remembered in the target's `held` map with the route the peer actually holds (the `sent` of
 *   that moment, while its slot says it has one), because `sent` moves on for the other peers.
 *   When the target is unpaused and the entry comes again, the held route is what its diff is
 *   against, so nothing is lost or sent twice.
 * - The export of one (attribute object, source, family) is cached per target while its export
 *   filter does not depend on the prefix: the prefixes of one received UPDATE share it.
 * - Entries left with no path and no peer holding them are returned for pruning.
 */
import type { FamilyName, Prefix } from '../codec/index.js';
import { type ExportPeer, exportRoute } from './adj-rib-out.js';
import { attrsKey } from './attrs-key.js';
import { bestOf } from './best-path.js';
import { toPrefix } from './from-update.js';
import type { LocRibEntry } from './loc-rib.js';
import { addSlot, hasSlot, isEmptySlots, removeSlot } from './slot-set.js';
import type { Route, RouteAttrs } from './types.js';

/** One established peer as export planning sees it. */
export interface ExportTarget {
  /** Its Adj-RIB-Out slot (LocRibEntry.out). */
  slot: number;
  peer: ExportPeer;
  /** True while its socket is over the soft send limit: entries go to `held` instead. */
  paused: boolean;
  /** Entries not yet planned for this peer -> the route the peer holds for them (see above). */
  held: Map<LocRibEntry, Route | undefined>;
}

/** One attribute set and the prefixes announced with it. */
export interface AnnounceGroup {
  family: FamilyName;
  attrs: RouteAttrs;
  prefixes: Prefix[];
}

/** What one target must be sent. */
export interface PeerPlan {
  /** Withdrawals per family (sent first). */
  withdraw: Map<FamilyName, Prefix[]>;
  /** Announcements, one group per distinct attribute contents and family. */
  announce: AnnounceGroup[];
  /** Change of the number of prefixes the peer holds from us, per family. */
  delta: { 'ipv4-unicast': number; 'ipv6-unicast': number };
}

export interface ExportPlan {
  /** Same order as the targets. */
  peers: PeerPlan[];
  /** Entries without paths that no peer holds any more (LocRib.prune them). */
  prune: LocRibEntry[];
}

/** Plans the export of `entries` (each at most once) to `targets`; updates the entries' Adj-RIB-Out state. */
export function planExport(entries: readonly LocRibEntry[], targets: readonly ExportTarget[]): ExportPlan {
  const n = targets.length;
  const groups: Map<RouteAttrs, AnnounceGroup>[] = [];
  const withdraws: Map<FamilyName, Prefix[]>[] = [];
  // Per target: the export result for the last (attribute object, source, family) seen.
  const lastAttrs: (RouteAttrs | undefined)[] = [];
  const lastSrc: (Route['peer'] | null)[] = [];
  const lastFamily: (FamilyName | undefined)[] = [];
  const lastOut: (RouteAttrs | undefined)[] = [];
  const lastGroupAttrs: (RouteAttrs | undefined)[] = [];
  const lastGroup: (AnnounceGroup | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    groups.push(new Map());
    withdraws.push(new Map());
    lastAttrs.push(undefined);
    lastSrc.push(null);
    lastFamily.push(undefined);
    lastOut.push(undefined);
    lastGroupAttrs.push(undefined);
    lastGroup.push(undefined);
  }
  const delta4 = new Int32Array(n);
  const delta6 = new Int32Array(n);
  const prune: LocRibEntry[] = [];
  for (const e of entries) {
    e.dirty = false;
    const v6 = e.family === 'ipv6-unicast';
    const best = e.selection && bestOf(e.selection);
    const sent = e.sent;
    // Codec form of the prefix, made once for all targets.
    let nlri: Prefix | undefined;
    for (let i = 0; i < n; i++) {
      const t = targets[i] as ExportTarget;
      const s = t.slot;
      let had = sent;
      if (t.held.size > 0 && t.held.has(e)) {
        if (t.paused) continue;
        had = t.held.get(e);
        t.held.delete(e);
      } else if (t.paused) {
        t.held.set(e, sent);
        continue;
      }
      const ep = t.peer;
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
      // The peer has the export of `had` when its slot is in `out`.
      const inOut = hasSlot(e.out, s);
      if (next === undefined) {
        if (!inOut) continue;
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
      if (inOut) {
        if (best === had) continue;
        const prev = had === undefined ? undefined : exportRoute(had, ep);
        if (prev === next || (prev !== undefined && attrsKey(prev) === attrsKey(next))) continue;
      } else {
        e.out = addSlot(e.out, s);
        const d = v6 ? delta6 : delta4;
        d[i] = (d[i] as number) + 1;
      }
      let l = next === lastGroupAttrs[i] ? lastGroup[i] : undefined;
      if (l === undefined) {
        const g = groups[i] as Map<RouteAttrs, AnnounceGroup>;
        l = g.get(next);
        if (l === undefined) {
          l = { family: e.family, attrs: next, prefixes: [] };
          g.set(next, l);
        }
        lastGroupAttrs[i] = next;
        lastGroup[i] = l;
      }
      nlri ??= toPrefix(e.prefix);
      l.prefixes.push(nlri);
    }
    e.sent = best;
    if (best === undefined && isEmptySlots(e.out)) prune.push(e);
  }
  const peers: PeerPlan[] = [];
  for (let i = 0; i < n; i++) {
    // Distinct attribute objects with equal contents go out together.
    const byKey = new Map<string, AnnounceGroup>();
    for (const g of (groups[i] as Map<RouteAttrs, AnnounceGroup>).values()) {
      const k = `${g.family}|${attrsKey(g.attrs)}`;
      const have = byKey.get(k);
      if (have === undefined) byKey.set(k, g);
      else for (const x of g.prefixes) have.prefixes.push(x);
    }
    peers.push({
      withdraw: withdraws[i] as Map<FamilyName, Prefix[]>,
      announce: [...byKey.values()],
      delta: { 'ipv4-unicast': delta4[i] as number, 'ipv6-unicast': delta6[i] as number },
    });
  }
  return { peers, prune };
}
