/**
 * The IPAM garbage collector's decisions (pure): allocations + live pods + live nodes + clock ->
 * the handles to release now, and the leak candidates to remember (Calico kube-controllers'
 * checkAllocations, design/ipam/ipam-gc.md).
 *
 * Complicating factors:
 *  - A pod that is not in the view may just not be visible yet, and a view can be momentarily
 *    wrong: an allocation is first a *candidate* leak, and released only when it has been a
 *    candidate for the whole grace period, and is itself older than the grace period. The
 *    candidate set is the planner's state, carried from one run to the next by the caller.
 *  - All or none per handle: one valid allocation keeps every address of its handle.
 *  - Pod identity is namespace/name, which a new pod can reuse (StatefulSets): an allocation
 *    is the pod's only when the pod runs on the allocation's node and, once the pod reports its
 *    addresses, the address is one of them.
 *  - Allocations without pod attributes (tunnel addresses, `petrelctl ipam assign`) are judged
 *    only by their node: leaked when the node is gone; without a node they are assumed valid.
 *  - The caller gives a view only when it is complete (informers synced); an incomplete view
 *    never reaches the planner (that is what "never releases while its view is incomplete" rests on).
 */
import { type Block, type LeakedAddress, ordinalToIp } from '../../ipam-etcd/index.js';

/** What the planner needs of a live pod. */
export interface PodView {
  /** spec.nodeName (undefined while unscheduled). */
  node: string | undefined;
  /** status.podIPs (empty until the pod reports them). */
  ips: readonly string[];
}

export type LeakReason = 'pod-gone' | 'pod-moved' | 'address-not-pods' | 'node-gone';

export interface GcInput {
  blocks: readonly Block[];
  /** Live pods by `namespace/name`. */
  pods: ReadonlyMap<string, PodView>;
  /** Live Kubernetes nodes. */
  nodes: ReadonlySet<string>;
  /** Wall-clock ms (allocations carry wall-clock `assignedAt`). */
  nowMs: number;
  graceMs: number;
  /** Candidates from the previous run: handle -> wall-clock ms first seen leaked. */
  candidates: ReadonlyMap<string, number>;
}

export interface PlannedRelease {
  handle: string;
  reason: LeakReason;
  /** Since when the handle has been a candidate (wall-clock ms). */
  sinceMs: number;
  addresses: LeakedAddress[];
}

export interface GcPlan {
  release: PlannedRelease[];
  /** The candidates to carry to the next run (released ones excluded). */
  candidates: Map<string, number>;
  /** Allocations judged valid (metrics). */
  valid: number;
}

/** Why `a` (an allocation of `ip`) is leaked, or null when it is valid. */
function judge(
  owner: Block['attributes'][number]['owner'],
  ip: string,
  pods: ReadonlyMap<string, PodView>,
  nodes: ReadonlySet<string>,
): LeakReason | null {
  if (owner.node !== undefined && !nodes.has(owner.node)) return 'node-gone';
  if (owner.pod && owner.namespace) {
    const p = pods.get(`${owner.namespace}/${owner.pod}`);
    if (!p) return 'pod-gone';
    if (p.node !== undefined && owner.node !== undefined && p.node !== owner.node) return 'pod-moved';
    if (p.ips.length > 0 && !p.ips.includes(ip)) return 'address-not-pods';
    return null;
  }
  return null;
}

export function planGc(input: GcInput): GcPlan {
  const leaked = new Map<string, { reason: LeakReason; addresses: LeakedAddress[] }>();
  const keep = new Set<string>();
  const youngest = new Map<string, number>();
  let valid = 0;
  for (const b of input.blocks) {
    b.allocations.forEach((idx, ordinal) => {
      if (idx === null) return;
      const a = b.attributes[idx];
      if (!a) return;
      const ip = ordinalToIp(b, ordinal);
      const reason = judge(a.owner, ip, input.pods, input.nodes);
      if (reason === null) {
        keep.add(a.handle);
        valid++;
        return;
      }
      const l = leaked.get(a.handle) ?? { reason, addresses: [] };
      l.addresses.push({
        ip,
        block: b.cidr,
        ordinal,
        seq: b.sequenceNumberForAllocation[String(ordinal)] ?? -1,
        owner: a.owner,
      });
      leaked.set(a.handle, l);
      youngest.set(a.handle, Math.max(youngest.get(a.handle) ?? 0, a.assignedAt));
    });
  }
  const release: PlannedRelease[] = [];
  const candidates = new Map<string, number>();
  for (const [handle, l] of leaked) {
    if (keep.has(handle)) continue; // all or none
    const since = input.candidates.get(handle) ?? input.nowMs;
    const due =
      input.nowMs - since >= input.graceMs && input.nowMs - (youngest.get(handle) ?? input.nowMs) >= input.graceMs;
    if (due) release.push({ handle, reason: l.reason, sinceMs: since, addresses: l.addresses });
    else candidates.set(handle, since);
  }
  return { release, candidates, valid };
}

/** PodView of a Kubernetes pod object. */
export function podView(p: {
  spec?: { nodeName?: string };
  status?: { podIP?: string; podIPs?: { ip: string }[] };
}): PodView {
  const ips = p.status?.podIPs?.map((x) => x.ip) ?? (p.status?.podIP ? [p.status.podIP] : []);
  return { node: p.spec?.nodeName || undefined, ips };
}
