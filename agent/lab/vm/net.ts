/**
 * Shell: the rig's private network. A network namespace holding a Linux bridge `br0` (STP off,
 * forward delay 0) with the bridge address(es), one tap per guest enslaved to it. Nothing is
 * added to the caller's namespace. Services the guests use (etcd, ...) run inside this namespace
 * on the bridge address. With more than one bridge address the namespace also routes between
 * the subnets (ip_forward on, redirects off): a guest on the second subnet is then "behind a
 * router", as CrossSubnet needs.
 */
import { atExit } from './cleanup.js';
import { hostOk, hostRun, hostRunSync } from './host.js';

export const BRIDGE = 'br0';
/** A bridge made here gets a set MAC: otherwise it takes its lowest port's, changing as taps join. */
const BRIDGE_MAC = '02:76:6d:00:00:01';

export interface RigNetworkOptions {
  /** Use this existing namespace (left in place at destroy; a bridge made here is deleted). */
  netns?: string;
  /** Name for a new namespace (default petrel-vm-PID-N). */
  name?: string;
  /** Bridge address with prefix, e.g. 10.99.0.1/24. */
  bridgeCidr: string;
  /** More bridge addresses (other subnets on the same segment; the namespace routes between them). */
  extraBridgeCidrs?: readonly string[];
}

export interface RigNetwork {
  readonly netns: string;
  readonly bridge: string;
  readonly bridgeCidrs: readonly string[];
  /** Creates tap `name` in the namespace and enslaves it to the bridge. */
  addTap(name: string): Promise<void>;
  delTap(name: string): Promise<void>;
  /** Runs argv inside the namespace (nsenter), resolves with code and output. */
  exec(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Deletes the taps, the bridge (if made here) and the namespace (if made here). Idempotent. */
  destroy(): Promise<void>;
}

let counter = 0;

async function netnsExists(name: string): Promise<boolean> {
  const r = await hostRun('ip', ['netns', 'list']);
  return r.stdout.split('\n').some((l) => l.split(' ')[0] === name);
}

export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

export async function createRigNetwork(o: RigNetworkOptions): Promise<RigNetwork> {
  const cidrs = [o.bridgeCidr, ...(o.extraBridgeCidrs ?? [])];
  let ownNs = false;
  let ownBridge = false;
  let netns: string;
  if (o.netns !== undefined) {
    netns = o.netns;
    if (!(await netnsExists(netns))) {
      await hostOk('ip', ['netns', 'add', netns]);
      ownNs = true;
    }
  } else {
    counter++;
    netns = (o.name ?? `petrel-vm-${process.pid}-${counter}`).slice(0, 40);
    await hostOk('ip', ['netns', 'add', netns]);
    ownNs = true;
  }
  const taps = new Set<string>();
  const cleanSync = () => {
    for (const t of taps) hostRunSync('ip', ['-n', netns, 'link', 'del', t]);
    if (ownBridge) hostRunSync('ip', ['-n', netns, 'link', 'del', BRIDGE]);
    if (ownNs) hostRunSync('ip', ['netns', 'del', netns]);
  };
  const unregister = atExit(cleanSync);
  const ip = (...args: string[]) => hostOk('ip', ['-n', netns, ...args]);
  const exec = (argv: readonly string[]) => hostRun('nsenter', [`--net=${netnsPath(netns)}`, ...argv]);
  try {
    await ip('link', 'set', 'lo', 'up');
    const hasBridge = (await hostRun('ip', ['-n', netns, 'link', 'show', BRIDGE])).code === 0;
    if (!hasBridge) {
      await ip('link', 'add', BRIDGE, 'address', BRIDGE_MAC, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
      ownBridge = true;
    }
    const have = await ip('-o', 'addr', 'show', 'dev', BRIDGE);
    for (const c of cidrs) if (!have.includes(` ${c} `)) await ip('addr', 'add', c, 'dev', BRIDGE);
    await ip('link', 'set', BRIDGE, 'up');
    if (cidrs.length > 1) {
      const sys = [
        'net.ipv4.ip_forward=1',
        'net.ipv4.conf.all.send_redirects=0',
        `net.ipv4.conf.${BRIDGE}.send_redirects=0`,
      ];
      const r = await exec(['sysctl', '-q', '-w', ...sys]);
      if (r.code !== 0) throw new Error(`sysctl in ${netns}: ${r.stderr.trim()}`);
    }
  } catch (err) {
    cleanSync();
    unregister();
    throw err;
  }
  let destroyed = false;
  const delTap = async (name: string) => {
    taps.delete(name);
    await hostRun('ip', ['-n', netns, 'link', 'del', name]);
  };
  return {
    netns,
    bridge: BRIDGE,
    bridgeCidrs: cidrs,
    exec,
    async addTap(name) {
      await hostRun('ip', ['-n', netns, 'link', 'del', name]); // leftover of an interrupted run
      await ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
      taps.add(name);
      await ip('link', 'set', name, 'master', BRIDGE, 'up');
    },
    delTap,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      unregister();
      for (const t of [...taps]) await delTap(t);
      if (ownBridge) await hostRun('ip', ['-n', netns, 'link', 'del', BRIDGE]);
      if (ownNs) await hostRun('ip', ['netns', 'del', netns]);
    },
  };
}
