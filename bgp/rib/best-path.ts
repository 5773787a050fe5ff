/**
 * Best-path selection (RFC 4271 §9.1.2.2), one step per RFC rule. Each step narrows the set of
 * candidates; selection stops when one is left. The set left after the eBGP-over-iBGP step (the
 * IGP-cost step is a no-op: next hops are all equally reachable to us) is the ECMP group
 * (equal up to the tie-breakers, like BIRD `merge paths` / GoBGP multipath).
 */
import type { AsPathSegment, Origin } from '../codec/index.js';
import { bgpIdToNumber } from '../fsm/index.js';
import { compareAddresses } from './prefix.js';
import type { Route } from './types.js';

export interface SelectionStep {
  name: string;
  select(candidates: Route[]): Route[];
}

/** Keeps the candidates that compare lowest under `cmp` (all ties). */
function keepMin(candidates: Route[], cmp: (a: Route, b: Route) => number): Route[] {
  let best: Route[] = [];
  for (const r of candidates) {
    if (best.length === 0) best = [r];
    else {
      const c = cmp(r, best[0] as Route);
      if (c < 0) best = [r];
      else if (c === 0) best.push(r);
    }
  }
  return best;
}

/** RFC 4271 §9.1.2.2 a: AS_SET counts as 1, confederation segments as 0. */
export function asPathLength(path: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of path) {
    if (s.type === 'sequence') n += s.asns.length;
    else if (s.type === 'set') n += 1;
  }
  return n;
}

/** The neighbouring AS: the first AS in the path (RFC 4271 §9.1.2.2 c); undefined for local/iBGP-originated. */
export function neighbourAs(r: Route): number | undefined {
  const first = r.attrs.asPath.find((s) => s.type === 'sequence' || s.type === 'set');
  return first?.type === 'sequence' ? first.asns[0] : undefined;
}

const ORIGIN_RANK: Record<Origin, number> = { igp: 0, egp: 1, incomplete: 2 };
const DEFAULT_LOCAL_PREF = 100;

/** Degree of preference (RFC 4271 §9.1.1): LOCAL_PREF for iBGP routes, the default for others. */
export function localPrefOf(r: Route): number {
  return r.attrs.localPref ?? DEFAULT_LOCAL_PREF;
}

export const preferLocal: SelectionStep = {
  // Not an RFC step: routes this speaker originates win (Cisco/GoBGP "weight"), before §9.1.2.
  name: 'locally originated',
  select: (c) => (c.some((r) => !r.peer) ? c.filter((r) => !r.peer) : c),
};
export const highestLocalPref: SelectionStep = {
  name: 'highest LOCAL_PREF (§9.1.1)',
  select: (c) => keepMin(c, (a, b) => localPrefOf(b) - localPrefOf(a)),
};
export const shortestAsPath: SelectionStep = {
  name: 'shortest AS_PATH (§9.1.2.2 a)',
  select: (c) => keepMin(c, (a, b) => asPathLength(a.attrs.asPath) - asPathLength(b.attrs.asPath)),
};
export const lowestOrigin: SelectionStep = {
  name: 'lowest ORIGIN (§9.1.2.2 b)',
  select: (c) => keepMin(c, (a, b) => ORIGIN_RANK[a.attrs.origin] - ORIGIN_RANK[b.attrs.origin]),
};
export const lowestMed: SelectionStep = {
  // §9.1.2.2 c: remove a route when another from the same neighbouring AS has a lower MED; a
  // missing MED counts as the lowest value (0).
  name: 'lowest MED within the same neighbour AS (§9.1.2.2 c)',
  select: (c) =>
    c.filter((r) => {
      const as = neighbourAs(r);
      const med = r.attrs.med ?? 0;
      return !c.some((o) => o !== r && neighbourAs(o) === as && (o.attrs.med ?? 0) < med);
    }),
};
export const preferEbgp: SelectionStep = {
  name: 'eBGP over iBGP (§9.1.2.2 d)',
  select: (c) => (c.some((r) => r.peer && !r.peer.isIbgp) ? c.filter((r) => r.peer && !r.peer.isIbgp) : c),
};
export const lowestRouterId: SelectionStep = {
  // §9.1.2.2 f; RFC 4456 §9: with route reflection the ORIGINATOR_ID stands in for the BGP identifier.
  name: 'lowest BGP identifier / ORIGINATOR_ID (§9.1.2.2 f, RFC 4456 §9)',
  select: (c) => keepMin(c, (a, b) => routerIdOf(a) - routerIdOf(b)),
};
export const shortestClusterList: SelectionStep = {
  name: 'shortest CLUSTER_LIST (RFC 4456 §9)',
  select: (c) => keepMin(c, (a, b) => (a.attrs.clusterList?.length ?? 0) - (b.attrs.clusterList?.length ?? 0)),
};
export const lowestPeerAddress: SelectionStep = {
  name: 'lowest peer address (§9.1.2.2 g)',
  select: (c) => keepMin(c, (a, b) => compareAddresses(a.peer?.address ?? '0.0.0.0', b.peer?.address ?? '0.0.0.0')),
};

function routerIdOf(r: Route): number {
  return bgpIdToNumber(r.attrs.originatorId ?? r.peer?.bgpId ?? '0.0.0.0');
}

/** Steps up to the ECMP boundary. */
export const MULTIPATH_STEPS: readonly SelectionStep[] = [
  preferLocal,
  highestLocalPref,
  shortestAsPath,
  lowestOrigin,
  lowestMed,
  preferEbgp,
];
/** Tie-breakers after it. */
export const TIE_BREAK_STEPS: readonly SelectionStep[] = [lowestRouterId, shortestClusterList, lowestPeerAddress];

/**
 * The result of the decision process for one prefix: the best route alone (one candidate, or no
 * ECMP partner), or the ECMP group, best first (two or more). A lone route is not wrapped in an
 * array: most prefixes have one path, and a million one-element arrays cost ~56 MB.
 */
export type Selection = Route | readonly Route[];

/** The best path of a selection. */
export function bestOf(s: Selection): Route {
  return isGroup(s) ? (s[0] as Route) : s;
}

/** The ECMP group of a selection, best first. */
export function groupOf(s: Selection): readonly Route[] {
  return isGroup(s) ? s : [s];
}

function isGroup(s: Selection): s is readonly Route[] {
  return Array.isArray(s);
}

/** Paths of a prefix: one route, or an array (empty when none). */
export type Paths = Route | readonly Route[];

/** Runs the decision process over the candidates of one prefix; undefined when there are none. */
export function selectBest(candidates: Paths, multipath: boolean): Selection | undefined {
  if (!isGroup(candidates)) return candidates;
  if (candidates.length <= 1) return candidates[0];
  let c = [...candidates];
  for (const s of MULTIPATH_STEPS) {
    if (c.length === 1) break;
    c = s.select(c);
  }
  const group = c;
  for (const s of TIE_BREAK_STEPS) {
    if (c.length === 1) break;
    c = s.select(c);
  }
  const best = c[0] as Route;
  if (!multipath || group.length === 1) return best;
  return [best, ...group.filter((r) => r !== best)];
}
