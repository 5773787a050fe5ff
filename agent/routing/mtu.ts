/**
 * MTU arithmetic (pure): the uplink MTU minus each encapsulation's overhead gives the tunnel
 * device MTU, and the pod MTU is the smallest among the encapsulations in use (Calico
 * `ConfigureDefaultMTUs` / `determinePodMTU`, calico.md §3.7). The agent hands `podMtu` to the
 * CNI plugin, so the veths and the tunnels never disagree.
 */

/** Bytes each encapsulation adds: IPIP an outer IPv4 header; VXLAN outer IP + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const EncapOverhead = { ipip: 20, vxlan4: 50, vxlan6: 70, none: 0 } as const;
export type Encap = keyof typeof EncapOverhead;

export interface MtuPlan {
  uplinkMtu: number;
  ipipMtu: number;
  vxlanMtu: number;
  vxlan6Mtu: number;
  /** The veth MTU for pods: uplink minus the largest overhead among `encaps` (uplink when none). */
  podMtu: number;
}

/** IPv4 needs at least 68 bytes (RFC 791), IPv6 1280 (RFC 8200); below that the value is refused. */
export const MIN_MTU = 68;

export function planMtu(uplinkMtu: number, encaps: readonly Encap[]): MtuPlan {
  if (!Number.isInteger(uplinkMtu) || uplinkMtu < MIN_MTU + EncapOverhead.vxlan6 || uplinkMtu > 65535) {
    throw new RangeError(`uplink MTU ${uplinkMtu} is not an integer in ${MIN_MTU + EncapOverhead.vxlan6}..65535`);
  }
  const worst = Math.max(0, ...encaps.map((e) => EncapOverhead[e]));
  return {
    uplinkMtu,
    ipipMtu: uplinkMtu - EncapOverhead.ipip,
    vxlanMtu: uplinkMtu - EncapOverhead.vxlan4,
    vxlan6Mtu: uplinkMtu - EncapOverhead.vxlan6,
    podMtu: uplinkMtu - worst,
  };
}
