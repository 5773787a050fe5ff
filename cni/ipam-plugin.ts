/**
 * petrel-ipam: Petrel's IPAM as a spec IPAM plugin (SPEC "IP Address Management"), so that other
 * main plugins (the reference ptp and bridge) can take addresses from Petrel's pools. It asks the
 * agent like the petrel plugin does. The handle is `<network>.<containerID>.<ifname>`.
 *
 * The result gives each address with its pool's prefix length and the node's gateway address in
 * that pool (the agent's, held under `petrel-gateway.<node>`, so no pod gets it), plus a default route: ptp (and bridge) need an
 * on-subnet gateway, which they put on the host side. DEL releases by handle; CHECK verifies the
 * handle still holds what prevResult lists.
 */

import type { CommandContext } from './commands/context.js';
import { ownerAttrs, staticIps } from './commands/ipam.js';
import type { PluginCommands } from './dispatch.js';
import { CniCode, CniError } from './errors.js';
import { stripPrefix } from './ip.js';
import { ipamPluginHandle } from './names.js';
import { resultDns } from './netconf.js';
import type { CniResult } from './types.js';
import { requireAtLeast } from './version.js';

const handleOf = (ctx: CommandContext) => ipamPluginHandle(ctx.conf.name, ctx.env.containerId, ctx.env.ifName);

async function add(ctx: CommandContext): Promise<CniResult> {
  const ipam = ctx.conf.ipam;
  const ips = staticIps(ctx);
  const req: Parameters<ReturnType<CommandContext['ipam']>['assign']>[0] = {
    handle: handleOf(ctx),
    num4: ipam?.assignIpv4 === false ? 0 : 1,
    num6: ipam?.assignIpv6 ? 1 : 0,
    attrs: ownerAttrs(ctx),
  };
  if (ipam?.pools) req.pools = ipam.pools;
  if (ips.length > 0) req.ips = ips;
  const got = await ctx.ipam().assign({ ...req, gateways: true });
  const result: CniResult = {
    ips: got.map((a) => {
      const len = a.poolCidr?.split('/')[1] ?? (a.family === 4 ? '32' : '128');
      return a.gateway ? { address: `${a.ip}/${len}`, gateway: a.gateway } : { address: `${a.ip}/${len}` };
    }),
    routes: [
      ...(got.some((a) => a.family === 4) ? [{ dst: '0.0.0.0/0' }] : []),
      ...(got.some((a) => a.family === 6) ? [{ dst: '::/0' }] : []),
    ],
    dns: resultDns(ctx.conf),
  };
  ctx.log.info({ ips: got.map((a) => a.ip) }, 'assigned');
  return result;
}

async function del(ctx: CommandContext): Promise<void> {
  const released = await ctx.ipam().release(handleOf(ctx));
  if (released.length > 0) ctx.log.info({ ips: released }, 'released');
}

async function check(ctx: CommandContext): Promise<void> {
  requireAtLeast(ctx.conf.cniVersion, '0.4.0', 'CHECK');
  const handle = handleOf(ctx);
  const held = (await ctx.ipam().get(handle)).map((a) => a.ip);
  if (held.length === 0)
    throw new CniError(CniCode.UnknownContainer, 'unknown container', `IPAM holds nothing for ${handle}`);
  // prevResult is the whole chain's result: what we hold must be what it reports.
  const reported = (ctx.conf.prevResult?.ips ?? []).map((i) => stripPrefix(i.address));
  const missing = ctx.conf.prevResult ? held.filter((ip) => !reported.includes(ip)) : [];
  if (missing.length > 0) {
    throw new CniError(
      CniCode.CheckFailed,
      'CHECK failed',
      `${missing.join(', ')} held by ${handle} but not in prevResult`,
    );
  }
}

async function status(ctx: CommandContext): Promise<void> {
  requireAtLeast(ctx.conf.cniVersion, '1.1.0', 'STATUS');
  try {
    await ctx.ipam().status();
  } catch (err) {
    const e = err instanceof CniError ? `${err.msg}${err.details ? `: ${err.details}` : ''}` : String(err);
    throw new CniError(CniCode.PluginNotAvailable, 'petrel IPAM not available', `${ctx.conf.agentSocket}: ${e}`);
  }
}

async function gc(ctx: CommandContext): Promise<void> {
  requireAtLeast(ctx.conf.cniVersion, '1.1.0', 'GC');
  const valid = ctx.conf.validAttachments;
  if (!valid) throw new CniError(CniCode.InvalidNetworkConfig, 'GC needs cni.dev/valid-attachments');
  const keep = valid.map((a) => ipamPluginHandle(ctx.conf.name, a.containerID, a.ifname));
  await ctx.ipam().gc(`${ctx.conf.name}.`, keep);
}

export const ipamPluginCommands: PluginCommands = {
  component: 'cni-ipam',
  ADD: add,
  DEL: del,
  CHECK: check,
  STATUS: status,
  GC: gc,
};
