/**
 * STATUS (SPEC 1.1.0): can we service ADD? Petrel's IPAM: the agent answers and has an enabled
 * pool, else code 50 naming the socket. Delegated IPAM: its STATUS.
 */
import { CniCode, CniError } from '../errors.js';
import { requireAtLeast } from '../version.js';
import type { CommandContext } from './context.js';
import { ipamType, isPetrelIpam } from './ipam.js';

export async function cmdStatus(ctx: CommandContext): Promise<void> {
  requireAtLeast(ctx.conf.cniVersion, '1.1.0', 'STATUS');
  if (!isPetrelIpam(ctx)) {
    await ctx.runner.exec(ipamType(ctx), 'STATUS', ctx.stdin, {}, ctx.env.path);
    return;
  }
  try {
    await ctx.ipam().status();
  } catch (err) {
    const e = err instanceof CniError ? `${err.msg}${err.details ? `: ${err.details}` : ''}` : String(err);
    throw new CniError(CniCode.PluginNotAvailable, 'petrel IPAM not available', `${ctx.conf.agentSocket}: ${e}`, {
      cause: err,
    });
  }
}
