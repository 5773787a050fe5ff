/**
 * GC (SPEC 1.1.0): release the addresses of this network's attachments on this node that are not
 * in `cni.dev/valid-attachments`. Host veths need no sweep: the kernel deletes a pair when its
 * pod netns goes away. Delegated IPAM gets the GC forwarded.
 */
import { CniCode, CniError } from '../errors.js';
import { pluginHandle } from '../names.js';
import { requireAtLeast } from '../version.js';
import type { CommandContext } from './context.js';
import { ipamType, isPetrelIpam } from './ipam.js';

export async function cmdGc(ctx: CommandContext): Promise<void> {
  requireAtLeast(ctx.conf.cniVersion, '1.1.0', 'GC');
  if (!isPetrelIpam(ctx)) {
    await ctx.runner.exec(ipamType(ctx), 'GC', ctx.stdin, {}, ctx.env.path);
    return;
  }
  const valid = ctx.conf.validAttachments;
  if (!valid) throw new CniError(CniCode.InvalidNetworkConfig, 'GC needs cni.dev/valid-attachments');
  const keep = valid.map((a) => pluginHandle(ctx.conf.name, a.containerID));
  const released = await ctx.ipam().gc(`${ctx.conf.name}.`, keep);
  ctx.log.info({ released }, 'gc done');
}
