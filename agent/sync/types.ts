/**
 * The desired state the agent derives from etcd (agent/sync) and the snapshot it hands to the
 * route planner (agent/routing, the same shape as its PlanInput: self, nodes, pools, blocks,
 * learned). Plain data.
 */
import type { EncapMode, Pool } from '../../ipam-etcd/index.js';
import type { BgpClusterConfig, BgpPeerRecord, NodeRecord } from '../node/record.js';

/** Everything the agent reads from etcd, as of one etcd revision. */
export interface ClusterState {
  /** etcd revision the state reflects ("0" before the first read). */
  revision: string;
  nodes: NodeRecord[];
  /** Names of nodes whose liveness key (bound to their lease) exists. */
  alive: string[];
  pools: Pool[];
  /** Confirmed affinities: block affine to node (the block record agrees). */
  blocks: { cidr: string; node: string }[];
  /** Per node: addresses it holds inside blocks affine to another node (borrowed: advertised as /32, /128). */
  borrowed: Record<string, string[]>;
  bgp: BgpClusterConfig;
  peers: BgpPeerRecord[];
}

/** A node as the planner needs it (agent/routing NodeSpec). */
export interface NodeSpec {
  name: string;
  ipv4?: string;
  ipv6?: string;
  uplink?: string;
  ipipTunnelAddr?: string;
  vxlanTunnelAddr?: string;
  vxlanTunnelAddrV6?: string;
  vxlanMac?: string;
}

export interface PoolSpec {
  cidr: string;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  disabled: boolean;
}

/** The planner's input (agent/routing PlanInput without its tuning fields). */
export interface RoutingSnapshot {
  self: NodeSpec & { uplink: string };
  nodes: NodeSpec[];
  pools: PoolSpec[];
  blocks: { cidr: string; node: string }[];
  learned: { prefix: string; nextHop: string }[];
}
