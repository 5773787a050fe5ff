/**
 * Deterministic names (Calico VethNameForWorkload, calico.md §2.5): the host veth name is derived
 * from `<namespace>.<pod>` when the runtime says which pod this is, so a retried ADD or a new
 * sandbox of the same pod finds and replaces a stale veth, and from the container ID otherwise.
 * A second interface of the same pod (CNI_IFNAME other than eth0) hashes the interface name too.
 */
import { sha1 } from './runtime.js';
import type { CniEnv } from './types.js';

/** Host veth prefix; 4 + 11 hex = 15 characters (IFNAMSIZ - 1). */
export const HOST_VETH_PREFIX = 'petr';
/** The host end's MAC (Calico): the pod's neighbour entry for 169.254.1.1 always resolves to it. */
export const HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee';
/** The pod's IPv4 gateway: nobody owns it; the host veth answers ARP for it (proxy_arp). */
export const GATEWAY_V4 = '169.254.1.1';
/** The pod's IPv6 gateway: the host veth's EUI-64 link-local address, derived from HOST_VETH_MAC. */
export const GATEWAY_V6 = 'fe80::ecee:eeff:feee:eeee';

function sha1Hex(s: string): string {
  return Array.from(sha1(s), (x) => x.toString(16).padStart(2, '0')).join('');
}

export function hostVethName(env: Pick<CniEnv, 'containerId' | 'ifName' | 'args'>): string {
  const { podNamespace, podName } = env.args;
  let key = podNamespace && podName ? `${podNamespace}.${podName}` : env.containerId;
  if (env.ifName !== 'eth0') key += `.${env.ifName}`;
  return HOST_VETH_PREFIX + sha1Hex(key).slice(0, 11);
}

/** A stable, locally administered unicast MAC for the pod end (no randomness to inject). */
export function podMac(containerId: string, ifName: string): string {
  const h = sha1(`${containerId}/${ifName}`);
  const b = [...h.subarray(0, 6)];
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Written as the host veth's ifalias: lets DEL (without a netns) prove the veth is this container's. */
export function vethAlias(containerId: string, ifName: string): string {
  return `petrel:${containerId}:${ifName}`;
}

/** IPAM handle of the petrel plugin (Calico: `<network name>.<container ID>`). */
export function pluginHandle(network: string, containerId: string): string {
  return `${network}.${containerId}`;
}

/** IPAM handle of the standalone petrel-ipam plugin: network, container and interface. */
export function ipamPluginHandle(network: string, containerId: string, ifName: string): string {
  return `${network}.${containerId}.${ifName}`;
}
