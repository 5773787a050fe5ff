/** PURE: cluster state + this node -> the route planner's input without the Loc-RIB (agent/routing; the data plane gets the Loc-RIB change by change). */
import type { NodeRecord } from '../node/record.js';
import type { ClusterState, NodeSpec, RoutingSnapshot } from './types.js';

function spec(n: NodeRecord): NodeSpec {
  const s: NodeSpec = { name: n.name };
  if (n.ipv4) s.ipv4 = n.ipv4;
  if (n.ipv6) s.ipv6 = n.ipv6;
  if (n.ipipTunnelAddr) s.ipipTunnelAddr = n.ipipTunnelAddr;
  if (n.vxlanTunnelAddr) s.vxlanTunnelAddr = n.vxlanTunnelAddr;
  if (n.vxlanTunnelAddrV6) s.vxlanTunnelAddrV6 = n.vxlanTunnelAddrV6;
  if (n.vxlanMac) s.vxlanMac = n.vxlanMac;
  return s;
}

/**
 * Other nodes are those with a record and a live lease (a dead node's routes go when its lease
 * expires, as its BGP session does). Blocks: confirmed affinities of every node.
 */
export function routingSnapshot(state: ClusterState, self: string, uplink: string): RoutingSnapshot | undefined {
  const me = state.nodes.find((n) => n.name === self);
  if (!me) return undefined;
  const alive = new Set(state.alive);
  return {
    self: { ...spec(me), uplink },
    nodes: state.nodes.filter((n) => n.name !== self && alive.has(n.name)).map(spec),
    pools: state.pools.map((p) => ({
      cidr: p.cidr,
      ipipMode: p.ipipMode,
      vxlanMode: p.vxlanMode,
      natOutgoing: p.natOutgoing,
      disabled: p.disabled,
    })),
    blocks: state.blocks.filter((b) => b.node === self || alive.has(b.node)),
  };
}
