/**
 * DEL (SPEC "DEL"; containerd behaviour in cni.md §8.2). Must succeed when things are already
 * gone: missing netns, missing interface, empty CNI_NETNS, no prevResult, addresses already
 * released. Depends only on (network name, CNI_CONTAINERID, CNI_IFNAME): the veth is found in the
 * netns or by its deterministic host name, the addresses by handle. Both halves are attempted;
 * the first error (e.g. the agent unreachable: code 11, so the runtime retries) is reported.
 */
import { hostVethName, vethAlias } from '../names.js';
import { removeVeth } from '../veth.js';
import type { CommandContext } from './context.js';
import { releaseAll } from './ipam.js';

export async function cmdDel(ctx: CommandContext): Promise<void> {
  const { env, netns, log } = ctx;
  let firstErr: unknown;
  try {
    await removeVeth(netns, {
      netns: env.netns,
      ifName: env.ifName,
      hostVeth: hostVethName(env),
      alias: vethAlias(env.containerId, env.ifName),
    });
  } catch (err) {
    log.warn({ err }, 'DEL: removing the veth failed');
    firstErr = err;
  }
  try {
    await releaseAll(ctx);
  } catch (err) {
    log.warn({ err }, 'DEL: releasing addresses failed');
    firstErr ??= err;
  }
  if (firstErr !== undefined) throw firstErr;
  log.info('pod network deleted');
}
