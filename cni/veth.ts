/**
 * Pod wiring on top of NetnsExec: the veth pair, addresses, routes and sysctls of one pod
 * interface (Calico dataplane_linux.go, calico.md §2.6), its removal, and its CHECK.
 *
 * Layout, IPv4: pod `eth0` holds `<ip>/32`, `169.254.1.1 dev eth0 scope link` and
 * `default via 169.254.1.1`; nobody owns 169.254.1.1, the host end answers ARP for it with
 * proxy_arp (MAC ee:ee:ee:ee:ee:ee). The node holds `<ip>/32 dev <host veth> scope link`.
 * IPv6: `<ip>/128` (no DAD), default via the host end's link-local address (EUI-64 of the fixed
 * MAC), proxy_ndp on the host end, `<ip>/128 dev <host veth>` on the node.
 *
 * Planning (the ip lines) is pure; the steps run through NetnsExec with at most three process
 * starts per ADD: one `ip -batch` in the node, one in the pod, and a second node batch only for
 * IPv6 (accept_dad must be off before the host end comes up).
 */
import { GATEWAY_V4, GATEWAY_V6, HOST_VETH_MAC } from './names.js';
import { IpError, type NetnsExec } from './netns.js';

export interface PodAddress {
  ip: string;
  family: 4 | 6;
}

export interface VethPlan {
  containerId: string;
  netns: string;
  ifName: string;
  hostVeth: string;
  podMac: string;
  alias: string;
  mtu: number;
  addresses: PodAddress[];
}

const hostLen = (a: PodAddress) => (a.family === 4 ? 32 : 128);

/** Node-side: create the pair (pod end straight into the pod netns) and label the host end. */
export function planCreate(p: VethPlan, deleteStale: boolean): string[] {
  return [
    ...(deleteStale ? [`link del ${p.hostVeth}`] : []),
    `link add ${p.hostVeth} mtu ${p.mtu} address ${HOST_VETH_MAC} type veth peer name ${p.ifName} mtu ${p.mtu} address ${p.podMac} netns ${p.netns}`,
    `link set ${p.hostVeth} alias ${p.alias}`,
  ];
}

/** Node-side: bring the host end up and route each pod address to it. */
export function planHostUp(p: VethPlan): string[] {
  return [
    `link set ${p.hostVeth} up`,
    ...p.addresses.map((a) => `route add ${a.ip}/${hostLen(a)} dev ${p.hostVeth} scope link`),
  ];
}

/** Pod-side: addresses, the gateway routes. */
export function planPod(p: VethPlan): string[] {
  const lines = [`link set ${p.ifName} up`];
  const v4 = p.addresses.filter((a) => a.family === 4);
  const v6 = p.addresses.filter((a) => a.family === 6);
  for (const a of v4) lines.push(`addr add ${a.ip}/32 dev ${p.ifName}`);
  for (const a of v6) lines.push(`addr add ${a.ip}/128 dev ${p.ifName} nodad`);
  if (v4.length > 0) {
    lines.push(`route add ${GATEWAY_V4} dev ${p.ifName} scope link`);
    lines.push(`route add default via ${GATEWAY_V4} dev ${p.ifName}`);
  }
  if (v6.length > 0) lines.push(`route add default via ${GATEWAY_V6} dev ${p.ifName}`);
  return lines;
}

/** Host-end sysctls (Calico configureSysctls + Felix's rp_filter): [key under /proc/sys/net, value]. */
export function planSysctls(p: VethPlan): [string, string][] {
  const h = p.hostVeth;
  const out: [string, string][] = [];
  if (p.addresses.some((a) => a.family === 4)) {
    out.push(
      [`ipv4/conf/${h}/forwarding`, '1'],
      [`ipv4/conf/${h}/proxy_arp`, '1'],
      [`ipv4/neigh/${h}/proxy_delay`, '0'],
      // Strict reverse-path check: the only route back to the pod's address is this veth, so
      // strict filtering passes the pod's own traffic and drops spoofed sources.
      [`ipv4/conf/${h}/rp_filter`, '1'],
      [`ipv4/conf/${h}/route_localnet`, '1'],
    );
  }
  if (p.addresses.some((a) => a.family === 6)) {
    out.push(
      [`ipv6/conf/${h}/disable_ipv6`, '0'],
      [`ipv6/conf/${h}/accept_dad`, '0'],
      [`ipv6/conf/${h}/proxy_ndp`, '1'],
      [`ipv6/conf/${h}/forwarding`, '1'],
    );
  }
  out.push([`ipv6/conf/${h}/accept_ra`, '0']);
  return out;
}

/** Which step failed, for logs and rollback decisions. */
export type SetupStep = 'create' | 'sysctl' | 'host-up' | 'pod';

export class SetupError extends Error {
  override readonly name = 'SetupError';
  constructor(
    readonly step: SetupStep,
    options: ErrorOptions,
  ) {
    super(`pod network setup failed at ${step}: ${(options.cause as Error)?.message ?? ''}`, options);
  }
}

/**
 * Runs the ADD steps. On failure throws SetupError; `created` tells the caller whether the
 * pair exists (and so must be removed on rollback).
 */
export async function setupVeth(exec: NetnsExec, p: VethPlan): Promise<void> {
  const stale = exec.hostLinkExists(p.hostVeth);
  const hasV6 = p.addresses.some((a) => a.family === 6);
  const wrap = (step: SetupStep) => (err: unknown) => {
    throw new SetupError(step, { cause: err });
  };
  const sysctls = async () => {
    for (const [k, v] of planSysctls(p)) await exec.hostSysctl(k, v);
  };
  if (hasV6) {
    // IPv6: accept_dad off before the host end comes up, or its link-local gateway address
    // stays tentative (unusable) for about a second.
    await exec.hostBatch(planCreate(p, stale)).catch(wrap('create'));
    await sysctls().catch(wrap('sysctl'));
    await Promise.all([
      exec.hostBatch(planHostUp(p)).catch(wrap('host-up')),
      exec.podBatch(p.netns, planPod(p)).catch(wrap('pod')),
    ]);
    return;
  }
  // IPv4 only: one node batch; proxy_arp may follow the link coming up (the pod runs nothing yet).
  await exec.hostBatch([...planCreate(p, stale), ...planHostUp(p)]).catch((err: unknown) => {
    const line = err instanceof IpError ? err.line : 0;
    const createLines = planCreate(p, stale).length;
    wrap(line > 0 && line > createLines ? 'host-up' : 'create')(err);
  });
  await Promise.all([sysctls().catch(wrap('sysctl')), exec.podBatch(p.netns, planPod(p)).catch(wrap('pod'))]);
}

/**
 * Removes the pod interface (CNI SPEC: DEL succeeds when things are already gone). Inside the
 * netns when it still exists (that deletes the pair, and the host route with it); else the host
 * end by its deterministic name, but only if its alias proves it is this container's (a newer
 * sandbox of the same pod reuses the name).
 */
export async function removeVeth(
  exec: NetnsExec,
  p: Pick<VethPlan, 'netns' | 'ifName' | 'hostVeth' | 'alias'>,
): Promise<void> {
  if (p.netns && exec.netnsExists(p.netns)) {
    await exec.podBatch(p.netns, [`link del ${p.ifName}`]).catch((err: unknown) => {
      if (err instanceof IpError && (err.kind === 'not-found' || err.kind === 'netns-missing')) return;
      throw err;
    });
  }
  if (!exec.hostLinkExists(p.hostVeth)) return;
  const [links] = await exec.hostQuery([`link show dev ${p.hostVeth}`]).catch((err: unknown) => {
    if (err instanceof IpError && err.kind === 'not-found') return [[]];
    throw err;
  });
  const link = (links as { ifalias?: string }[] | undefined)?.[0];
  if (link?.ifalias !== p.alias) return;
  await exec.hostBatch([`link del ${p.hostVeth}`]).catch((err: unknown) => {
    if (err instanceof IpError && err.kind === 'not-found') return;
    throw err;
  });
}

/** Rollback after a failed ADD: delete the host end (takes the pod end and routes with it). */
export async function destroyVeth(exec: NetnsExec, hostVeth: string): Promise<void> {
  if (!exec.hostLinkExists(hostVeth)) return;
  await exec.hostBatch([`link del ${hostVeth}`]).catch((err: unknown) => {
    if (err instanceof IpError && err.kind === 'not-found') return;
    throw err;
  });
}

interface IpLink {
  ifname?: string;
  address?: string;
  flags?: string[];
  ifalias?: string;
  addr_info?: { local?: string; prefixlen?: number; family?: string }[];
}
interface IpRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  scope?: string;
}

/** One difference CHECK found between the kernel and prevResult. */
export interface CheckProblem {
  what: string;
}

/**
 * CHECK (SPEC 0.4.0+): the pod interface with the recorded MAC and addresses, our gateway routes
 * and the routes recorded in prevResult (other chained plugins may add routes; extra ones are
 * tolerated), the host end up, and each pod address routed to it. Returns the problems found.
 */
export async function checkVeth(
  exec: NetnsExec,
  p: Pick<VethPlan, 'netns' | 'ifName' | 'hostVeth' | 'addresses'> & { podMac?: string },
  expectedRoutes: { dst: string; gw?: string }[],
): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  const hasV6 = p.addresses.some((a) => a.family === 6);
  const [podLinks, podRoutes4] = await exec.podQuery(p.netns, [`addr show dev ${p.ifName}`, 'route show']);
  const podRoutes6 = hasV6 ? ((await exec.podQuery(p.netns, ['route show'], 6))[0] as IpRoute[]) : [];
  const link = (podLinks as IpLink[] | undefined)?.[0];
  if (!link) return [{ what: `interface ${p.ifName} missing in ${p.netns}` }];
  if (!link.flags?.includes('UP')) problems.push({ what: `${p.ifName} is down` });
  if (p.podMac && link.address?.toLowerCase() !== p.podMac.toLowerCase()) {
    problems.push({ what: `${p.ifName} MAC ${link.address} != ${p.podMac}` });
  }
  for (const a of p.addresses) {
    const len = hostLen(a);
    if (!link.addr_info?.some((x) => x.local === a.ip && x.prefixlen === len)) {
      problems.push({ what: `address ${a.ip}/${len} missing on ${p.ifName}` });
    }
  }
  const routes = [...((podRoutes4 as IpRoute[] | undefined) ?? []), ...podRoutes6];
  const has = (dst: string, gw?: string) =>
    routes.some((r) => {
      const d = r.dst === 'default' ? (dst.includes(':') ? '::/0' : '0.0.0.0/0') : r.dst;
      const norm = (x: string) => (x.includes('/') ? x : `${x}/${x.includes(':') ? 128 : 32}`);
      return d !== undefined && norm(d) === norm(dst) && (gw === undefined || r.gateway === gw);
    });
  if (p.addresses.some((a) => a.family === 4) && !has(`${GATEWAY_V4}/32`)) {
    problems.push({ what: `route ${GATEWAY_V4} dev ${p.ifName} missing` });
  }
  for (const r of expectedRoutes) {
    if (!has(r.dst, r.gw)) problems.push({ what: `route ${r.dst}${r.gw ? ` via ${r.gw}` : ''} missing in pod` });
  }
  const [hostLinks, hostRoutes4] = await exec
    .hostQuery([`link show dev ${p.hostVeth}`, `route show dev ${p.hostVeth}`])
    .catch((err: unknown) => {
      if (err instanceof IpError && err.kind === 'not-found') return [[], []];
      throw err;
    });
  const hlink = (hostLinks as IpLink[] | undefined)?.[0];
  if (!hlink) return [...problems, { what: `host veth ${p.hostVeth} missing` }];
  if (!hlink.flags?.includes('UP')) problems.push({ what: `host veth ${p.hostVeth} is down` });
  const hostRoutes6 = hasV6
    ? (((await exec.hostQuery([`route show dev ${p.hostVeth}`], 6))[0] as IpRoute[] | undefined) ?? [])
    : [];
  const hroutes = [...((hostRoutes4 as IpRoute[] | undefined) ?? []), ...hostRoutes6];
  for (const a of p.addresses) {
    if (!hroutes.some((r) => r.dst === a.ip || r.dst === `${a.ip}/${hostLen(a)}`)) {
      problems.push({ what: `host route ${a.ip}/${hostLen(a)} dev ${p.hostVeth} missing` });
    }
  }
  return problems;
}
