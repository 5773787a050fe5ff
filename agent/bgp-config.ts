/**
 * PURE: cluster state (etcd) -> this node's BGP speaker configuration, the way Calico's confd
 * renders BIRD's config (reference/calico.md §3.10):
 *
 *  - node-to-node mesh (when on): one iBGP session to every other live node, over its IPv4 address
 *    when it has one (carrying IPv4 and IPv6 routes: MP-BGP), else over its IPv6 address. The side
 *    with the greater address is passive, so each pair dials once.
 *  - global peers (no node, no node selector): every node has the session.
 *  - node-specific peers (`node` or `nodeSelector` matching this node).
 *  - peer selectors: the selected nodes are the peers (Calico's route-reflector pattern), in both
 *    directions as confd does (a node the peerSelector matches peers with the nodes the record
 *    applies to); a node with a route-reflector cluster ID reflects to nodes without one (they are
 *    its clients); a session toward a reflector is type `route-reflector`.
 *  - one session per address: an explicit peer wins over the mesh; our own address is never a peer.
 *  - announcements: this node's confirmed affine blocks and a /32 (/128) per address it holds in a
 *    block affine to another node (borrowed).
 *  - export filters: every session gets only prefixes inside the pools (mesh peers and external
 *    peers alike: the pools' routes are the only ones a node has to give). Routes external peers
 *    send reach the Loc-RIB; the planner programs only prefixes inside pools unless configured.
 *
 * Complicating factors: the speaker's AS, router ID, listen port, reflector role and graceful
 * restart are fixed at construction (a change needs a new speaker: `needsRestart`); peers and
 * announcements change at run time (`diffPeers`).
 */
import type { FilterRule, PeerConfig, SpeakerConfig } from '../bgp/index.js';
import type { Pool } from '../ipam-etcd/index.js';
import { addrOf, type BgpPeerRecord, type NodeRecord } from './node/record.js';
import type { ClusterState } from './sync/types.js';

export const PeerType = {
  Mesh: 'node-to-node mesh',
  Global: 'global',
  NodeSpecific: 'node specific',
  RouteReflector: 'route reflector',
} as const;
export type PeerType = (typeof PeerType)[keyof typeof PeerType];

export interface PlannedPeer extends PeerConfig {
  type: PeerType;
  /** Peer record name, or the node's name for mesh/selector peers. */
  name: string;
}

export interface BgpPlan {
  /** Undefined: this node cannot run BGP (no address, or the node's record is missing). */
  speaker?: SpeakerConfig;
  peers: PlannedPeer[];
  announcements: string[];
}

export interface PlanOptions {
  self: string;
  /** Address the speaker listens on (default 0.0.0.0, or :: when the node has IPv6). */
  listenAddress?: string;
  /** Parses a selector; must throw on bad syntax (ipam-etcd's parseSelector). */
  selector: (src: string) => (labels: Record<string, string>) => boolean;
  /** The agent restarted: set the graceful-restart R bit and defer selection. */
  restarting?: boolean;
}

function ipCompare(a: string, b: string): number {
  const norm = (ip: string) =>
    ip.includes(':')
      ? ip
          .split(':')
          .map((x) => x.padStart(4, '0'))
          .join(':')
      : ip
          .split('.')
          .map((x) => x.padStart(3, '0'))
          .join('.');
  return norm(a) < norm(b) ? -1 : norm(a) > norm(b) ? 1 : 0;
}

/** Prefixes inside the pools (any length from the pool's own). */
export function poolExportFilter(pools: readonly Pool[]): { rules: FilterRule[]; defaultAction: 'reject' } {
  const prefixes = pools.map((p) => ({ prefix: p.cidr, ge: Number(p.cidr.split('/')[1]) }));
  return { rules: prefixes.length ? [{ action: 'accept', prefixes }] : [], defaultAction: 'reject' };
}

function sessionAddress(n: NodeRecord, preferV6 = false): string | undefined {
  const v4 = n.ipv4 ? addrOf(n.ipv4) : undefined;
  const v6 = n.ipv6 ? addrOf(n.ipv6) : undefined;
  return preferV6 ? (v6 ?? v4) : (v4 ?? v6);
}

function peerApplies(p: BgpPeerRecord, me: NodeRecord, sel: PlanOptions['selector']): boolean {
  if (p.node !== undefined) return p.node === me.name;
  if (p.nodeSelector !== undefined) return sel(p.nodeSelector)(me.labels);
  return true;
}

export function planBgp(state: ClusterState, opts: PlanOptions): BgpPlan {
  const me = state.nodes.find((n) => n.name === opts.self);
  const announcements = [
    ...state.blocks.filter((b) => b.node === opts.self).map((b) => b.cidr),
    ...(state.borrowed[opts.self] ?? []).map((ip) => (ip.includes(':') ? `${ip}/128` : `${ip}/32`)),
  ].sort();
  if (!me || (!me.ipv4 && !me.ipv6)) return { peers: [], announcements };
  const myAsn = me.asNumber ?? state.bgp.asNumber;
  const myAddrs = new Set([me.ipv4, me.ipv6].filter((x): x is string => !!x).map(addrOf));
  const routerId = me.ipv4 ? addrOf(me.ipv4) : undefined;
  const exportFilter = poolExportFilter(state.pools);
  const alive = new Set(state.alive);
  const speaker: SpeakerConfig = {
    asn: myAsn,
    // IPv6-only nodes need a router ID: Calico derives one from the node name's hash; we take a
    // stable 32-bit FNV-1a of the name in 0.0.0.0/8-free space.
    routerId: routerId ?? hashRouterId(me.name),
    listen: { address: opts.listenAddress ?? (me.ipv6 ? '::' : '0.0.0.0'), port: state.bgp.listenPort },
    gracefulRestart: {
      restartTimeSec: state.bgp.gracefulRestartTimeSec,
      ...(opts.restarting ? { restarting: true } : {}),
    },
    nextHop: {
      ...(me.ipv4 ? { ipv4: addrOf(me.ipv4) } : {}),
      ...(me.ipv6 ? { ipv6: addrOf(me.ipv6) } : {}),
    },
  };
  if (me.routeReflectorClusterId) speaker.routeReflector = { clusterId: me.routeReflectorClusterId };
  const byAddr = new Map<string, PlannedPeer>();
  const add = (p: PlannedPeer) => {
    if (myAddrs.has(p.address) || byAddr.has(p.address)) return;
    byAddr.set(p.address, p);
  };
  const base = (address: string, asn: number, holdTimeSec: number | undefined) => ({
    address,
    asn,
    port: state.bgp.listenPort,
    holdTimeSec: holdTimeSec ?? state.bgp.holdTimeSec,
    exportFilter,
    // Calico: `connect retry time 5`; a restarting node is dialled again promptly.
    connectRetrySec: 5,
    idleHoldSec: 1,
    idleHoldMaxSec: 10,
  });
  const peers = [...state.peers].sort((a, b) => a.name.localeCompare(b.name));
  // Explicit peers first (they win over the mesh for the same address): node-specific, then global.
  for (const scope of ['node', 'global'] as const) {
    for (const p of peers) {
      const isNodeScoped = p.node !== undefined || p.nodeSelector !== undefined;
      if ((scope === 'node') !== isNodeScoped || !peerApplies(p, me, opts.selector)) continue;
      const scopeType = isNodeScoped ? PeerType.NodeSpecific : PeerType.Global;
      if (p.peerIp !== undefined) {
        add({
          ...base(p.peerIp, p.asNumber as number, p.holdTimeSec),
          ...(p.passive ? { passive: true } : {}),
          // eBGP to an external router on another subnet needs multihop; allow 2 hops as BIRD's default.
          ...((p.asNumber as number) !== myAsn ? { multihop: 2 } : {}),
          type: scopeType,
          name: p.name,
        });
        continue;
      }
      const sel = opts.selector(p.peerSelector as string);
      for (const n of state.nodes) {
        if (n.name === me.name || !alive.has(n.name) || !sel(n.labels)) continue;
        const addr = sessionAddress(n);
        if (!addr) continue;
        const asn = n.asNumber ?? state.bgp.asNumber;
        const isClient = !!me.routeReflectorClusterId && !n.routeReflectorClusterId;
        add({
          ...base(addr, asn, p.holdTimeSec),
          ...(isClient ? { routeReflectorClient: true } : {}),
          ...(ipCompare(addrOf(sessionAddress(me) as string), addr) > 0 ? { passive: true } : {}),
          type: n.routeReflectorClusterId ? PeerType.RouteReflector : scopeType,
          name: n.name,
        });
      }
    }
  }
  // The reverse side of node-to-node peer records, as Calico's confd emits it: a record
  // "nodes matching nodeSelector peer with nodes matching peerSelector" also makes every node the
  // peerSelector matches peer with the nodes the record applies to. One record
  // (nodeSelector all(), peerSelector rr == 'true') thus gives the reflector its client sessions.
  for (const p of peers) {
    if (p.peerIp !== undefined || p.peerSelector === undefined) continue;
    if (!opts.selector(p.peerSelector)(me.labels)) continue;
    const isNodeScoped = p.node !== undefined || p.nodeSelector !== undefined;
    for (const n of state.nodes) {
      if (n.name === me.name || !alive.has(n.name) || !peerApplies(p, n, opts.selector)) continue;
      const addr = sessionAddress(n);
      if (!addr) continue;
      const isClient = !!me.routeReflectorClusterId && !n.routeReflectorClusterId;
      add({
        ...base(addr, n.asNumber ?? state.bgp.asNumber, p.holdTimeSec),
        ...(isClient ? { routeReflectorClient: true } : {}),
        ...(ipCompare(addrOf(sessionAddress(me) as string), addr) > 0 ? { passive: true } : {}),
        type: n.routeReflectorClusterId
          ? PeerType.RouteReflector
          : isNodeScoped
            ? PeerType.NodeSpecific
            : PeerType.Global,
        name: n.name,
      });
    }
  }
  if (state.bgp.nodeToNodeMesh) {
    for (const n of state.nodes) {
      if (n.name === me.name || !alive.has(n.name)) continue;
      // Same family as ours: an IPv4 node talks to IPv4 nodes; IPv6-only nodes to IPv6 addresses.
      const addr = me.ipv4 ? (n.ipv4 ? addrOf(n.ipv4) : undefined) : n.ipv6 ? addrOf(n.ipv6) : undefined;
      if (!addr) continue;
      const mine = me.ipv4 ? addrOf(me.ipv4) : addrOf(me.ipv6 as string);
      add({
        ...base(addr, n.asNumber ?? state.bgp.asNumber, undefined),
        ...(ipCompare(mine, addr) > 0 ? { passive: true } : {}),
        type: PeerType.Mesh,
        name: n.name,
      });
    }
  }
  return {
    speaker,
    peers: [...byAddr.values()].sort((a, b) => ipCompare(a.address, b.address)),
    announcements,
  };
}

function hashRouterId(name: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Keep it out of 0.x.x.x (RFC 6286 allows any non-zero ID; 0.0.0.0 is reserved).
  h = (h | 0x01000000) >>> 0;
  return [h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255].join('.');
}

/** True when the speaker-wide settings differ (a new Speaker is needed). */
export function needsRestart(a: SpeakerConfig | undefined, b: SpeakerConfig | undefined): boolean {
  const strip = (c: SpeakerConfig | undefined) =>
    c === undefined
      ? undefined
      : JSON.stringify({
          ...c,
          gracefulRestart: c.gracefulRestart ? { restartTimeSec: c.gracefulRestart.restartTimeSec } : undefined,
        });
  return strip(a) !== strip(b);
}

/** Run-time changes to go from peers `a` to peers `b`: remove, then add (a changed peer is both). */
export function diffPeers(
  a: readonly PlannedPeer[],
  b: readonly PlannedPeer[],
): { remove: PlannedPeer[]; add: PlannedPeer[] } {
  const key = (p: PlannedPeer) => JSON.stringify(p);
  const before = new Map(a.map((p) => [p.address, p]));
  const after = new Map(b.map((p) => [p.address, p]));
  const remove: PlannedPeer[] = [];
  const add: PlannedPeer[] = [];
  for (const [addr, p] of before) {
    const q = after.get(addr);
    if (!q || key(q) !== key(p)) remove.push(p);
  }
  for (const [addr, q] of after) {
    const p = before.get(addr);
    if (!p || key(p) !== key(q)) add.push(q);
  }
  return { remove, add };
}

/** Strips the plan's bookkeeping fields, leaving what Speaker.addPeer takes. */
export function toPeerConfig(p: PlannedPeer): PeerConfig {
  const { type: _t, name, ...cfg } = p;
  return { ...cfg, description: `${p.type}: ${name}` };
}

export function diffList(a: readonly string[], b: readonly string[]): { remove: string[]; add: string[] } {
  const sa = new Set(a);
  const sb = new Set(b);
  return { remove: a.filter((x) => !sb.has(x)), add: b.filter((x) => !sa.has(x)) };
}
