/**
 * DEL (SPEC "DEL"; containerd behaviour in cni.md §8.2). Must succeed when things are already
 * gone: missing netns, missing interface, empty CNI_NETNS, no prevResult, addresses already
 * released. Depends only on (network name, CNI_CONTAINERID, CNI_IFNAME): the veth is found in the
 * netns or by its deterministic host name, the addresses by handle. Both halves are attempted;
 * the first error (e.g. the agent unreachable: code 11, so the runtime retries) is reported. Both
 * halves run concurrently: removing a veth waits for the kernel (~30 ms), the agent for etcd.
 */
import { hostVethName, vethAlias } from '../names.js';
import { removeVeth } from '../veth.js';
import type { CommandContext } from './context.js';
import { releaseAll } from './ipam.js';

export async function cmdDel(ctx: CommandContext): Promise<void> {
  const { env, netns, log } = ctx;
  // The halves are independent (the veth by name, the addresses by handle): they run at once.
  const [veth, addrs] = await Promise.allSettled([
    removeVeth(netns, {
      netns: env.netns,
      ifName: env.ifName,
      hostVeth: hostVethName(env),
      alias: vethAlias(env.containerId, env.ifName),
    }),
    releaseAll(ctx),
  ]);
  if (veth.status === 'rejected') log.warn({ err: veth.reason }, 'DEL: removing the veth failed');
  if (addrs.status === 'rejected') log.warn({ err: addrs.reason }, 'DEL: releasing addresses failed');
  // The veth's error first, as before the halves ran concurrently.
  if (veth.status === 'rejected') throw veth.reason;
  if (addrs.status === 'rejected') throw addrs.reason;
  log.info('pod network deleted');
}
