/**
 * Plain data for the routing data plane: what the planner takes (a snapshot of node records, pools,
 * confirmed block affinities and the BGP Loc-RIB) and what it returns (the desired routes, devices,
 * neighbours and FDB entries). No behaviour here; see plan.ts (pure) and reconcile.ts (apply).
 */
import type { EncapMode } from '../../ipam-etcd/index.js';

export type { EncapMode };
export type Family = 4 | 6;

/**
 * The route protocol number Petrel's routes carry in the kernel (`proto 80`, the number Felix uses
 * for its own routes). Petrel reads, changes and deletes only routes with this protocol; everything
 * else (the CNI's pod /32s `proto boot`/`static`, kernel, BIRD's `proto bird` = 12) is foreign.
 * The number is used as is: nothing is added to /etc/iproute2/rt_protos.d on the host.
 */
export const PETREL_ROUTE_PROTO = 80;

/** Device names (≤ 15 characters). */
export const Devices = { ipip: 'tunl0', vxlan: 'petrel.vxlan', vxlan6: 'petrel.vxlan6' } as const;

/** VXLAN parameters (Calico's defaults). */
export const VXLAN_VNI = 4096;
export const VXLAN_PORT = 4789;

/** A node as the data plane needs it (this node, or another node from its etcd record). */
export interface NodeSpec {
  name: string;
  /** "ADDR/LEN" with the real prefix length: CrossSubnet compares subnets with it. */
  ipv4?: string;
  ipv6?: string;
  /** Uplink interface (only meaningful for this node). */
  uplink?: string;
  /** Bare addresses (no prefix). */
  ipipTunnelAddr?: string;
  vxlanTunnelAddr?: string;
  vxlanTunnelAddrV6?: string;
  /** MAC of the node's VXLAN device (IPv4); `vxlanMacV6` for the IPv6 device (defaults to vxlanMac). */
  vxlanMac?: string;
  vxlanMacV6?: string;
}

export interface SelfSpec extends NodeSpec {
  uplink: string;
}

export interface PoolSpec {
  cidr: string;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  /** Only new assignments stop; routes to existing blocks stay. */
  disabled: boolean;
}

/** A confirmed block affinity from IPAM. */
export interface BlockSpec {
  cidr: string;
  node: string;
}

/** A best route from the BGP Loc-RIB. */
export interface LearnedRoute {
  prefix: string;
  nextHop: string;
}

export interface PlanInput {
  self: SelfSpec;
  nodes: NodeSpec[];
  pools: PoolSpec[];
  blocks: BlockSpec[];
  learned: LearnedRoute[];
  /** Program learned prefixes outside every pool too (default false: only pool prefixes). */
  externalRoutes?: boolean;
  /** MTU of the uplink (default 1500); see mtu.ts. */
  uplinkMtu?: number;
}

/** A route in the main table. `key()` in plan.ts: family + dst. */
export interface RouteSpec {
  family: Family;
  /** Canonical CIDR, always with its length ("10.0.0.5/32"). */
  dst: string;
  type: 'unicast' | 'blackhole';
  gateway?: string;
  dev?: string;
  onlink?: boolean;
}

/** A permanent neighbour entry (VTEP address → VTEP MAC on the VXLAN device). */
export interface NeighSpec {
  dev: string;
  ip: string;
  mac: string;
}

/** A permanent FDB entry on the VXLAN device (VTEP MAC → remote node address). */
export interface FdbSpec {
  dev: string;
  mac: string;
  dst: string;
}

export interface TunnelDeviceSpec {
  name: string;
  kind: 'ipip' | 'vxlan';
  mtu: number;
  /** The node's tunnel address, put on the device as /32 (/128). */
  address?: string;
  /** VXLAN only. */
  vni?: number;
  port?: number;
  /** VXLAN: local VTEP address (the node address) and the device's MAC. */
  local?: string;
  mac?: string;
  /** Uplink the tunnel is bound to (VXLAN `dev`). */
  uplink?: string;
}

/** Why a block or learned route produced no route (for status and logs). */
export interface Skipped {
  what: string;
  reason: string;
}

export interface DesiredState {
  routes: RouteSpec[];
  neighbours: NeighSpec[];
  fdb: FdbSpec[];
  devices: TunnelDeviceSpec[];
  /** The MTU the CNI plugin gives pod veths (one source of truth, mtu.ts). */
  podMtu: number;
  skipped: Skipped[];
}
