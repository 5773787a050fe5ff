/**
 * Pure: the names and addresses of one lab (or of one test cluster), derived from its index so that
 * several labs coexist. Index 0 is the test harness's cluster (10.99.0.0/24, what the cluster tests
 * were written against); `petrelctl lab` gives each lab the lowest free index from 1 up.
 *
 *   fabric  bridge br0 10.99.I.1/24 (+ fd99:I::1/64); etcd on 10.99.I.1:2379; "the outside world"
 *           10.97.I.1/32 (+ fd97:I::1/128) on its lo.
 *   node-K  eth0 10.99.I.(10+K)/24 (+ fd99:I::(10+K)/64); behind the router: 10.98.I.(10+K)/24.
 *   router  10.99.I.254 (+ fd99:I::fe) on the fabric, 10.98.I.1/24 (+ fd98:I::1/64) for routed nodes.
 *   ext     an external BGP router (BIRD) at 10.99.I.250 (+ fd99:I::fa).
 */

/** The highest lab index: the third octet of 10.99.I.0/24. */
export const MAX_LAB_INDEX = 250;
/** Node K's host octet is 10 + K: at most this many nodes (fabric and routed together). */
export const MAX_NODES = 200;
export const UPLINK = 'eth0';
export const STATUS_PORT = 9099;
/** The echo port the lab's connectivity probes use inside pods. */
export const PROBE_PORT = 7777;

export interface LabAddresses {
  fabricIp: string;
  fabricIp6: string;
  outsideIp: string;
  outsideIp6: string;
  routerIp: string;
  routerIp6: string;
  routedGw: string;
  routedGw6: string;
  /** The fabric subnet, e.g. 10.99.3.0/24, and the routed one. */
  fabricSubnet: string;
  routedSubnet: string;
  routedSubnet6: string;
  externalRouterIp: string;
  externalRouterIp6: string;
}

export class LabConfigError extends Error {
  override readonly name = 'LabConfigError';
}

/** Lab names: 1-20 of a-z 0-9 '-', starting with a letter (they go into netns and file names). */
export function validateLabName(name: string): string {
  if (!/^[a-z][a-z0-9-]{0,19}$/.test(name))
    throw new LabConfigError(`lab name ${JSON.stringify(name)}: use 1-20 of a-z, 0-9, '-', starting with a letter`);
  return name;
}

const v6 = (prefix: string, index: number, host: string) =>
  index === 0 ? `${prefix}::${host}` : `${prefix}:${index.toString(16)}::${host}`;

export function labAddresses(index: number): LabAddresses {
  if (!Number.isInteger(index) || index < 0 || index > MAX_LAB_INDEX)
    throw new LabConfigError(`lab index ${index} out of 0..${MAX_LAB_INDEX}`);
  return {
    fabricIp: `10.99.${index}.1`,
    fabricIp6: v6('fd99', index, '1'),
    outsideIp: `10.97.${index}.1`,
    outsideIp6: v6('fd97', index, '1'),
    routerIp: `10.99.${index}.254`,
    routerIp6: v6('fd99', index, 'fe'),
    routedGw: `10.98.${index}.1`,
    routedGw6: v6('fd98', index, '1'),
    fabricSubnet: `10.99.${index}.0/24`,
    routedSubnet: `10.98.${index}.0/24`,
    routedSubnet6: `${v6('fd98', index, '')}/64`,
    externalRouterIp: `10.99.${index}.250`,
    externalRouterIp6: v6('fd99', index, 'fa'),
  };
}

/**
 * The MAC a lab bridge is created with (`which` 1 = fabric br0, 2 = the router's br1). A Linux bridge
 * without an address of its own takes the lowest MAC among its ports, so it changes whenever a port
 * joins (the external router, a routed node, a guest's tap): every neighbour entry for the bridge's IP
 * (etcd's address) goes stale and traffic to etcd is lost until ARP resolves again. A set address stays.
 */
export function bridgeMac(index: number, which: 1 | 2): string {
  if (!Number.isInteger(index) || index < 0 || index > MAX_LAB_INDEX)
    throw new LabConfigError(`lab index ${index} out of 0..${MAX_LAB_INDEX}`);
  return `02:99:${index.toString(16).padStart(2, '0')}:00:00:0${which}`;
}

/** Node K's addresses (1-based K); `routed` = behind the router. */
export function nodeAddresses(index: number, k: number, routed: boolean): { ip: string; ip6: string } {
  if (!Number.isInteger(k) || k < 1 || k > MAX_NODES)
    throw new LabConfigError(`node index ${k} out of 1..${MAX_NODES}`);
  const host = 10 + k;
  return routed
    ? { ip: `10.98.${index}.${host}`, ip6: v6('fd98', index, String(host)) }
    : { ip: `10.99.${index}.${host}`, ip6: v6('fd99', index, String(host)) };
}

/** Namespace names: PREFIX-fabric, PREFIX-router, PREFIX-ext, PREFIX-node-K, PREFIX-POD. */
export function netnsNames(prefix: string) {
  return {
    fabric: `${prefix}-fabric`,
    router: `${prefix}-router`,
    external: `${prefix}-ext`,
    node: (k: number) => `${prefix}-node-${k}`,
    pod: (pod: string) => `${prefix}-${pod}`,
  };
}

/** The namespace prefix of lab NAME: `plab-NAME`. */
export function labPrefix(name: string): string {
  return `plab-${validateLabName(name)}`;
}

/** The lowest index from 1 up that no lab in `used` holds. */
export function freeLabIndex(used: readonly number[]): number {
  const taken = new Set(used);
  for (let i = 1; i <= MAX_LAB_INDEX; i++) if (!taken.has(i)) return i;
  throw new LabConfigError(`all ${MAX_LAB_INDEX} lab indexes are in use`);
}

/** Pod names: pod-K-J (the J-th pod made on node K). The next J on node K given the pods there. */
export function nextPodName(nodeIndex: number, existing: readonly string[]): string {
  const re = new RegExp(`^pod-${nodeIndex}-(\\d+)$`);
  let max = 0;
  for (const p of existing) {
    const m = re.exec(p);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return `pod-${nodeIndex}-${max + 1}`;
}

export const LabMode = {
  Never: 'never',
  Vxlan: 'vxlan',
  Ipip: 'ipip',
  IpipCrossSubnet: 'ipip-crosssubnet',
} as const;
export type LabMode = (typeof LabMode)[keyof typeof LabMode];

export function parseMode(s: string): LabMode {
  const m = Object.values(LabMode).find((x) => x === s);
  if (!m) throw new LabConfigError(`--mode ${s}: one of ${Object.values(LabMode).join(', ')}`);
  return m;
}

export interface LabPool {
  name: string;
  cidr: string;
  blockSize?: number;
  ipipMode?: 'Always' | 'CrossSubnet' | 'Never';
  vxlanMode?: 'Always' | 'CrossSubnet' | 'Never';
  natOutgoing?: boolean;
  nodeSelector?: string;
}

/** The pools a lab of `mode` gets: one IPv4 pool (and one IPv6 pool with ipv6), /26 blocks. */
export function poolsFor(mode: LabMode, ipv6: boolean): LabPool[] {
  const enc =
    mode === 'vxlan'
      ? { vxlanMode: 'Always' as const }
      : mode === 'ipip'
        ? { ipipMode: 'Always' as const }
        : mode === 'ipip-crosssubnet'
          ? { ipipMode: 'CrossSubnet' as const }
          : {};
  const pools: LabPool[] = [{ name: 'lab-v4', cidr: '10.244.0.0/16', blockSize: 26, natOutgoing: true, ...enc }];
  // IPIP carries IPv4 only; an IPv6 pool then routes natively (or over VXLAN in vxlan mode).
  if (ipv6) pools.push({ name: 'lab-v6', cidr: 'fd10:244::/48', blockSize: 122, ...(mode === 'vxlan' ? enc : {}) });
  return pools;
}

/** What one packet between pods on two nodes should look like on the uplink in `mode`. */
export function expectedEncap(mode: LabMode, sameSubnet: boolean): 'ipip' | 'vxlan' | 'plain' {
  if (mode === 'vxlan') return 'vxlan';
  if (mode === 'ipip') return 'ipip';
  if (mode === 'ipip-crosssubnet') return sameSubnet ? 'plain' : 'ipip';
  return 'plain';
}
