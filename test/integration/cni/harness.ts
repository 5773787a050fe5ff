/**
 * A one-node Petrel world for CNI tests: a netns standing for the node, etcd and petrel-agent
 * inside it, a pool created with petrelctl, pod namespaces, and a runner that executes the plugin
 * binaries inside the node netns like a runtime would. Uses the single executables from
 * `npm run package` (dist-sea/) when present, else the bundles in bin/ (PETREL_CNI_BIN_DIR
 * overrides).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN_DIR, pluginDir, REF_PLUGINS } from '../../helpers/bins.js';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { createNetns, type ExecResult, type Netns, vethBetween } from '../../helpers/netns.js';
import { type Daemon, waitFor } from '../../helpers/process.js';

export { BIN_DIR, PETREL_BINS, pluginDir, REF_PLUGINS, SEA_DIR } from '../../helpers/bins.js';

/** The node netns's own address (on its dummy uplink). */
export const NODE_IP = '192.168.77.1';
/** The outside namespace's address: a client that reaches the node over its uplink. */
export const EXT_IP = '192.168.77.254';

export interface CniCall {
  command: string;
  containerId?: string;
  netns?: string;
  ifName?: string;
  args?: string;
  path?: string;
  /** Extra environment. */
  env?: Record<string, string>;
}

export interface CniReply extends ExecResult {
  json: Record<string, unknown> | undefined;
}

export interface PoolSpec {
  name: string;
  cidr: string;
  blockSize?: number;
  ipipMode?: string;
  vxlanMode?: string;
}

export interface World {
  node: Netns;
  /** Outside the node: a client namespace on the node's uplink. */
  ext: Netns;
  etcd: EtcdHandle;
  agent: Daemon;
  socket: string;
  /**
   * The pool plain petrelConf() allocates from when the world has several pools: the agent claims
   * tunnel addresses in VXLAN/IPIP pools, so an unrestricted pod may land in any affine block.
   */
  defaultPools?: string[];
  tmp: string;
  /** Runs `binary` (a path) inside the node netns with the CNI environment and stdin. */
  exec(binary: string, call: CniCall, stdin: unknown): Promise<CniReply>;
  /** Runs our plugin (`petrel` / `petrel-ipam`) or a reference plugin by name. */
  cni(plugin: string, call: CniCall, stdin: unknown): Promise<CniReply>;
  petrelctl(...args: string[]): Promise<ExecResult>;
  /** A new pod namespace (deleted by destroy()). */
  pod(tag?: string): Promise<Netns>;
  stopAgent(): Promise<void>;
  startAgent(): Promise<void>;
  destroy(): Promise<void>;
}

export interface WorldOptions {
  /** More petrel-agent arguments (e.g. --kubeconfig). */
  agentArgs?: string[];
  /** Runs once the node namespace exists, before the agent starts; its result runs at destroy(). */
  beforeAgent?: (node: Netns) => Promise<() => Promise<void>>;
}

export async function startWorld(
  pools: PoolSpec[] = [{ name: 'default', cidr: '10.123.0.0/16' }],
  opts: WorldOptions = {},
): Promise<World> {
  const tmp = mkdtempSync(join(tmpdir(), 'petrel-cni-'));
  const node = await createNetns('node');
  const pods: Netns[] = [];
  let ext: Netns | undefined;
  let etcd: EtcdHandle | undefined;
  let agent: Daemon | undefined;
  let undoBefore: (() => Promise<void>) | undefined;
  const socket = join(tmp, 'agent.sock');
  const destroy = async () => {
    await agent?.stop();
    await undoBefore?.();
    await etcd?.destroy();
    for (const p of pods) await p.delete();
    await ext?.delete();
    await node.delete();
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    // The node's uplink to an "outside" namespace, with an address and a default route like a
    // real node. (Proxy ARP for the pods' gateway 169.254.1.1 answers only for what the node can
    // route, so a node without any route would leave pods without a next hop.)
    ext = await createNetns('ext');
    await vethBetween(node, ext, { aName: 'uplink0', bName: 'ext0', aAddr: `${NODE_IP}/24`, bAddr: `${EXT_IP}/24` });
    await node.ip('route', 'add', 'default', 'via', EXT_IP);
    await ext.ip('route', 'add', pools[0]?.cidr ?? '10.123.0.0/16', 'via', NODE_IP);
    await node.sysctl('net.ipv4.conf.uplink0.forwarding', '1');
    etcd = await startEtcd({ netns: node.name });
    const e = etcd;
    const petrelctl = (...args: string[]) =>
      node.exec(join(BIN_DIR, 'petrelctl'), ['--etcd-endpoints', e.endpoint, ...args]);
    for (const p of pools) {
      const args = ['ipam', 'pool', 'add', p.name, '--cidr', p.cidr];
      if (p.blockSize) args.push('--block-size', String(p.blockSize));
      if (p.ipipMode) args.push('--ipip-mode', p.ipipMode);
      if (p.vxlanMode) args.push('--vxlan-mode', p.vxlanMode);
      const r = await petrelctl(...args);
      if (r.code !== 0) throw new Error(`pool add failed: ${r.stderr}`);
    }
    const startAgent = async () => {
      agent = node.spawn(process.execPath, [
        join(BIN_DIR, 'petrel-agent'),
        '--node-name',
        'node-1',
        '--etcd-endpoints',
        e.endpoint,
        '--socket',
        socket,
        '--ip',
        `${NODE_IP}/24`,
        '--log-level',
        'warn',
        ...(opts.agentArgs ?? []),
      ]);
      const a = agent;
      await waitFor('agent socket', () => {
        if (a.exited()) throw new Error(`agent exited: ${a.output()}`);
        return existsSync(socket);
      });
    };
    if (opts.beforeAgent) undoBefore = await opts.beforeAgent(node);
    await startAgent();
    const exec = async (binary: string, call: CniCall, stdin: unknown): Promise<CniReply> => {
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: call.command,
        CNI_CONTAINERID: call.containerId ?? '',
        CNI_NETNS: call.netns ?? '',
        CNI_IFNAME: call.ifName ?? 'eth0',
        CNI_ARGS: call.args ?? '',
        CNI_PATH: call.path ?? `${pluginDir()}:${REF_PLUGINS}`,
        ...(call.env ?? {}),
      };
      const r = await node.exec(binary, [], {
        input: typeof stdin === 'string' ? stdin : JSON.stringify(stdin),
        env,
        timeoutMs: 60_000,
      });
      let json: Record<string, unknown> | undefined;
      try {
        json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      return { ...r, json };
    };
    return {
      node,
      ext,
      get agent() {
        return agent as Daemon;
      },
      etcd,
      socket,
      ...(pools.length > 1 && pools[0] ? { defaultPools: [pools[0].name] } : {}),
      tmp,
      exec,
      cni: (plugin, call, stdin) =>
        exec(plugin.startsWith('petrel') ? join(pluginDir(), plugin) : join(REF_PLUGINS, plugin), call, stdin),
      petrelctl,
      pod: async (tag = 'pod') => {
        const p = await createNetns(tag);
        pods.push(p);
        return p;
      },
      stopAgent: async () => {
        await agent?.stop();
      },
      startAgent,
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

/** A network config for the petrel plugin, pointing at the world's agent socket. */
export function petrelConf(
  w: Pick<World, 'socket' | 'defaultPools'>,
  over: Record<string, unknown> = {},
  version = '1.0.0',
) {
  return {
    cniVersion: version,
    name: 'petrel-test',
    type: 'petrel',
    agentSocket: w.socket,
    logLevel: 'warn',
    ipam: { type: 'petrel-ipam', ...(w.defaultPools ? { pools: w.defaultPools } : {}) },
    ...over,
  };
}

/** Addresses allocated in IPAM now (from `petrelctl ipam show --json`), by IP. */
export async function allocations(w: Pick<World, 'petrelctl'>): Promise<Map<string, string>> {
  const r = await w.petrelctl('ipam', 'show', '--json');
  if (r.code !== 0) throw new Error(`ipam show failed: ${r.stderr}`);
  const u = JSON.parse(r.stdout) as { pools: { blocks: { allocations: { ip: string; handle: string }[] }[] }[] };
  const out = new Map<string, string>();
  for (const p of u.pools) for (const b of p.blocks) for (const a of b.allocations) out.set(a.ip, a.handle);
  return out;
}

export interface ChainPlugin {
  type: string;
  [k: string]: unknown;
}

/**
 * A minimal libcni for a conflist: ADD runs the plugins in order, each with the previous result
 * as prevResult; DEL runs them in reverse with the final result; CHECK in order with it.
 * runtimeConfig is given to plugins whose capabilities ask for a key (as libcni does).
 */
export async function runChain(
  w: Pick<World, 'cni'>,
  command: 'ADD' | 'DEL' | 'CHECK',
  list: { cniVersion: string; name: string; plugins: ChainPlugin[] },
  call: CniCall,
  runtime: Record<string, unknown> = {},
  prevResult?: unknown,
): Promise<{ result: unknown; replies: CniReply[] }> {
  const order = command === 'DEL' ? [...list.plugins].reverse() : list.plugins;
  let prev = prevResult;
  const replies: CniReply[] = [];
  for (const p of order) {
    const caps = (p.capabilities ?? {}) as Record<string, boolean>;
    const rc: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(runtime)) if (caps[k]) rc[k] = v;
    const conf: Record<string, unknown> = { ...p, cniVersion: list.cniVersion, name: list.name };
    if (Object.keys(rc).length > 0) conf.runtimeConfig = rc;
    if (prev !== undefined) conf.prevResult = prev;
    const r = await w.cni(p.type, { ...call, command }, conf);
    replies.push(r);
    if (r.code !== 0) throw new Error(`${p.type} ${command} failed: ${r.stdout} ${r.stderr}`);
    if (command === 'ADD') prev = r.json;
  }
  return { result: prev, replies };
}
