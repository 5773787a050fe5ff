/**
 * The route planner (pure): a snapshot of node records, pools, confirmed block affinities and the
 * BGP Loc-RIB in, the desired kernel state out. No I/O, no clock.
 *
 * Per pool mode, to another node's block (issue 9, calico.md §3.3/§3.4):
 *   IPIP Always        BLOCK via NODEIP dev tunl0 onlink               (from BGP)
 *   IPIP CrossSubnet   via NODEIP dev UPLINK when NODEIP is in this node's subnet, else as Always
 *   Never              via NODEIP dev UPLINK                            (from BGP)
 *   VXLAN Always       BLOCK via VTEP dev petrel.vxlan onlink + neighbour VTEP→MAC + FDB MAC→NODEIP
 *                      (from the node records and blocks, as Felix does: VXLAN works without BGP)
 *   VXLAN CrossSubnet  direct when same subnet, else as Always
 *   this node's block  blackhole BLOCK (pod /32s from the CNI win by longest prefix)
 * IPv6 has no IPIP: direct or VXLAN (petrel.vxlan6). Learned prefixes outside every pool are not
 * programmed unless `externalRoutes`. Learned /32s (/128s) inside a block — borrowed addresses —
 * get their own route towards the node that advertises them.
 *
 * Complicating factors: one destination can come from several sources (a block and a learned
 * route, or two learned routes): the first wins, in the order own blackholes, VXLAN blocks,
 * learned routes. Bad records (an address that is no address) are skipped with a reason, never
 * thrown: one broken node record must not stop the routes to every other node.
 */
import { formatIp, parseIp } from '../../ipam-etcd/index.js';
import { type Encap, planMtu } from './mtu.js';
import {
  type DesiredState,
  Devices,
  type Family,
  type FdbSpec,
  type LearnedRoute,
  type NeighSpec,
  type NodeSpec,
  type PlanInput,
  type PoolSpec,
  type RouteSpec,
  type Skipped,
  type TunnelDeviceSpec,
  VXLAN_PORT,
  VXLAN_VNI,
} from './types.js';

interface Net {
  family: Family;
  addr: bigint;
  len: number;
}

function bits(f: Family): number {
  return f === 4 ? 32 : 128;
}

function computeMask(f: Family, len: number): bigint {
  const all = (1n << BigInt(bits(f))) - 1n;
  return (all << BigInt(bits(f) - len)) & all;
}
/** Every prefix length's mask, computed once (the planner masks several times per route). */
const MASKS4 = Array.from({ length: 33 }, (_, len) => computeMask(4, len));
const MASKS6 = Array.from({ length: 129 }, (_, len) => computeMask(6, len));

function mask(f: Family, len: number): bigint {
  return (f === 4 ? MASKS4[len] : MASKS6[len]) ?? computeMask(f, len);
}

/** "ADDR[/LEN]" → address (host bits kept) and length; null when malformed. */
export function parseNet(s: string): Net | null {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(s.trim());
  if (!m) return null;
  let ip: { family: Family; addr: bigint };
  try {
    ip = parseIp(m[1]!);
  } catch {
    return null;
  }
  const len = m[2] === undefined ? bits(ip.family) : Number(m[2]);
  if (len > bits(ip.family)) return null;
  return { family: ip.family, addr: ip.addr, len };
}

function inNet(net: Net, family: Family, addr: bigint): boolean {
  return net.family === family && (addr & mask(family, net.len)) === (net.addr & mask(family, net.len));
}

/** Canonical "network/len" of a prefix. */
export function canonicalPrefix(s: string): string | null {
  const n = parseNet(s);
  if (!n) return null;
  return `${formatIp(n.family, n.addr & mask(n.family, n.len))}/${n.len}`;
}

/** Canonical text of a bare address (RFC 5952 for IPv6), or null. */
export function canonicalIp(s: string): string | null {
  const n = parseNet(s);
  return n && n.len === bits(n.family) ? formatIp(n.family, n.addr) : null;
}

function ipString(n: Net): string {
  return formatIp(n.family, n.addr);
}

/** The reconciler's identity of a route: family and destination (main table). */
export function routeKey(r: Pick<RouteSpec, 'family' | 'dst'>): string {
  return `${r.family}|${r.dst}`;
}
export function neighKey(n: NeighSpec): string {
  return `${n.dev}|${n.ip}`;
}
export function fdbKey(f: FdbSpec): string {
  return `${f.dev}|${f.mac.toLowerCase()}`;
}

interface ParsedPool {
  spec: PoolSpec;
  net: Net;
}

interface ParsedNode {
  spec: NodeSpec;
  v4?: Net;
  v6?: Net;
}

function wantsVxlan(p: PoolSpec): boolean {
  return p.vxlanMode !== 'Never';
}

/** What one learned route becomes: a route, a skip with its reason, or nothing (our own advertisement, or a destination this node's plan already routes). */
export type LearnedOutcome = { route: RouteSpec } | { skip: string } | null;

/**
 * The plan of everything but the Loc-RIB (O(nodes + pools + blocks)), and the planner of one
 * learned route against it (O(pools)). A table of learned routes is planned route by route, so a
 * change to one prefix costs one call, not a plan of the whole table (learned-table.ts).
 */
export interface BasePlan {
  /** Devices, neighbours, FDB, pod MTU, and the routes of blocks (no learned route in it). */
  desired: DesiredState;
  learned(l: LearnedRoute): LearnedOutcome;
}

/** The whole plan: the base and every learned route (of two for one destination, the first stays). */
export function plan(input: PlanInput): DesiredState {
  const base = planBase(input);
  const routes = new Map(base.desired.routes.map((r) => [routeKey(r), r]));
  const skipped = [...base.desired.skipped];
  for (const l of input.learned) {
    const o = base.learned(l);
    if (o === null) continue;
    if ('skip' in o) skipped.push({ what: `learned ${l.prefix} via ${l.nextHop}`, reason: o.skip });
    else if (!routes.has(routeKey(o.route))) routes.set(routeKey(o.route), o.route); // else a second path: the first stays
  }
  return { ...base.desired, routes: [...routes.values()], skipped };
}

export function planBase(input: Omit<PlanInput, 'learned'>): BasePlan {
  const skipped: Skipped[] = [];
  const self = input.self;
  const self4 = self.ipv4 ? parseNet(self.ipv4) : null;
  const self6 = self.ipv6 ? parseNet(self.ipv6) : null;
  if (self.ipv4 && self4?.family !== 4) skipped.push({ what: `self ipv4 ${self.ipv4}`, reason: 'not an IPv4 address' });
  if (self.ipv6 && self6?.family !== 6) skipped.push({ what: `self ipv6 ${self.ipv6}`, reason: 'not an IPv6 address' });
  const s4 = self4?.family === 4 ? self4 : null;
  const s6 = self6?.family === 6 ? self6 : null;

  const pools: ParsedPool[] = [];
  for (const p of input.pools) {
    const net = parseNet(p.cidr);
    if (!net) skipped.push({ what: `pool ${p.cidr}`, reason: 'not a CIDR' });
    else pools.push({ spec: p, net });
  }
  pools.sort((a, b) => b.net.len - a.net.len);
  const poolOf = (n: Net): ParsedPool | undefined =>
    pools.find((p) => p.net.family === n.family && n.len >= p.net.len && inNet(p.net, n.family, n.addr));

  const nodes = new Map<string, ParsedNode>();
  const byAddr = new Map<string, ParsedNode>();
  for (const n of input.nodes) {
    if (n.name === self.name) continue;
    const pn: ParsedNode = { spec: n };
    for (const [fam, s] of [
      [4, n.ipv4],
      [6, n.ipv6],
    ] as const) {
      if (!s) continue;
      const net = parseNet(s);
      if (!net || net.family !== fam) {
        skipped.push({ what: `node ${n.name} ipv${fam} ${s}`, reason: `not an IPv${fam} address` });
        continue;
      }
      if (fam === 4) pn.v4 = net;
      else pn.v6 = net;
      byAddr.set(`${fam}|${net.addr}`, pn);
    }
    nodes.set(n.name, pn);
  }

  // Devices and MTU.
  const v4Pools = pools.filter((p) => p.net.family === 4);
  const v6Pools = pools.filter((p) => p.net.family === 6);
  const encaps: Encap[] = [];
  const anyIpip = v4Pools.some((p) => p.spec.ipipMode !== 'Never');
  const anyVx4 = v4Pools.some((p) => wantsVxlan(p.spec));
  const anyVx6 = v6Pools.some((p) => wantsVxlan(p.spec));
  if (anyIpip) encaps.push('ipip');
  if (anyVx4) encaps.push('vxlan4');
  if (anyVx6) encaps.push('vxlan6');
  const mtu = planMtu(input.uplinkMtu ?? 1500, encaps);
  const devices: TunnelDeviceSpec[] = [];
  if (anyIpip) {
    devices.push({
      name: Devices.ipip,
      kind: 'ipip',
      mtu: mtu.ipipMtu,
      ...(self.ipipTunnelAddr ? { address: self.ipipTunnelAddr } : {}),
    });
  }
  const vx4 = anyVx4 && s4 && self.vxlanTunnelAddr && self.vxlanMac;
  const vx6 = anyVx6 && s6 && self.vxlanTunnelAddrV6 && (self.vxlanMacV6 ?? self.vxlanMac);
  if (anyVx4 && !vx4)
    skipped.push({ what: Devices.vxlan, reason: 'this node has no IPv4 address, VXLAN tunnel address or MAC' });
  if (anyVx6 && !vx6)
    skipped.push({ what: Devices.vxlan6, reason: 'this node has no IPv6 address, VXLAN tunnel address or MAC' });
  if (vx4 && s4) {
    devices.push({
      name: Devices.vxlan,
      kind: 'vxlan',
      mtu: mtu.vxlanMtu,
      address: self.vxlanTunnelAddr!,
      vni: VXLAN_VNI,
      port: VXLAN_PORT,
      local: ipString(s4),
      mac: self.vxlanMac!.toLowerCase(),
      uplink: self.uplink,
    });
  }
  if (vx6 && s6) {
    devices.push({
      name: Devices.vxlan6,
      kind: 'vxlan',
      mtu: mtu.vxlan6Mtu,
      address: self.vxlanTunnelAddrV6!,
      vni: VXLAN_VNI,
      port: VXLAN_PORT,
      local: ipString(s6),
      mac: (self.vxlanMacV6 ?? self.vxlanMac)!.toLowerCase(),
      uplink: self.uplink,
    });
  }

  const routes = new Map<string, RouteSpec>();
  const add = (r: RouteSpec, what: string): void => {
    const k = routeKey(r);
    if (routes.has(k)) {
      skipped.push({ what, reason: `destination ${r.dst} already routed` });
      return;
    }
    routes.set(k, r);
  };
  const sameSubnet = (family: Family, addr: bigint): boolean => {
    const mine = family === 4 ? s4 : s6;
    return mine !== null && inNet(mine, family, addr);
  };
  const direct = (family: Family, dst: string, gateway: string): RouteSpec => ({
    family,
    dst,
    type: 'unicast',
    gateway,
    dev: self.uplink,
  });
  /** A VXLAN route to `node`, or the reason there is none. */
  const vxlanRoute = (family: Family, dst: string, node: ParsedNode): RouteSpec | string => {
    const dev = family === 4 ? Devices.vxlan : Devices.vxlan6;
    if (family === 4 ? !vx4 : !vx6) return `${dev} is not set up on this node`;
    const vtep = family === 4 ? node.spec.vxlanTunnelAddr : node.spec.vxlanTunnelAddrV6;
    const mac = family === 4 ? node.spec.vxlanMac : (node.spec.vxlanMacV6 ?? node.spec.vxlanMac);
    const under = family === 4 ? node.v4 : node.v6;
    const gw = vtep ? canonicalIp(vtep) : null;
    if (!gw || !mac || !under) return `node ${node.spec.name} has no IPv${family} VXLAN tunnel address, MAC or address`;
    return { family, dst, type: 'unicast', gateway: gw, dev, onlink: true };
  };
  /** A route through VXLAN (or direct for CrossSubnet on the same subnet) to `node`, or why none. */
  const viaVxlanPool = (pool: ParsedPool, family: Family, dst: string, node: ParsedNode): RouteSpec | string => {
    const under = family === 4 ? node.v4 : node.v6;
    if (pool.spec.vxlanMode === 'CrossSubnet' && under && sameSubnet(family, under.addr)) {
      return direct(family, dst, ipString(under));
    }
    return vxlanRoute(family, dst, node);
  };

  // 1. This node's own blocks: blackholes.
  const remoteBlocks: { net: Net; dst: string; node: string; what: string }[] = [];
  for (const b of input.blocks) {
    const what = `block ${b.cidr} (${b.node})`;
    const net = parseNet(b.cidr);
    const dst = canonicalPrefix(b.cidr);
    if (!net || !dst) {
      skipped.push({ what, reason: 'not a CIDR' });
      continue;
    }
    if (!poolOf(net)) {
      skipped.push({ what, reason: 'outside every pool' });
      continue;
    }
    if (b.node === self.name) add({ family: net.family, dst, type: 'blackhole' }, what);
    else remoteBlocks.push({ net, dst, node: b.node, what });
  }
  // 2. Other nodes' blocks in VXLAN pools, from IPAM (no BGP needed).
  for (const b of remoteBlocks) {
    const pool = poolOf(b.net)!;
    if (!wantsVxlan(pool.spec)) continue; // IPIP and Never: from BGP
    const node = nodes.get(b.node);
    if (!node) {
      skipped.push({ what: b.what, reason: `no node record for ${b.node}` });
      continue;
    }
    const r = viaVxlanPool(pool, b.net.family, b.dst, node);
    if (typeof r === 'string') skipped.push({ what: b.what, reason: r });
    else add(r, b.what);
  }
  // 3. The Loc-RIB, one route at a time. It is the bulk of the work (100k routes from a full
  // table), so next hops (a handful, one per peer) are parsed and formatted once.
  const hops = new Map<string, { nh: Net; gw: string } | null>();
  const hopOf = (s: string) => {
    let h = hops.get(s);
    if (h === undefined) {
      const nh = parseNet(s);
      h = nh && nh.len === bits(nh.family) ? { nh, gw: ipString(nh) } : null;
      hops.set(s, h);
    }
    return h;
  };
  const externalRoutes = input.externalRoutes === true;
  const learned = (l: LearnedRoute): LearnedOutcome => {
    const net = parseNet(l.prefix);
    const hop = hopOf(l.nextHop);
    if (!net || !hop) return { skip: 'malformed prefix or next hop' };
    const { nh, gw } = hop;
    if (nh.family !== net.family) return { skip: 'next hop of another family' };
    const mine = net.family === 4 ? s4 : s6;
    if (mine && mine.addr === nh.addr) return null; // our own advertisement
    const dst = `${formatIp(net.family, net.addr & mask(net.family, net.len))}/${net.len}`;
    if (routes.has(routeKey({ family: net.family, dst }))) return null; // a block route or own blackhole wins
    const pool = poolOf(net);
    if (!pool) return externalRoutes ? { route: direct(net.family, dst, gw) } : { skip: 'outside every pool' };
    if (wantsVxlan(pool.spec)) {
      const node = byAddr.get(`${net.family}|${nh.addr}`);
      if (!node) return { skip: 'next hop is no known node (VXLAN needs its VTEP)' };
      const r = viaVxlanPool(pool, net.family, dst, node);
      return typeof r === 'string' ? { skip: r } : { route: r };
    }
    const ipip =
      net.family === 4 &&
      (pool.spec.ipipMode === 'Always' || (pool.spec.ipipMode === 'CrossSubnet' && !sameSubnet(4, nh.addr)));
    if (ipip) return { route: { family: 4, dst, type: 'unicast', gateway: gw, dev: Devices.ipip, onlink: true } };
    return { route: direct(net.family, dst, gw) };
  };

  // VXLAN neighbours and FDB entries: one per remote VTEP.
  const neighbours: NeighSpec[] = [];
  const fdb: FdbSpec[] = [];
  for (const n of nodes.values()) {
    const vtep4 = n.spec.vxlanTunnelAddr ? canonicalIp(n.spec.vxlanTunnelAddr) : null;
    const vtep6 = n.spec.vxlanTunnelAddrV6 ? canonicalIp(n.spec.vxlanTunnelAddrV6) : null;
    if (vx4 && n.v4 && vtep4 && n.spec.vxlanMac) {
      const mac = n.spec.vxlanMac.toLowerCase();
      neighbours.push({ dev: Devices.vxlan, ip: vtep4, mac });
      fdb.push({ dev: Devices.vxlan, mac, dst: ipString(n.v4) });
    }
    const mac6 = n.spec.vxlanMacV6 ?? n.spec.vxlanMac;
    if (vx6 && n.v6 && vtep6 && mac6) {
      neighbours.push({ dev: Devices.vxlan6, ip: vtep6, mac: mac6.toLowerCase() });
      fdb.push({ dev: Devices.vxlan6, mac: mac6.toLowerCase(), dst: ipString(n.v6) });
    }
  }

  return { desired: { routes: [...routes.values()], neighbours, fdb, devices, podMtu: mtu.podMtu, skipped }, learned };
}
