/**
 * ADD (SPEC "ADD"): addresses first (the agent, or the delegated IPAM), then the veth, addresses
 * and routes. Any failure after the addresses were taken rolls back explicitly: the host veth
 * (which takes the pod end and its routes with it) and the addresses (STYLE §4).
 *
 * A repeated ADD for the same container and interface gets the same addresses (the agent's assign
 * is idempotent per handle) and rebuilds the veth: the deterministic host name finds the old
 * pair, deleting it removes the pod end too, and the new pair takes its place. If CNI_IFNAME
 * still exists in the netns after that, it is not ours and ADD fails (SPEC 1.0.0).
 */
import { CniCode, CniError } from '../errors.js';
import { GATEWAY_V4, GATEWAY_V6, HOST_VETH_MAC, hostVethName, podMac, vethAlias } from '../names.js';
import { resultDns } from '../netconf.js';
import { IpError } from '../netns.js';
import { mark } from '../trace.js';
import type { CniResult } from '../types.js';
import { destroyVeth, type PodAddress, SetupError, setupVeth, type VethPlan } from '../veth.js';
import type { CommandContext } from './context.js';
import { acquire, encapOverhead } from './ipam.js';

export const DEFAULT_HOST_MTU = 1500;

/** The veth MTU: configured, else the detected host MTU minus the pools' encapsulation overhead. */
export function vethMtu(configured: number | undefined, hostMtu: number | undefined, overhead: number): number {
  if (configured !== undefined) return configured;
  return Math.max(68, (hostMtu ?? DEFAULT_HOST_MTU) - overhead);
}

/**
 * The veth MTU, in order: the config's `mtu`; the agent's planned pod MTU (one source of truth
 * with the tunnel devices); the detected host MTU minus the pools' encapsulation overhead.
 */
export function podMtu(
  configured: number | undefined,
  assignments: readonly { podMtu?: number; ipipMode: string; vxlanMode: string; family: 4 | 6 }[],
  hostMtu: () => number | undefined,
): number {
  if (configured !== undefined) return configured;
  const agent = assignments.find((a) => a.podMtu !== undefined)?.podMtu;
  if (agent !== undefined && agent >= 68) return agent;
  return vethMtu(undefined, hostMtu(), encapOverhead(assignments as Parameters<typeof encapOverhead>[0]));
}

/**
 * The ADD result: [host veth, pod interface] appended to a previous plugin's result (SPEC: a
 * chained plugin outputs prevResult, possibly modified), every address pointing at the pod
 * interface, the default routes via the gateways, DNS from the config.
 */
export function buildResult(ctx: Pick<CommandContext, 'env' | 'conf'>, plan: VethPlan): CniResult {
  const prev = ctx.conf.prevResult ?? {};
  const base = prev.interfaces?.length ?? 0;
  const withMtu = (o: { name: string; mac: string; sandbox?: string }) => ({ ...o, mtu: plan.mtu });
  const interfaces = [
    ...(prev.interfaces ?? []),
    withMtu({ name: plan.hostVeth, mac: HOST_VETH_MAC }),
    withMtu({ name: plan.ifName, mac: plan.podMac, sandbox: plan.netns }),
  ];
  const ips = [
    ...(prev.ips ?? []),
    ...plan.addresses.map((a) => ({
      address: `${a.ip}/${a.family === 4 ? 32 : 128}`,
      gateway: a.family === 4 ? GATEWAY_V4 : GATEWAY_V6,
      interface: base + 1,
    })),
  ];
  const routes = [...(prev.routes ?? [])];
  if (plan.addresses.some((a) => a.family === 4)) routes.push({ dst: '0.0.0.0/0', gw: GATEWAY_V4 });
  if (plan.addresses.some((a) => a.family === 6)) routes.push({ dst: '::/0', gw: GATEWAY_V6 });
  const dns = { ...(prev.dns ?? {}), ...resultDns(ctx.conf) };
  return { interfaces, ips, routes, dns };
}

/** The kernel's refusal, as a CNI error a person can act on. */
function setupFailure(err: unknown, plan: VethPlan): CniError {
  if (err instanceof CniError) return err;
  const cause = err instanceof SetupError ? err.cause : err;
  const step = err instanceof SetupError ? err.step : 'setup';
  if (cause instanceof IpError) {
    if (cause.kind === 'timeout') {
      return new CniError(CniCode.PluginTimeout, `pod network setup timed out (${step})`, cause.stderr, { cause });
    }
    if (step === 'create' && cause.kind === 'exists') {
      return new CniError(
        CniCode.Internal,
        `interface ${plan.ifName} already exists in ${plan.netns} (or ${plan.hostVeth} on the node)`,
        cause.stderr.trim(),
        { cause },
      );
    }
    if (cause.kind === 'netns-missing') {
      return new CniError(CniCode.InvalidEnvironment, 'invalid environment variable CNI_NETNS', plan.netns, { cause });
    }
    return new CniError(
      CniCode.Internal,
      `pod network setup failed (${step}): ip ${cause.command}`,
      cause.stderr.trim(),
      {
        cause,
      },
    );
  }
  const e = cause as NodeJS.ErrnoException | undefined;
  if (e?.code && step === 'sysctl') {
    return new CniError(CniCode.IoFailure, 'cannot write host sysctl', e.message, { cause });
  }
  return new CniError(CniCode.Internal, `pod network setup failed (${step})`, (cause as Error)?.message ?? '', {
    cause,
  });
}

export async function cmdAdd(ctx: CommandContext): Promise<CniResult> {
  const { env, conf, netns, log } = ctx;
  if (!netns.netnsExists(env.netns)) {
    throw new CniError(
      CniCode.InvalidEnvironment,
      'invalid environment variable CNI_NETNS',
      `${env.netns} does not exist`,
    );
  }
  // The `ip -batch` processes start while the agent assigns the addresses (their start-up is then
  // off the critical path), just after the request went out: their spawns are synchronous, and
  // before the write they would delay the request itself. If ADD fails before using them,
  // dispatch ends them.
  const lease = await acquire(ctx, () => {
    mark('prepare');
    netns.prepare?.(env.netns);
  });
  mark('assigned');
  const addresses: PodAddress[] = lease.addresses;
  const plan: VethPlan = {
    containerId: env.containerId,
    netns: env.netns,
    ifName: env.ifName,
    hostVeth: hostVethName(env),
    podMac: podMac(env.containerId, env.ifName),
    alias: vethAlias(env.containerId, env.ifName),
    mtu: podMtu(conf.mtu, lease.assignments, () => netns.hostMtu()),
    addresses,
  };
  try {
    await setupVeth(netns, plan);
  } catch (err) {
    const cniErr = setupFailure(err, plan);
    log.warn({ err, hostVeth: plan.hostVeth }, 'ADD failed; rolling back');
    await destroyVeth(netns, plan.hostVeth).catch((e: unknown) => log.warn({ err: e }, 'rollback: veth delete failed'));
    await lease.release().catch((e: unknown) => log.warn({ err: e }, 'rollback: address release failed'));
    throw cniErr;
  }
  log.info({ ips: addresses.map((a) => a.ip), hostVeth: plan.hostVeth, mtu: plan.mtu }, 'pod network added');
  return buildResult(ctx, plan);
}
