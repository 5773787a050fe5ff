/**
 * The picture's model, PURE: what etcd holds (IPAM usage, node records, liveness, BGP config) and
 * what each agent's status endpoint answered (/status, /routes) in; the view the page draws out
 * (nodes, sessions by colour, blocks with utilisation, pods with addresses, problems), plus the
 * "pod A cannot reach pod B" check and the route feed entries.
 *
 * Complicating factors:
 *  - an agent can be unreachable (killed, not started): its node still has a record, blocks and
 *    pods in etcd, but every session it would report is unknown; the peers' side of the session
 *    then tells the story (Active/Connect/Idle);
 *  - a session is seen from both ends, and the two ends may disagree for a moment (one side
 *    already Established, the other in OpenConfirm): a link is `up` only when both ends say so;
 *  - with route reflectors there is no direct session between two clients: the path is up when
 *    both have an Established session to one reflector that sees both;
 *  - a pod's address can sit in a block borrowed from another node's affinity: the route then
 *    leads to the block's owner, not to the pod's node, which is a reason "A cannot reach B";
 *  - agents report status fields this model does not know (newer versions): unknown fields are
 *    ignored, missing ones read as absent.
 */
import { type BlockUsage, parseCidr, parseIp, type Usage } from '../../ipam-etcd/index.js';
import type { BgpClusterConfig, BgpPeerRecord, NodeRecord } from '../node/record.js';

// ------------------------------------------------------------------ inputs

/** The etcd half of one picture (read in one pass by the collector). */
export interface EtcdData {
  ipam: Usage;
  nodes: NodeRecord[];
  /** Names with a live /petrel/nodes-alive/ key (their agent holds its lease). */
  alive: string[];
  bgp: BgpClusterConfig;
  peers: BgpPeerRecord[];
}

/** One BGP peer as an agent's /status reports it (the fields the picture uses). */
export interface AgentPeerJson {
  address: string;
  asn?: number;
  state: string;
  type?: string;
  name?: string;
  uptimeSec?: number;
  lastError?: string;
  prefixesAccepted?: number;
  prefixesAdvertised?: number;
  routeReflectorClient?: boolean;
  staleRoutes?: number;
}

/** An agent's GET /status (subset). */
export interface AgentStatusJson {
  node?: string;
  readiness?: { ready: boolean; reasons: string[] };
  asn?: number;
  routerId?: string;
  routeReflector?: boolean;
  clusterId?: string;
  peers?: AgentPeerJson[];
  dataplane?: {
    routes?: { desiredRoutes?: number; routesProgrammed?: number; converged?: boolean; failures?: unknown[] };
  };
}

/** One entry of an agent's GET /routes (the speaker's Loc-RIB best routes). */
export interface AgentRouteJson {
  prefix: string;
  family?: string;
  nextHops: string[];
  peer?: string;
  local: boolean;
  stale: boolean;
}

/** What asking one agent gave: either its status and routes, or why not. */
export type AgentProbe =
  | { node: string; url: string; ok: true; status: AgentStatusJson; routes: AgentRouteJson[] }
  | { node: string; url: string; ok: false; error: string };

// ------------------------------------------------------------------ view

/** Session colour classes: green, amber (on its way), red (down), grey (nobody to ask). */
export type Health = 'up' | 'connecting' | 'down' | 'unknown';

export interface SessionView {
  peerAddress: string;
  /** The node behind the address, when it is one of ours. */
  peerNode?: string;
  type: string;
  state: string;
  health: Health;
  asn?: number;
  uptimeSec: number;
  lastError?: string;
  prefixesAccepted: number;
  staleRoutes: number;
}

export interface BlockView {
  cidr: string;
  pool: string;
  size: number;
  inUse: number;
  free: number;
  /** inUse / size, 0..1. */
  utilisation: number;
}

export interface RouteView {
  prefix: string;
  nextHops: string[];
  /** Node owning the first next hop, when one of ours. */
  viaNode?: string;
  local: boolean;
  stale: boolean;
}

export interface NodeView {
  name: string;
  ipv4?: string;
  ipv6?: string;
  asNumber: number;
  alive: boolean;
  routeReflector: boolean;
  clusterId?: string;
  labels: Record<string, string>;
  agent: {
    url: string;
    reachable: boolean;
    error?: string;
    ready: boolean;
    reasons: string[];
    routesProgrammed?: number;
    desiredRoutes?: number;
    converged?: boolean;
  };
  blocks: BlockView[];
  sessions: SessionView[];
  routes: RouteView[];
  /** Pod ids (handles) on this node. */
  pods: string[];
}

/** A session between two of our nodes, seen from both ends (a, b in name order). */
export interface LinkView {
  a: string;
  b: string;
  /** State as a reports it (undefined: a is unreachable or has no such peer). */
  stateA?: string;
  stateB?: string;
  health: Health;
}

export interface PodView {
  /** The IPAM handle (one per pod: every address of the pod shares it). */
  id: string;
  name: string;
  namespace?: string;
  node: string;
  containerId?: string;
  ips: string[];
  /** Block of each address, in `ips` order. */
  blocks: string[];
}

export interface PoolView {
  name: string;
  cidr: string;
  blockSize: number;
  ipipMode: string;
  vxlanMode: string;
  natOutgoing: boolean;
  disabled: boolean;
  size: string;
  inUse: number;
  blocks: number;
}

export interface ClusterView {
  /** Wall-clock ISO time of the picture. */
  at: string;
  asNumber: number;
  nodeToNodeMesh: boolean;
  pools: PoolView[];
  nodes: NodeView[];
  links: LinkView[];
  pods: PodView[];
  /** One line each, worst first: what an operator should look at. */
  problems: string[];
}

// ------------------------------------------------------------------ building

/**
 * The state shown for a session the node-to-node mesh calls for but the node does not have (the
 * agents drop mesh peers that are not alive in etcd, so a dead node's sessions disappear).
 */
export const NO_SESSION = 'NoSession';

/** BGP FSM state → colour class (RFC 4271 §8.2.2 states; NO_SESSION is down). */
export function healthOf(state: string | undefined): Health {
  switch (state) {
    case 'Established':
      return 'up';
    case 'Connect':
    case 'Active':
    case 'OpenSent':
    case 'OpenConfirm':
      return 'connecting';
    case 'Idle':
    case NO_SESSION:
      return 'down';
    default:
      return 'unknown';
  }
}

const addrOf = (addrLen: string | undefined) => (addrLen ? (addrLen.split('/')[0] ?? '') : undefined);

/** Handles that are not pods: the nodes' tunnel addresses. */
const TUNNEL_HANDLE = /^(ipip|vxlan|vxlan-v6)-tunnel-addr-/;

function blockView(b: BlockUsage, pool: string): BlockView {
  return {
    cidr: b.cidr,
    pool,
    size: b.size,
    inUse: b.inUse,
    free: b.free,
    utilisation: b.size > 0 ? b.inUse / b.size : 0,
  };
}

/** Builds the picture. `at` is the wall time of the data (ISO). */
export function buildView(etcd: EtcdData, probes: AgentProbe[], at: string): ClusterView {
  const probeOf = new Map(probes.map((p) => [p.node, p]));
  const alive = new Set(etcd.alive);
  const nodeByIp = new Map<string, string>();
  for (const n of etcd.nodes) {
    const v4 = addrOf(n.ipv4);
    const v6 = addrOf(n.ipv6);
    if (v4) nodeByIp.set(v4, n.name);
    if (v6) nodeByIp.set(v6, n.name);
  }

  // Blocks and pods, from the IPAM usage.
  const blocksOf = new Map<string, BlockView[]>();
  const pods = new Map<string, PodView>();
  const allBlocks: { b: BlockUsage; pool: string }[] = [
    ...etcd.ipam.pools.flatMap((p) => p.blocks.map((b) => ({ b, pool: p.name }))),
    ...etcd.ipam.orphanBlocks.map((b) => ({ b, pool: '' })),
  ];
  for (const { b, pool } of allBlocks) {
    if (b.node) blocksOf.set(b.node, [...(blocksOf.get(b.node) ?? []), blockView(b, pool)]);
    for (const a of b.allocations) {
      if (TUNNEL_HANDLE.test(a.handle)) continue;
      const node = a.owner.node ?? b.node ?? '';
      let p = pods.get(a.handle);
      if (!p) {
        p = {
          id: a.handle,
          name: a.owner.pod ?? a.owner.containerId ?? a.handle,
          node,
          ips: [],
          blocks: [],
          ...(a.owner.namespace ? { namespace: a.owner.namespace } : {}),
          ...(a.owner.containerId ? { containerId: a.owner.containerId } : {}),
        };
        pods.set(a.handle, p);
      }
      p.ips.push(a.ip);
      p.blocks.push(b.cidr);
    }
  }
  const podList = [...pods.values()].sort((x, y) => x.node.localeCompare(y.node) || x.name.localeCompare(y.name));

  const problems: string[] = [];
  const nodes: NodeView[] = [...etcd.nodes]
    .sort((x, y) => x.name.localeCompare(y.name))
    .map((n) => {
      const probe = probeOf.get(n.name);
      const st = probe?.ok ? probe.status : undefined;
      const isAlive = alive.has(n.name);
      if (!isAlive) problems.push(`${n.name}: not alive in etcd (no agent holds its lease)`);
      if (probe && !probe.ok) problems.push(`${n.name}: agent status endpoint unreachable (${probe.error})`);
      const ready = st?.readiness?.ready ?? false;
      // Sessions not Established are listed once per link below, not again as readiness.
      const notReady = (st?.readiness?.reasons ?? []).filter((r) => !r.startsWith('BGP: '));
      if (st && !ready && notReady.length > 0) problems.push(`${n.name}: agent not ready: ${notReady.join('; ')}`);
      const sessions: SessionView[] = (st?.peers ?? []).map((p) => {
        const peerNode = nodeByIp.get(p.address);
        const s: SessionView = {
          peerAddress: p.address,
          type: p.type ?? '',
          state: p.state,
          health: healthOf(p.state),
          uptimeSec: p.uptimeSec ?? 0,
          prefixesAccepted: p.prefixesAccepted ?? 0,
          staleRoutes: p.staleRoutes ?? 0,
          ...(peerNode ? { peerNode } : {}),
          ...(p.asn !== undefined ? { asn: p.asn } : {}),
          ...(p.lastError ? { lastError: p.lastError } : {}),
        };
        return s;
      });
      // The mesh wants a session to every other node (of our address family): show the missing ones.
      if (etcd.bgp.nodeToNodeMesh && st) {
        const fam = n.ipv4 ? 'ipv4' : 'ipv6';
        for (const o of etcd.nodes) {
          const ip = addrOf(o[fam]);
          if (o.name === n.name || !ip || sessions.some((x) => x.peerNode === o.name)) continue;
          sessions.push({
            peerAddress: ip,
            peerNode: o.name,
            type: 'node-to-node mesh',
            state: NO_SESSION,
            health: 'down',
            uptimeSec: 0,
            prefixesAccepted: 0,
            staleRoutes: 0,
            lastError: alive.has(o.name)
              ? 'the mesh calls for it; the agent has not configured it'
              : `${o.name} is not alive in etcd: peer removed`,
          });
        }
      }
      sessions.sort((x, y) => x.peerAddress.localeCompare(y.peerAddress));
      const routes: RouteView[] = (probe?.ok ? probe.routes : [])
        .map((r) => {
          const viaNode = r.nextHops[0] ? nodeByIp.get(r.nextHops[0]) : undefined;
          return {
            prefix: r.prefix,
            nextHops: [...r.nextHops],
            local: r.local,
            stale: r.stale,
            ...(viaNode ? { viaNode } : {}),
          };
        })
        .sort((x, y) => x.prefix.localeCompare(y.prefix));
      const dp = st?.dataplane?.routes;
      const v4 = addrOf(n.ipv4);
      const v6 = addrOf(n.ipv6);
      return {
        name: n.name,
        ...(v4 ? { ipv4: v4 } : {}),
        ...(v6 ? { ipv6: v6 } : {}),
        asNumber: n.asNumber ?? st?.asn ?? etcd.bgp.asNumber,
        alive: isAlive,
        routeReflector: n.routeReflectorClusterId !== undefined || st?.routeReflector === true,
        ...(n.routeReflectorClusterId ? { clusterId: n.routeReflectorClusterId } : {}),
        labels: { ...n.labels },
        agent: {
          url: probe?.url ?? '',
          reachable: probe?.ok === true,
          ...(probe && !probe.ok ? { error: probe.error } : {}),
          ready,
          reasons: st?.readiness?.reasons ?? (probe && !probe.ok ? [probe.error] : []),
          ...(dp?.routesProgrammed !== undefined ? { routesProgrammed: dp.routesProgrammed } : {}),
          ...(dp?.desiredRoutes !== undefined ? { desiredRoutes: dp.desiredRoutes } : {}),
          ...(dp?.converged !== undefined ? { converged: dp.converged } : {}),
        },
        blocks: (blocksOf.get(n.name) ?? []).sort((x, y) => x.cidr.localeCompare(y.cidr)),
        sessions,
        routes,
        pods: podList.filter((p) => p.node === n.name).map((p) => p.id),
      };
    });

  // Links between our nodes, from both ends.
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const links = new Map<string, LinkView>();
  for (const n of nodes) {
    for (const s of n.sessions) {
      if (!s.peerNode || s.peerNode === n.name) continue;
      const [a, b] = [n.name, s.peerNode].sort() as [string, string];
      const key = `${a}|${b}`;
      const l = links.get(key) ?? { a, b, health: 'unknown' as Health };
      if (n.name === a) l.stateA = s.state;
      else l.stateB = s.state;
      links.set(key, l);
    }
  }
  if (etcd.bgp.nodeToNodeMesh) {
    // Pairs neither end reports (both agents unreachable): the mesh still calls for them.
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const x = nodes[i] as NodeView;
        const y = nodes[j] as NodeView;
        const [a, b] = [x.name, y.name].sort() as [string, string];
        if (!links.has(`${a}|${b}`) && (x.ipv4 ?? x.ipv6) && (y.ipv4 ?? y.ipv6))
          links.set(`${a}|${b}`, { a, b, health: 'unknown' });
      }
    }
  }
  for (const l of links.values()) {
    const ends = [l.stateA, l.stateB];
    const reachable = [byName.get(l.a)?.agent.reachable, byName.get(l.b)?.agent.reachable];
    if (ends.every((s) => s === 'Established')) l.health = 'up';
    else if (ends.some((s) => s !== undefined && healthOf(s) === 'down')) l.health = 'down';
    else if (reachable.some((r) => r === false)) l.health = 'down';
    else if (ends.some((s) => s !== undefined)) l.health = 'connecting';
    if (l.health !== 'up')
      problems.push(`BGP ${l.a} ↔ ${l.b} not Established (${l.stateA ?? '?'} / ${l.stateB ?? '?'})`);
  }
  for (const n of nodes) {
    for (const s of n.sessions) {
      if (!s.peerNode && s.health !== 'up') problems.push(`${n.name}: BGP peer ${s.peerAddress} is ${s.state}`);
    }
  }

  const pools: PoolView[] = etcd.ipam.pools.map((p) => ({
    name: p.name,
    cidr: p.cidr,
    blockSize: p.blockSize,
    ipipMode: p.ipipMode,
    vxlanMode: p.vxlanMode,
    natOutgoing: p.natOutgoing,
    disabled: p.disabled,
    size: p.size,
    inUse: p.inUse,
    blocks: p.blocks.length,
  }));

  return {
    at,
    asNumber: etcd.bgp.asNumber,
    nodeToNodeMesh: etcd.bgp.nodeToNodeMesh,
    pools,
    nodes,
    links: [...links.values()].sort((x, y) => x.a.localeCompare(y.a) || x.b.localeCompare(y.b)),
    pods: podList,
    problems,
  };
}

// ------------------------------------------------------------------ A → B

/** One step of the "A → B" check: ok true/false, or null when it could not be asked. */
export interface PathCheck {
  id: string;
  label: string;
  ok: boolean | null;
  detail: string;
}

export interface PathEnd {
  pod: string;
  name: string;
  ip: string;
  node: string;
  block: string;
  /** The node the block is affine to (whose route leads to it). */
  blockNode?: string;
}

export interface PathReport {
  from: PathEnd;
  to: PathEnd;
  sameNode: boolean;
  checks: PathCheck[];
  /** Every check ok. */
  ok: boolean;
  /** One line: the first failing check, or that the path is up. */
  verdict: string;
}

export class PathError extends Error {
  override readonly name = 'PathError';
  constructor(
    readonly kind: 'unknown-pod' | 'no-address',
    message: string,
  ) {
    super(message);
  }
}

function contains(cidr: string, ip: string): boolean {
  try {
    const c = parseCidr(cidr);
    const a = parseIp(ip);
    if (a.family !== c.family) return false;
    const bits = c.family === 4 ? 32 : 128;
    const shift = BigInt(bits - c.len);
    return a.addr >> shift === c.addr >> shift;
  } catch {
    return false;
  }
}

/** Picks the end's address (same family as the other end's when both have one). */
function endOf(v: ClusterView, podId: string, family: 4 | 6 | undefined): PathEnd {
  const p = v.pods.find((x) => x.id === podId || x.name === podId);
  if (!p) throw new PathError('unknown-pod', `no pod ${JSON.stringify(podId)}`);
  let i = p.ips.findIndex((ip) => (family === 6 ? ip.includes(':') : family === 4 ? !ip.includes(':') : true));
  if (i < 0) i = 0;
  const ip = p.ips[i];
  if (ip === undefined) throw new PathError('no-address', `pod ${p.name} has no address`);
  const block = p.blocks[i] ?? '';
  const owner = v.nodes.find((n) => n.blocks.some((b) => b.cidr === block));
  return { pod: p.id, name: p.name, ip, node: p.node, block, ...(owner ? { blockNode: owner.name } : {}) };
}

/** The session between two nodes as `x` reports it, if any. */
function sessionTo(x: NodeView, y: NodeView): SessionView | undefined {
  return x.sessions.find((s) => s.peerNode === y.name);
}

/**
 * Why pod `fromId` cannot reach pod `toId` (or that it can, as far as the control plane shows):
 * where each is, the agents, the BGP sessions between their nodes (direct or through a route
 * reflector), the route to each block on the other node (both ways: a reply needs the return
 * route) and whether the kernels hold what the agents want. Pods are named by handle or name.
 */
export function checkPath(v: ClusterView, fromId: string, toId: string): PathReport {
  const from = endOf(v, fromId, undefined);
  const to = endOf(v, toId, from.ip.includes(':') ? 6 : 4);
  const checks: PathCheck[] = [];
  const add = (id: string, label: string, ok: boolean | null, detail: string) => {
    checks.push({ id, label, ok, detail });
  };
  const nodeOf = (name: string) => v.nodes.find((n) => n.name === name);
  const na = nodeOf(from.node);
  const nb = nodeOf(to.node);
  const sameNode = from.node === to.node;

  for (const [tag, end, n] of [
    ['a', from, na],
    ['b', to, nb],
  ] as const) {
    add(
      `node-${tag}`,
      `${end.name} is on ${end.node || '?'}`,
      n ? n.alive : false,
      n
        ? `${end.ip} in block ${end.block}; ${n.name} ${n.alive ? 'alive' : 'NOT alive'} in etcd`
        : `node ${end.node || '?'} has no record`,
    );
    add(
      `block-${tag}`,
      `${end.block} belongs to ${end.node}`,
      end.blockNode === end.node,
      end.blockNode === end.node
        ? `block affine to ${end.node}: its route leads there`
        : `block affine to ${end.blockNode ?? 'no node'}: routes to ${end.ip} lead there, not to ${end.node}`,
    );
    // Readiness also counts every BGP session not Established (of any peer): those are judged
    // by the session check below, so here only the agent's other reasons fail it.
    const other = n?.agent.reasons.filter((r) => !r.startsWith('BGP: ')) ?? [];
    add(
      `agent-${tag}`,
      `agent on ${end.node} answers`,
      n ? n.agent.reachable && other.length === 0 : false,
      !n
        ? 'no node'
        : !n.agent.reachable
          ? `status endpoint unreachable: ${n.agent.error ?? '?'}`
          : n.agent.ready
            ? 'ready'
            : `not ready: ${n.agent.reasons.join('; ')}`,
    );
  }

  if (sameNode) {
    add('same-node', 'same node: delivered by the node’s own /32 routes', true, `both on ${from.node}`);
  } else if (na && nb) {
    // Sessions: direct, else through a route reflector both have Established.
    const ab = sessionTo(na, nb);
    const ba = sessionTo(nb, na);
    if (ab || ba) {
      const up = ab?.state === 'Established' && ba?.state === 'Established';
      const anyUp = ab?.state === 'Established' || ba?.state === 'Established';
      add(
        'session',
        `BGP session ${na.name} ↔ ${nb.name} Established`,
        up ? true : !na.agent.reachable || !nb.agent.reachable ? (anyUp ? null : false) : false,
        `${na.name} says ${ab?.state ?? (na.agent.reachable ? 'no such peer' : 'unreachable')}, ${nb.name} says ${ba?.state ?? (nb.agent.reachable ? 'no such peer' : 'unreachable')}`,
      );
    } else {
      const rr = v.nodes.find(
        (r) =>
          r.routeReflector && sessionTo(na, r)?.state === 'Established' && sessionTo(nb, r)?.state === 'Established',
      );
      add(
        'session',
        `BGP path ${na.name} ↔ ${nb.name}`,
        rr !== undefined,
        rr
          ? `through route reflector ${rr.name} (both sessions Established)`
          : `no direct session and no route reflector Established with both`,
      );
    }
    // Routes both ways, in the speakers' Loc-RIB, next hop = the block's node.
    for (const [tag, x, end] of [
      ['ab', na, to],
      ['ba', nb, from],
    ] as const) {
      const owner = end.blockNode ? nodeOf(end.blockNode) : undefined;
      const want = end.ip.includes(':') ? owner?.ipv6 : owner?.ipv4;
      const r = x.routes.find((rt) => !rt.local && contains(rt.prefix, end.ip));
      let ok: boolean | null;
      let detail: string;
      if (!x.agent.reachable) {
        ok = null;
        detail = `cannot ask ${x.name}`;
      } else if (!r) {
        ok = false;
        detail = `${x.name} has no route covering ${end.ip} (${end.block} not learned)`;
      } else if (want && !r.nextHops.includes(want)) {
        ok = false;
        detail = `${x.name} routes ${r.prefix} via ${r.nextHops.join(',')}, expected ${want} (${owner?.name})`;
      } else {
        ok = !r.stale;
        detail = `${x.name}: ${r.prefix} via ${r.nextHops.join(',')}${r.viaNode ? ` (${r.viaNode})` : ''}${r.stale ? ' STALE (peer restarting: kept for graceful restart)' : ''}`;
      }
      add(
        `route-${tag}`,
        tag === 'ab' ? `route to ${end.block} on ${x.name}` : `return route to ${end.block} on ${x.name}`,
        ok,
        detail,
      );
    }
  }
  for (const [tag, n] of [
    ['a', na],
    ['b', nb],
  ] as const) {
    if (!n || (tag === 'b' && sameNode)) continue;
    const a = n.agent;
    const known = a.reachable && a.desiredRoutes !== undefined;
    add(
      `kernel-${tag}`,
      `${n.name} kernel holds the routes its agent wants`,
      known ? a.converged === true || a.routesProgrammed === a.desiredRoutes : null,
      known ? `${a.routesProgrammed ?? 0}/${a.desiredRoutes ?? 0} routes programmed` : `cannot ask ${n.name}`,
    );
  }
  const bad = checks.find((c) => c.ok !== true);
  return {
    from,
    to,
    sameNode,
    checks,
    ok: bad === undefined,
    verdict: bad
      ? `${bad.ok === null ? 'unknown' : 'broken'}: ${bad.label} — ${bad.detail}`
      : `${from.name} → ${to.name}: every check passes`,
  };
}

// ------------------------------------------------------------------ route feed

export interface FeedEntry {
  seq: number;
  /** Wall-clock ISO time the UI saw it. */
  at: string;
  /** The node whose speaker reported the change. */
  node: string;
  kind: 'add' | 'replace' | 'withdraw' | 'stream-up' | 'stream-lost';
  prefix?: string;
  nextHops?: string[];
  /** Node owning the first next hop. */
  viaNode?: string;
  detail?: string;
}

/** A best-path change from an agent's /routes/watch as a feed entry. */
export function routeEntry(
  node: string,
  ev: { event: string; prefix: string; nextHops?: readonly string[] },
  nodeByIp: ReadonlyMap<string, string>,
  seq: number,
  at: string,
): FeedEntry | undefined {
  if (ev.event !== 'add' && ev.event !== 'replace' && ev.event !== 'withdraw') return undefined;
  if (typeof ev.prefix !== 'string') return undefined;
  const nextHops = [...(ev.nextHops ?? [])].filter((h) => typeof h === 'string');
  const viaNode = nextHops[0] ? nodeByIp.get(nextHops[0]) : undefined;
  return {
    seq,
    at,
    node,
    kind: ev.event,
    prefix: ev.prefix,
    ...(nextHops.length ? { nextHops } : {}),
    ...(viaNode ? { viaNode } : {}),
  };
}

/** Node addresses (v4 and v6, no length) → node name. */
export function nodesByIp(v: ClusterView): Map<string, string> {
  const m = new Map<string, string>();
  for (const n of v.nodes) {
    if (n.ipv4) m.set(n.ipv4, n.name);
    if (n.ipv6) m.set(n.ipv6, n.name);
  }
  return m;
}

/** Keeps the newest `max` entries. */
export class FeedRing {
  private readonly items: FeedEntry[] = [];
  private seq = 0;
  constructor(readonly max = 500) {}
  nextSeq(): number {
    return ++this.seq;
  }
  push(e: FeedEntry): void {
    this.items.push(e);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
  }
  /** Entries with seq > `after`, oldest first. */
  since(after = 0): FeedEntry[] {
    return this.items.filter((e) => e.seq > after);
  }
}

// ------------------------------------------------------------------ SSE parsing

export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Server-Sent Events parser (WHATWG HTML §9.2.6): push text chunks in, whole events out. Lines
 * end in LF, CRLF or CR; `:` lines are comments; `data` lines join with LF; an empty line
 * dispatches; an event with no data is dropped.
 */
export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];

  push(chunk: string): SseEvent[] {
    this.buf += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === '') {
        if (this.data.length > 0) out.push({ event: this.event || 'message', data: this.data.join('\n') });
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? '' : line.slice(c + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
    }
    // Bound the buffer: a peer that never ends a line gets its line dropped.
    if (this.buf.length > 1 << 20) this.buf = '';
    return out;
  }
}
