/**
 * The node record and the cluster BGP records Petrel keeps in etcd, next to the IPAM keys
 * (README "Node and BGP keys"). PURE: JSON in, typed record out (or a typed error), no I/O.
 *
 *   /petrel/nodes/<name>              NodeRecord (also holds the labels pool nodeSelectors read)
 *   /petrel/nodes-alive/<name>        {"name","lease","since"}: bound to the agent's etcd lease;
 *                                     gone = the agent stopped refreshing (liveness)
 *   /petrel/node-addresses/<ip>       "<name>": which node claims an address (two nodes never share one)
 *   /petrel/bgp/v1/config             BgpClusterConfig (defaults when absent)
 *   /petrel/bgp/v1/peers/<name>       BgpPeerRecord
 */
import { keys as ipamKeys, parseCidr, parseIp } from '../../ipam-etcd/index.js';

export const nodeKeys = {
  nodes: ipamKeys.nodes,
  node: ipamKeys.node,
  alive: '/petrel/nodes-alive/',
  aliveOf: (name: string) => `/petrel/nodes-alive/${name}`,
  addresses: '/petrel/node-addresses/',
  address: (ip: string) => `/petrel/node-addresses/${ip}`,
  bgpConfig: '/petrel/bgp/v1/config',
  bgpPeers: '/petrel/bgp/v1/peers/',
  bgpPeer: (name: string) => `/petrel/bgp/v1/peers/${name}`,
} as const;

/** IPAM handle of a node's tunnel address (Calico: `ipip-tunnel-addr-<node>`). */
export const tunnelHandle = {
  ipip: (node: string) => `ipip-tunnel-addr-${node}`,
  vxlan: (node: string) => `vxlan-tunnel-addr-${node}`,
  vxlanV6: (node: string) => `vxlan-v6-tunnel-addr-${node}`,
} as const;

/** Stored at /petrel/nodes/<name>. Fields absent when unknown. */
export interface NodeRecord {
  name: string;
  labels: Record<string, string>;
  /** "ADDR/LEN" of the node's IPv4 address (BGP router ID, next hop, VTEP). */
  ipv4?: string;
  /** "ADDR/LEN" of the node's IPv6 address. */
  ipv6?: string;
  /** Per-node AS; absent = the cluster's AS (bgp config). */
  asNumber?: number;
  /** Set on route reflectors (Calico `routeReflectorClusterID`). */
  routeReflectorClusterId?: string;
  ipipTunnelAddr?: string;
  vxlanTunnelAddr?: string;
  vxlanTunnelAddrV6?: string;
  /** aa:bb:cc:dd:ee:ff of the node's petrel.vxlan device. */
  vxlanMac?: string;
  agentVersion?: string;
}

/** Stored at /petrel/nodes-alive/<name>, bound to the agent's lease. */
export interface AliveRecord {
  name: string;
  /** Lease ID (decimal string). */
  lease: string;
  /** Wall-clock ISO time the agent registered. */
  since: string;
}

/** Stored at /petrel/bgp/v1/config. */
export interface BgpClusterConfig {
  asNumber: number;
  nodeToNodeMesh: boolean;
  listenPort: number;
  holdTimeSec: number;
  gracefulRestartTimeSec: number;
}

export const DEFAULT_BGP_CONFIG: BgpClusterConfig = {
  asNumber: 64512,
  nodeToNodeMesh: true,
  listenPort: 179,
  holdTimeSec: 90,
  gracefulRestartTimeSec: 120,
};

/** Stored at /petrel/bgp/v1/peers/<name> (Calico BGPPeer). */
export interface BgpPeerRecord {
  name: string;
  /** Set for an external peer; absent with peerSelector (peers are nodes). */
  peerIp?: string;
  /** Required with peerIp; with peerSelector the selected nodes' AS is used. */
  asNumber?: number;
  /** Only this node has the session (node-specific peer). */
  node?: string;
  /** Only nodes matching this selector have the session. */
  nodeSelector?: string;
  /** The peers are the nodes matching this selector (Calico's route-reflector pattern). */
  peerSelector?: string;
  holdTimeSec?: number;
  passive?: boolean;
}

export class RecordError extends Error {
  override readonly name = 'RecordError';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
  }
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const RR_ID = /^\d{1,3}(\.\d{1,3}){3}$/;

/** "ADDR/LEN" with a host address (not masked) of the given family; throws a message naming it. */
export function checkAddrLen(s: string, family: 4 | 6, what: string): string {
  const slash = s.indexOf('/');
  if (slash < 0) throw new Error(`${what} ${JSON.stringify(s)} is not ADDR/LEN`);
  let ip: { family: number };
  try {
    ip = parseIp(s.slice(0, slash));
    parseCidr(s, false);
  } catch {
    throw new Error(`${what} ${JSON.stringify(s)} is not ADDR/LEN`);
  }
  if (ip.family !== family) throw new Error(`${what} ${JSON.stringify(s)} is not an IPv${family} address`);
  return s;
}

export function checkIp(s: string, what: string, family?: 4 | 6): string {
  let ip: { family: number };
  try {
    ip = parseIp(s);
  } catch {
    throw new Error(`${what} ${JSON.stringify(s)} is not an IP address`);
  }
  if (family && ip.family !== family) throw new Error(`${what} ${JSON.stringify(s)} is not an IPv${family} address`);
  return s;
}

/** 1..4294967295 (4-octet AS). */
export function checkAsn(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4294967295) {
    throw new Error(`${what} ${JSON.stringify(v)} is not an AS number (1..4294967295)`);
  }
  return v;
}

/** Address part of "ADDR/LEN". */
export function addrOf(addrLen: string): string {
  const i = addrLen.indexOf('/');
  return i < 0 ? addrLen : addrLen.slice(0, i);
}

function parseObj(key: string, value: string): Record<string, unknown> {
  let o: unknown;
  try {
    o = JSON.parse(value);
  } catch {
    throw new RecordError(key, 'not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new RecordError(key, 'not a JSON object');
  return o as Record<string, unknown>;
}

function wrap<T>(key: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RecordError) throw err;
    throw new RecordError(key, (err as Error).message);
  }
}

export function parseNodeRecord(key: string, value: string): NodeRecord {
  const o = parseObj(key, value);
  return wrap(key, () => {
    if (!isStr(o.name) || o.name === '') throw new Error('node needs a name');
    const labels = o.labels ?? {};
    if (typeof labels !== 'object' || labels === null || Object.values(labels).some((v) => !isStr(v))) {
      throw new Error('labels must map strings to strings');
    }
    const r: NodeRecord = { name: o.name, labels: { ...(labels as Record<string, string>) } };
    if (o.ipv4 !== undefined) r.ipv4 = checkAddrLen(String(o.ipv4), 4, 'ipv4');
    if (o.ipv6 !== undefined) r.ipv6 = checkAddrLen(String(o.ipv6), 6, 'ipv6');
    if (o.asNumber !== undefined) r.asNumber = checkAsn(o.asNumber, 'asNumber');
    if (o.routeReflectorClusterId !== undefined) {
      if (!isStr(o.routeReflectorClusterId) || !RR_ID.test(o.routeReflectorClusterId))
        throw new Error(`routeReflectorClusterId ${JSON.stringify(o.routeReflectorClusterId)} is not a dotted quad`);
      r.routeReflectorClusterId = o.routeReflectorClusterId;
    }
    if (o.ipipTunnelAddr !== undefined) r.ipipTunnelAddr = checkIp(String(o.ipipTunnelAddr), 'ipipTunnelAddr', 4);
    if (o.vxlanTunnelAddr !== undefined) r.vxlanTunnelAddr = checkIp(String(o.vxlanTunnelAddr), 'vxlanTunnelAddr', 4);
    if (o.vxlanTunnelAddrV6 !== undefined)
      r.vxlanTunnelAddrV6 = checkIp(String(o.vxlanTunnelAddrV6), 'vxlanTunnelAddrV6', 6);
    if (o.vxlanMac !== undefined) {
      if (!isStr(o.vxlanMac) || !MAC.test(o.vxlanMac)) throw new Error(`vxlanMac ${JSON.stringify(o.vxlanMac)}`);
      r.vxlanMac = o.vxlanMac;
    }
    if (o.agentVersion !== undefined) r.agentVersion = String(o.agentVersion);
    return r;
  });
}

/** Readable JSON with a stable field order (what `etcdctl get` shows). */
export function formatNodeRecord(r: NodeRecord): string {
  const o: Record<string, unknown> = { name: r.name, labels: r.labels };
  for (const k of [
    'ipv4',
    'ipv6',
    'asNumber',
    'routeReflectorClusterId',
    'ipipTunnelAddr',
    'vxlanTunnelAddr',
    'vxlanTunnelAddrV6',
    'vxlanMac',
    'agentVersion',
  ] as const) {
    if (r[k] !== undefined) o[k] = r[k];
  }
  return JSON.stringify(o);
}

export function parseAliveRecord(key: string, value: string): AliveRecord {
  const o = parseObj(key, value);
  if (!isStr(o.name) || !isStr(o.lease) || !isStr(o.since)) throw new RecordError(key, 'needs name, lease, since');
  return { name: o.name, lease: o.lease, since: o.since };
}

function checkPort(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535)
    throw new Error(`${what} ${JSON.stringify(v)} is not a port (1..65535)`);
  return v;
}

/** Hold time: 0 or 3..65535 s (RFC 4271 §4.2). */
export function checkHoldTime(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535 || v === 1 || v === 2)
    throw new Error(`${what} ${JSON.stringify(v)} is not a hold time (0 or 3..65535 s)`);
  return v;
}

function checkSeconds(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 4095)
    throw new Error(`${what} ${JSON.stringify(v)} is not a restart time (0..4095 s)`);
  return v;
}

export function parseBgpConfig(key: string, value: string): BgpClusterConfig {
  const o = parseObj(key, value);
  return wrap(key, () => ({
    asNumber: o.asNumber === undefined ? DEFAULT_BGP_CONFIG.asNumber : checkAsn(o.asNumber, 'asNumber'),
    nodeToNodeMesh:
      o.nodeToNodeMesh === undefined
        ? DEFAULT_BGP_CONFIG.nodeToNodeMesh
        : typeof o.nodeToNodeMesh === 'boolean'
          ? o.nodeToNodeMesh
          : (() => {
              throw new Error('nodeToNodeMesh must be true or false');
            })(),
    listenPort: o.listenPort === undefined ? DEFAULT_BGP_CONFIG.listenPort : checkPort(o.listenPort, 'listenPort'),
    holdTimeSec:
      o.holdTimeSec === undefined ? DEFAULT_BGP_CONFIG.holdTimeSec : checkHoldTime(o.holdTimeSec, 'holdTimeSec'),
    gracefulRestartTimeSec:
      o.gracefulRestartTimeSec === undefined
        ? DEFAULT_BGP_CONFIG.gracefulRestartTimeSec
        : checkSeconds(o.gracefulRestartTimeSec, 'gracefulRestartTimeSec'),
  }));
}

export function formatBgpConfig(c: BgpClusterConfig): string {
  return JSON.stringify({
    asNumber: c.asNumber,
    nodeToNodeMesh: c.nodeToNodeMesh,
    listenPort: c.listenPort,
    holdTimeSec: c.holdTimeSec,
    gracefulRestartTimeSec: c.gracefulRestartTimeSec,
  });
}

/**
 * Validates a peer record. `checkSelector` parses a selector (throws on bad syntax); injected so
 * this file stays free of the selector module's error types.
 */
export function validatePeer(p: BgpPeerRecord, checkSelector: (s: string) => void): BgpPeerRecord {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(p.name) || p.name.length > 253)
    throw new Error(`peer name ${JSON.stringify(p.name)} is not a DNS-1123 name`);
  if (p.peerIp === undefined && p.peerSelector === undefined)
    throw new Error(`peer ${p.name}: needs a peer IP or a peer selector`);
  if (p.peerIp !== undefined && p.peerSelector !== undefined)
    throw new Error(`peer ${p.name}: a peer IP and a peer selector exclude each other`);
  if (p.peerIp !== undefined) {
    checkIp(p.peerIp, 'peer IP');
    if (p.asNumber === undefined) throw new Error(`peer ${p.name}: an external peer needs an AS number`);
  }
  if (p.asNumber !== undefined) checkAsn(p.asNumber, 'AS number');
  if (p.node !== undefined && p.nodeSelector !== undefined)
    throw new Error(`peer ${p.name}: a node and a node selector exclude each other`);
  for (const [sel, what] of [
    [p.nodeSelector, 'node selector'],
    [p.peerSelector, 'peer selector'],
  ] as const) {
    if (sel === undefined) continue;
    try {
      checkSelector(sel);
    } catch (err) {
      throw new Error(`${what} ${JSON.stringify(sel)}: ${(err as Error).message}`);
    }
  }
  if (p.holdTimeSec !== undefined) checkHoldTime(p.holdTimeSec, 'hold time');
  return p;
}

export function parseBgpPeer(key: string, value: string, checkSelector: (s: string) => void): BgpPeerRecord {
  const o = parseObj(key, value);
  return wrap(key, () => {
    if (!isStr(o.name)) throw new Error('peer needs a name');
    const p: BgpPeerRecord = { name: o.name };
    if (o.peerIp !== undefined) p.peerIp = String(o.peerIp);
    if (o.asNumber !== undefined) p.asNumber = o.asNumber as number;
    if (o.node !== undefined) p.node = String(o.node);
    if (o.nodeSelector !== undefined) p.nodeSelector = String(o.nodeSelector);
    if (o.peerSelector !== undefined) p.peerSelector = String(o.peerSelector);
    if (o.holdTimeSec !== undefined) p.holdTimeSec = o.holdTimeSec as number;
    if (o.passive !== undefined) p.passive = o.passive === true;
    return validatePeer(p, checkSelector);
  });
}

export function formatBgpPeer(p: BgpPeerRecord): string {
  const o: Record<string, unknown> = { name: p.name };
  for (const k of ['peerIp', 'asNumber', 'node', 'nodeSelector', 'peerSelector', 'holdTimeSec', 'passive'] as const) {
    if (p[k] !== undefined) o[k] = p[k];
  }
  return JSON.stringify(o);
}
