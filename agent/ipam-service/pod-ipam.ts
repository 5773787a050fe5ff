/**
 * Pod annotations that steer IPAM, as Calico's do (`cni.projectcalico.org/...`), with Petrel's
 * names. Pure: annotations + the pools + the plugin's request in, the request to run (or one clear
 * error) out. The agent reads the annotations from the API server (podAnnotationsFrom below, on
 * agent/k8s's KubeApi); the plugin never talks to it.
 *
 *   petrel.io/ipv4pools, petrel.io/ipv6pools  JSON list of pool names or CIDRs to allocate from.
 *       A pod's annotation beats its namespace's, per family; either beats the network config's
 *       `ipam.pools` for that family. Every entry must name an existing, enabled pool of the family.
 *   petrel.io/ipAddrs  JSON list of specific addresses (at most one IPv4 and one IPv6), assigned
 *       instead of automatic ones; pool annotations do not apply to it (as in Calico, where AssignIP
 *       ignores them), the network config's `ipam.pools` still does.
 */
import { parseIp } from '../../ipam-etcd/cidr.js';
import type { Pool } from '../../ipam-etcd/types.js';

export const ANNOTATION_IPV4POOLS = 'petrel.io/ipv4pools';
export const ANNOTATION_IPV6POOLS = 'petrel.io/ipv6pools';
export const ANNOTATION_IPADDRS = 'petrel.io/ipAddrs';

/** Whether a pod's annotations leave the namespace's to be read (a family's pools not set on the pod). */
export function needsNamespace(pod: Record<string, string>): boolean {
  if (pod[ANNOTATION_IPADDRS] !== undefined) return false;
  return pod[ANNOTATION_IPV4POOLS] === undefined || pod[ANNOTATION_IPV6POOLS] === undefined;
}

/** Whether any IPAM annotation is set (on the pod, or a pool one on its namespace): else nothing applies. */
export function mentionsPodIpam(pod: Record<string, string>, namespace: Record<string, string>): boolean {
  return (
    pod[ANNOTATION_IPADDRS] !== undefined ||
    [ANNOTATION_IPV4POOLS, ANNOTATION_IPV6POOLS].some((a) => pod[a] !== undefined || namespace[a] !== undefined)
  );
}

/** What the plugin asked for (the assign request's IPAM fields). */
export interface PodIpamRequest {
  num4: number;
  num6: number;
  pools?: string[];
  ips?: string[];
}

export type PodIpamResult = { ok: true; req: PodIpamRequest; applied: string[] } | { ok: false; error: string };

/** A JSON list of non-empty strings, or an error naming the annotation. */
function stringList(name: string, raw: string): string[] | string {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return `${name}: not JSON: ${JSON.stringify(raw)} (expected a list such as ["a"])`;
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.trim() === ''))
    return `${name}: expected a JSON list of strings, got ${JSON.stringify(raw)}`;
  if (v.length === 0) return `${name}: the list is empty`;
  return v.map((x: string) => x.trim());
}

const familyOf = (p: Pool): 4 | 6 => (p.cidr.includes(':') ? 6 : 4);

/** Resolves one family's pool annotation (names or CIDRs) to pool names. */
function resolvePools(name: string, raw: string, family: 4 | 6, pools: Pool[]): string[] | string {
  const list = stringList(name, raw);
  if (typeof list === 'string') return list;
  const out: string[] = [];
  for (const entry of list) {
    const p = pools.find((x) => x.name === entry || x.cidr === entry);
    if (!p) return `${name}: no IP pool named or with CIDR ${JSON.stringify(entry)}`;
    if (familyOf(p) !== family) return `${name}: pool ${p.name} (${p.cidr}) is not an IPv${family} pool`;
    if (p.disabled) return `${name}: pool ${p.name} is disabled`;
    if (!out.includes(p.name)) out.push(p.name);
  }
  return out;
}

/**
 * The request to run for a pod with these annotations (pod's, then its namespace's), or an error.
 * Without any of the annotations the request is returned as it came.
 */
export function applyPodIpam(
  req: PodIpamRequest,
  podAnn: Record<string, string>,
  nsAnn: Record<string, string>,
  pools: Pool[],
): PodIpamResult {
  const fail = (error: string): PodIpamResult => ({ ok: false, error });
  const rawAddrs = podAnn[ANNOTATION_IPADDRS];
  if (rawAddrs !== undefined) {
    const list = stringList(ANNOTATION_IPADDRS, rawAddrs);
    if (typeof list === 'string') return fail(list);
    if (req.ips?.length)
      return fail(`${ANNOTATION_IPADDRS} and a static address from the runtime (${req.ips.join(', ')}) both given`);
    const byFamily = new Map<4 | 6, string>();
    for (const s of list) {
      let family: 4 | 6;
      try {
        family = parseIp(s).family;
      } catch {
        return fail(`${ANNOTATION_IPADDRS}: ${JSON.stringify(s)} is not an IP address`);
      }
      if (byFamily.has(family)) return fail(`${ANNOTATION_IPADDRS}: more than one IPv${family} address`);
      if ((family === 4 ? req.num4 : req.num6) === 0)
        return fail(`${ANNOTATION_IPADDRS}: ${s} is IPv${family}, and this network assigns no IPv${family}`);
      byFamily.set(family, s);
    }
    const out: PodIpamRequest = { num4: 0, num6: 0, ips: [...byFamily.values()] };
    if (req.pools) out.pools = req.pools;
    return { ok: true, req: out, applied: [ANNOTATION_IPADDRS] };
  }
  const applied: string[] = [];
  const perFamily = new Map<4 | 6, string[]>();
  for (const [family, name] of [
    [4, ANNOTATION_IPV4POOLS],
    [6, ANNOTATION_IPV6POOLS],
  ] as const) {
    const fromPod = podAnn[name];
    const raw = fromPod ?? nsAnn[name];
    if (raw === undefined) continue;
    const where = fromPod !== undefined ? name : `${name} (namespace)`;
    const got = resolvePools(where, raw, family, pools);
    if (typeof got === 'string') return fail(got);
    perFamily.set(family, got);
    applied.push(where);
  }
  if (perFamily.size === 0) return { ok: true, req, applied };
  // The other family keeps what the network config allowed (its `ipam.pools`, else every pool).
  const rest = (family: 4 | 6) =>
    pools.filter((p) => familyOf(p) === family && (!req.pools || req.pools.includes(p.name))).map((p) => p.name);
  const names = [...(perFamily.get(4) ?? rest(4)), ...(perFamily.get(6) ?? rest(6))];
  return { ok: true, req: { ...req, pools: names }, applied };
}

/** What podAnnotationsFrom needs from the Kubernetes API (agent/k8s KubeApi). */
export interface PodReader {
  readPod(namespace: string, name: string): Promise<{ metadata?: { annotations?: Record<string, string> } } | null>;
  readNamespace(name: string): Promise<{ metadata?: { annotations?: Record<string, string> } } | null>;
}

/**
 * The IpamService's podAnnotations source on the Kubernetes API: the pod, and its namespace only
 * when the pod leaves a family's pools open. A missing namespace counts as one without annotations.
 */
export function podAnnotationsFrom(kube: PodReader) {
  return async (namespace: string, name: string) => {
    const pod = await kube.readPod(namespace, name);
    if (!pod) return null;
    const podAnn = pod.metadata?.annotations ?? {};
    const nsAnn = needsNamespace(podAnn) ? ((await kube.readNamespace(namespace))?.metadata?.annotations ?? {}) : {};
    return { pod: podAnn, namespace: nsAnn };
  };
}
