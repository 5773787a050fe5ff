/**
 * CHECK (SPEC 0.4.0+): verify the interface, addresses and routes recorded in prevResult against
 * the kernel, and the allocation against IPAM. Unknown container (no netns, or IPAM holds nothing
 * for it) is code 3; a difference is code 101 listing every problem found.
 */
import { CniCode, CniError } from '../errors.js';
import { ipFamily, stripPrefix } from '../ip.js';
import { GATEWAY_V4, GATEWAY_V6, hostVethName, pluginHandle } from '../names.js';
import { requireAtLeast } from '../version.js';
import { checkVeth, type PodAddress } from '../veth.js';
import type { CommandContext } from './context.js';
import { ipamType, isPetrelIpam } from './ipam.js';

export async function cmdCheck(ctx: CommandContext): Promise<void> {
  const { env, conf, netns } = ctx;
  requireAtLeast(conf.cniVersion, '0.4.0', 'CHECK');
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CniCode.InvalidNetworkConfig, 'CHECK needs prevResult', 'required prevResult missing');
  if (!netns.netnsExists(env.netns)) {
    throw new CniError(CniCode.UnknownContainer, 'unknown container', `netns ${env.netns} does not exist`);
  }
  const handle = pluginHandle(conf.name, env.containerId);
  let held: string[] | undefined;
  if (isPetrelIpam(ctx)) {
    held = (await ctx.ipam().get(handle)).map((a) => a.ip);
    if (held.length === 0)
      throw new CniError(CniCode.UnknownContainer, 'unknown container', `IPAM holds nothing for ${handle}`);
  } else {
    await ctx.runner.exec(ipamType(ctx), 'CHECK', ctx.stdin, {}, env.path);
  }
  const idx = (prev.interfaces ?? []).findIndex((i) => i.name === env.ifName && i.sandbox === env.netns);
  if (idx < 0) {
    throw new CniError(
      CniCode.CheckFailed,
      'CHECK failed',
      `prevResult has no interface ${env.ifName} in ${env.netns}`,
    );
  }
  const addresses: PodAddress[] = [];
  for (const ip of prev.ips ?? []) {
    if (ip.interface !== idx) continue;
    const bare = stripPrefix(ip.address);
    const family = ipFamily(bare);
    if (family) addresses.push({ ip: bare, family });
  }
  const problems: string[] = [];
  if (held) {
    for (const a of addresses) if (!held.includes(a.ip)) problems.push(`${a.ip} is not allocated to ${handle}`);
  }
  // Only our routes: chained plugins after us may change others (SPEC CHECK).
  const ours = (prev.routes ?? []).filter((r) => r.gw === GATEWAY_V4 || r.gw === GATEWAY_V6);
  const podMacAddr = prev.interfaces?.[idx]?.mac;
  const found = await checkVeth(
    netns,
    {
      netns: env.netns,
      ifName: env.ifName,
      hostVeth: hostVethName(env),
      addresses,
      ...(podMacAddr ? { podMac: podMacAddr } : {}),
    },
    ours.map((r) => (r.gw ? { dst: r.dst, gw: r.gw } : { dst: r.dst })),
  );
  problems.push(...found.map((p) => p.what));
  if (problems.length > 0) throw new CniError(CniCode.CheckFailed, 'CHECK failed', problems.join('; '));
}
