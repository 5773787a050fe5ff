/**
 * The desired state the agent derives from etcd (agent/sync) and the snapshot it hands to the
 * route planner (agent/routing, the same shape as its PlanInput: self, nodes, pools, blocks,
 * learned). Plain data.
 */
import type { Pool } from '../../ipam-etcd/index.js';
import type { BgpClusterConfig, BgpPeerRecord, NodeRecord } from '../node/record.js';
import type { NodeSpec, PoolSpec, SelfSpec } from '../routing/types.js';

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

/** Nodes and pools as the planner needs them: agent/routing's types, one definition. */
export type { NodeSpec, PoolSpec, SelfSpec } from '../routing/types.js';

/** The planner's input (agent/routing PlanInput without its tuning fields). */
export interface RoutingSnapshot {
  self: SelfSpec;
  nodes: NodeSpec[];
  pools: PoolSpec[];
  blocks: { cidr: string; node: string }[];
  /**
   * The Loc-RIB's best routes. When present it replaces the data plane's learned table (tests,
   * one-shot callers); the agent leaves it out and feeds the table change by change
   * (Dataplane.changeLearned), so a streaming table costs O(changes), not O(table) per snapshot.
   */
  learned?: { prefix: string; nextHop: string }[];
}
