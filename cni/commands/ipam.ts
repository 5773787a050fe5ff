/**
 * Address management for the petrel plugin: Petrel's IPAM through the agent when `ipam.type` is
 * petrel-ipam (no second process), any other IPAM type delegated through CNI_PATH (SPEC).
 */
import type { WireAssignment } from '../../agent/ipam-service/protocol.js';
import { CniCode, CniError } from '../errors.js';
import { ipFamily, stripPrefix } from '../ip.js';
import { pluginHandle } from '../names.js';
import { PETREL_IPAM_TYPE, parsePrevResult } from '../netconf.js';
import type { PodAddress } from '../veth.js';
import type { CommandContext } from './context.js';

export interface Lease {
  addresses: PodAddress[];
  /** Pool facts per address when Petrel's IPAM assigned them (MTU overhead). */
  assignments: WireAssignment[];
  release(): Promise<void>;
}

export function ipamType(ctx: Pick<CommandContext, 'conf'>): string {
  return ctx.conf.ipam?.type ?? PETREL_IPAM_TYPE;
}

export function isPetrelIpam(ctx: Pick<CommandContext, 'conf'>): boolean {
  return ipamType(ctx) === PETREL_IPAM_TYPE;
}

/** Owner attributes recorded with the allocation (from CNI_ARGS, any order). */
export function ownerAttrs(ctx: Pick<CommandContext, 'env'>): Record<string, string> {
  const a = ctx.env.args;
  const out: Record<string, string> = { containerId: ctx.env.containerId, ifName: ctx.env.ifName };
  if (a.podNamespace) out.namespace = a.podNamespace;
  if (a.podName) out.pod = a.podName;
  if (a.infraContainerId) out.infraContainerId = a.infraContainerId;
  if (a.podUid) out.podUid = a.podUid;
  return out;
}

/** Static requests: runtimeConfig `ips`, `args.cni.ips`, CNI_ARGS `IP=`. */
export function staticIps(ctx: Pick<CommandContext, 'env' | 'conf'>): string[] {
  const out = [...ctx.conf.staticIps];
  if (ctx.env.args.ip) {
    for (const s of ctx.env.args.ip.split(',')) {
      const ip = stripPrefix(s.trim());
      if (ipFamily(ip) === undefined) {
        throw new CniError(CniCode.InvalidEnvironment, 'invalid environment variable CNI_ARGS', `IP=${s}`);
      }
      out.push(ip);
    }
  }
  return [...new Set(out)];
}

/**
 * The addresses for ADD. `onSent` runs once the request is on its way (written to the agent, or
 * the delegate started), not before: ADD starts its `ip` processes there, and their start-up
 * (synchronous spawns) must not delay the request itself. It does not run if the request failed first.
 */
export async function acquire(ctx: CommandContext, onSent?: () => void): Promise<Lease> {
  const handle = pluginHandle(ctx.conf.name, ctx.env.containerId);
  if (isPetrelIpam(ctx)) {
    const client = ctx.ipam();
    const ipam = ctx.conf.ipam;
    const ips = staticIps(ctx);
    const req: Parameters<typeof client.assign>[0] = {
      handle,
      num4: ipam?.assignIpv4 === false ? 0 : 1,
      num6: ipam?.assignIpv6 ? 1 : 0,
      attrs: ownerAttrs(ctx),
    };
    if (ipam?.pools) req.pools = ipam.pools;
    if (ips.length > 0) req.ips = ips;
    const assignments = await client.assign(req, onSent);
    if (assignments.length === 0) throw new CniError(CniCode.Internal, 'petrel-agent assigned no address');
    return {
      addresses: assignments.map((a) => ({ ip: a.ip, family: a.family })),
      assignments,
      release: async () => {
        await client.release(handle);
      },
    };
  }
  const type = ipamType(ctx);
  const release = async () => {
    await ctx.runner.exec(type, 'DEL', ctx.stdin, {}, ctx.env.path);
  };
  let raw: unknown;
  try {
    const answer = ctx.runner.exec(type, 'ADD', ctx.stdin, {}, ctx.env.path);
    onSent?.();
    raw = await answer;
  } catch (err) {
    // A delegate killed at its deadline may have taken an address before it hung: its DEL (with
    // its own deadline) gives it back. A delegate that answered with an error cleaned up itself.
    if (err instanceof CniError && err.code === CniCode.PluginTimeout) {
      await release().catch((e: unknown) => ctx.log.warn({ err: e }, 'delegated IPAM rollback failed'));
    }
    throw err;
  }
  try {
    const res = parsePrevResult(raw);
    const addresses: PodAddress[] = [];
    for (const ip of res.ips ?? []) {
      const bare = stripPrefix(ip.address);
      const family = ipFamily(bare);
      if (family === undefined)
        throw new CniError(CniCode.DecodingFailure, `${type} returned a bad address`, ip.address);
      addresses.push({ ip: bare, family });
    }
    if (addresses.length === 0) throw new CniError(CniCode.Internal, `IPAM plugin ${type} returned no address`);
    return { addresses, assignments: [], release };
  } catch (err) {
    await release().catch((e: unknown) => ctx.log.warn({ err: e }, 'delegated IPAM rollback failed'));
    throw err;
  }
}

/** DEL's half: release by handle (Petrel) or run the delegate's DEL. */
export async function releaseAll(ctx: CommandContext): Promise<void> {
  if (isPetrelIpam(ctx)) {
    const released = await ctx.ipam().release(pluginHandle(ctx.conf.name, ctx.env.containerId));
    if (released.length > 0) ctx.log.info({ ips: released }, 'released addresses');
    return;
  }
  await ctx.runner.exec(ipamType(ctx), 'DEL', ctx.stdin, {}, ctx.env.path);
}

/**
 * Encapsulation overhead of the pools the addresses came from: VXLAN 50 bytes (70 over IPv6),
 * IPIP 20, none 0; the largest applies (one MTU per veth).
 */
export function encapOverhead(assignments: WireAssignment[]): number {
  let max = 0;
  for (const a of assignments) {
    if (a.vxlanMode !== 'Never') max = Math.max(max, a.family === 6 ? 70 : 50);
    else if (a.ipipMode !== 'Never') max = Math.max(max, 20);
  }
  return max;
}
