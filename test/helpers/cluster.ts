/**
 * A real N-node Petrel cluster inside network namespaces, for the multi-node integration tests
 * (test/integration/cluster): a thin layer over the lab's cluster (agent/lab/cluster.ts, the same
 * code `petrelctl lab` runs) at lab index 0, so the addresses are the ones below:
 *
 *   fabric netns   bridge br0 10.99.0.1/24 (+ fd99::1/64), etcd on 10.99.0.1:2379, "the outside
 *                  world" 10.97.0.1/32 (+ fd97::1/128) on its lo.
 *   node-K netns   eth0 10.99.0.(10+K)/24 (+ fd99::(10+K)/64); behind the router 10.98.0.(10+K)/24.
 *                  Agent status endpoint on 127.0.0.1:9099 inside the node.
 *   router netns   (routerNodes > 0) 10.99.0.254/24 on the bridge, br1 10.98.0.1/24 (+ fd98::1/64).
 *   pods           a netns per pod, wired by the real CNI plugin (dist-sea/petrel, else bin/petrel).
 *
 * Namespaces are named petrel-t-PID-cN-*, everything on disk lives in one temp dir. stop() ends
 * every process group, deletes every namespace and the temp dir, and works when startCluster()
 * failed halfway (startCluster calls it itself before rethrowing); a crashed test's leftovers are
 * killed and deleted at process exit.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCluster, initialState, type LabCluster } from '../../agent/lab/cluster.js';
import type { LabPool } from '../../agent/lab/layout.js';
import type { ExecResult, Proc } from '../../agent/lab/sh.js';
import type { NodeState } from '../../agent/lab/state.js';
import { BIN_DIR, PETREL_BINS, pluginDir, REF_PLUGINS } from './bins.js';
import type { EtcdHandle } from './etcd.js';
import type { ProbedCapability } from './needs.js';
import { type Netns, netnsHandle as nsHandle } from './netns.js';

export { BIN_DIR, pluginDir, REF_PLUGINS, SEA_DIR } from './bins.js';

/** The fabric's own address: etcd, the nodes' default gateway. */
export const FABRIC_IP = '10.99.0.1';
export const FABRIC_IP6 = 'fd99::1';
/** An address outside every node and pool ("the internet"), held by the fabric namespace. */
export const OUTSIDE_IP = '10.97.0.1';
export const OUTSIDE_IP6 = 'fd97::1';
export const ROUTER_IP = '10.99.0.254';
export const ROUTER_IP6 = 'fd99::fe';
export const ROUTED_GW = '10.98.0.1';
export const ROUTED_GW6 = 'fd98::1';
/** The uplink's name inside every node namespace. */
export const UPLINK = 'eth0';
export const STATUS_PORT = 9099;

/** The agent, petrelctl and plugin executables, as a needs() capability. */
export const CLUSTER_BINS: ProbedCapability = {
  name: 'cluster-bins',
  probe: () => {
    const missing = PETREL_BINS.probe();
    if (missing) return missing;
    if (!existsSync(join(REF_PLUGINS, 'ptp'))) return 'needs the reference CNI plugins in /usr/lib/cni';
    return false;
  },
};

export type ClusterPool = LabPool;

export interface ClusterOptions {
  /** Nodes on the fabric bridge (node-1 .. node-N). */
  nodes: number;
  /** Nodes behind the router, on 10.98.0.0/24 (node-(N+1) ..). Default 0. */
  routerNodes?: number;
  /** Give every node (and the fabric/router) an IPv6 address too, and pass --ip6 to the agents. */
  ipv6?: boolean;
  /** Pools created (petrelctl ipam pool add) before the agents start. */
  pools?: ClusterPool[];
  /** petrelctl commands run before the agents start (e.g. ['bgp', 'config', 'set', '--node-mesh', 'off']). */
  setup?: string[][];
  /** Extra agent flags per node (labels, --route-reflector-cluster-id, --as ...). */
  agentArgs?: (node: ClusterNode) => string[];
  /** Start the agents (default true); false = call node.startAgent() yourself. */
  startAgents?: boolean;
  /** Agent --node-lease-ttl (default: the agent's). */
  leaseTtlSec?: number;
  logLevel?: string;
}

export interface ClusterNode {
  readonly name: string;
  /** 1-based. */
  readonly index: number;
  readonly ns: Netns;
  /** Node address without prefix length. */
  readonly ip: string;
  readonly ip6?: string;
  /** ADDR/LEN as given to the agent. */
  readonly cidr: string;
  readonly cidr6?: string;
  /** 'fabric' (10.99.0.0/24) or 'routed' (behind the router, 10.98.0.0/24). */
  readonly subnet: 'fabric' | 'routed';
  readonly socket: string;
  readonly logFile: string;
  /** http://127.0.0.1:9099, valid inside the node netns. */
  readonly statusUrl: string;
  readonly agent: AgentProc | undefined;
  /** Starts the agent (if not running) and waits for its IPAM socket; `extraArgs` for this start only. */
  startAgent(extraArgs?: string[]): Promise<void>;
  /** SIGTERM to the agent's process group, then SIGKILL; waits until it is gone. */
  stopAgent(): Promise<void>;
  /** SIGKILL to the agent's process group (kill -9). */
  killAgent(): Promise<void>;
  /** The agent's log so far (its --log-file plus its stdout/stderr). */
  log(): string;
}

export interface Pod {
  readonly name: string;
  readonly node: ClusterNode;
  readonly netns: Netns;
  readonly containerId: string;
  /** IPv4 address (no prefix), or '' when the pod has none. */
  readonly ip: string;
  readonly ip6: string;
  /** CNI DEL, then the pod netns is deleted. */
  remove(): Promise<void>;
}

export interface AddPodOptions {
  /** IPAM pools to allocate from (netconf ipam.pools). */
  pools?: string[];
  assignIpv4?: boolean;
  assignIpv6?: boolean;
}

/** A route as `ip -json route show` prints it. */
export interface KernelRoute {
  dst: string;
  type?: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  flags?: string[];
}

export interface Cluster {
  readonly nodes: ClusterNode[];
  readonly etcdUrl: string;
  readonly etcd: ClusterEtcd;
  readonly fabric: Netns;
  readonly router: Netns | undefined;
  readonly tmp: string;
  /** bin/petrelctl --etcd-endpoints URL ARGS, run in the fabric netns. */
  petrelctl(...args: string[]): Promise<ExecResult>;
  /** Like petrelctl but rejects on a non-zero exit; resolves with stdout. */
  petrelctlOk(...args: string[]): Promise<string>;
  /** A command inside a node's netns (a node, its name or its 1-based index). */
  exec(node: NodeRef, cmd: string, args?: string[], timeoutMs?: number): Promise<ExecResult>;
  node(ref: NodeRef): ClusterNode;
  /** A pod on a node, wired by the petrel CNI plugin. */
  addPod(node: NodeRef, name: string, opts?: AddPodOptions): Promise<Pod>;
  /** Petrel's routes (proto 80) in a node's kernel, IPv4 or IPv6. */
  routes(node: NodeRef, family?: 4 | 6): Promise<KernelRoute[]>;
  /**
   * Another machine on the fabric bridge (an external BGP peer, a client): a netns with eth0 at
   * 10.99.0.`octet`/24 (+ fd99::`octet`/64 with ipv6), default via the fabric. Deleted by stop().
   */
  addHost(tag: string, octet: number): Promise<Netns & { ip: string; ip6?: string }>;
  /** A long-running process in a namespace, in its own process group, ended by stop(). */
  spawn(ns: Netns | { name: string }, cmd: string, args: string[]): Proc;
  /** Ends a process started with spawn() (its whole group). */
  kill(d: Proc, signal?: NodeJS.Signals): Promise<void>;
  /** Tail of every agent log, for assertion messages. */
  logs(lines?: number): string;
  /** Stops everything and deletes every namespace and temp dir. Idempotent. */
  stop(): Promise<void>;
}

export type NodeRef = ClusterNode | string | number;

/** A running agent: this process's child. */
export type AgentProc = Proc & { readonly proc: ChildProcess };

/** The cluster's etcd (restart: on the same address and data dir). */
export type ClusterEtcd = Omit<EtcdHandle, 'destroy'>;

// ---------------------------------------------------------------- the cluster

let clusterSeq = 0;
let keptSeq = 0;
const live = new Set<LabCluster>();

// A crashed test: kill what is still running and delete its namespaces.
process.on('exit', () => {
  for (const lc of live) {
    const pids = [...lc.state.nodes.map((n) => n.agentPid), lc.state.etcd?.pid, ...lc.state.procs.map((p) => p.pid)];
    for (const pid of pids) {
      try {
        if (pid) process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const ns of lc.state.netns) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* gone */
      }
    }
  }
});

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const tmp = mkdtempSync(join(tmpdir(), 'petrel-cluster-'));
  const v6 = o.ipv6 === true;
  const state = initialState({
    name: 'test',
    index: 0,
    prefix: `petrel-t-${process.pid}-c${++clusterSeq}`,
    dir: tmp,
    mode: 'never',
    ipv6: v6,
    pools: o.pools ?? [],
    nodeExec: process.execPath,
    binDir: BIN_DIR,
    pluginDir: pluginDir(),
    now: new Date().toISOString(),
  });
  const nodes: ClusterNode[] = [];
  const pods: Pod[] = [];
  let lc: LabCluster | undefined;
  let stopped = false;

  const stop = async () => {
    if (stopped || !lc) return;
    stopped = true;
    // PETREL_CLUSTER_KEEP_LOGS=DIR: keep the agent logs (DIR/<pid>-<n>/node-K.log) for debugging.
    const keep = process.env.PETREL_CLUSTER_KEEP_LOGS;
    if (keep) {
      const dir = join(keep, `${process.pid}-${++keptSeq}`);
      mkdirSync(dir, { recursive: true });
      for (const n of nodes) writeFileSync(join(dir, `${n.name}.log`), n.log());
    }
    await lc.destroy();
    live.delete(lc);
  };

  const wrapNode = (st: NodeState): ClusterNode => ({
    name: st.name,
    index: st.index,
    ns: nsHandle(st.netns),
    ip: st.ip,
    ...(st.ip6 ? { ip6: st.ip6, cidr6: st.cidr6 as string } : {}),
    cidr: st.cidr,
    subnet: st.subnet,
    socket: st.socket,
    logFile: st.logFile,
    statusUrl: st.statusUrl,
    get agent() {
      return (lc as LabCluster).agent(st.name) as AgentProc | undefined;
    },
    startAgent: (extraArgs) => (lc as LabCluster).startAgent(st.name, extraArgs),
    stopAgent: () => (lc as LabCluster).stopAgent(st.name),
    killAgent: () => (lc as LabCluster).stopAgent(st.name, 'SIGKILL'),
    log: () => (lc as LabCluster).agentLog(st.name),
  });

  const progress = (m: string) => {
    if (process.env.PETREL_CLUSTER_PROGRESS) process.stderr.write(`cluster: ${m}\n`);
  };
  const built = await buildCluster(state, {
    nodes: o.nodes,
    ...(o.routerNodes ? { routerNodes: o.routerNodes } : {}),
    ...(o.setup ? { setup: o.setup } : {}),
    ...(o.agentArgs ? { agentArgs: (st: NodeState) => o.agentArgs?.(wrapNode(st)) ?? [] } : {}),
    startAgents: false,
    ...(o.leaseTtlSec ? { leaseTtlSec: o.leaseTtlSec } : {}),
    ...(o.logLevel ? { logLevel: o.logLevel } : {}),
    progress,
  });
  lc = built;
  live.add(built);
  for (const st of built.state.nodes) nodes.push(wrapNode(st));

  const nodeOf = (ref: NodeRef): ClusterNode => {
    const n =
      typeof ref === 'number' ? nodes[ref - 1] : typeof ref === 'string' ? nodes.find((x) => x.name === ref) : ref;
    if (!n) throw new Error(`no node ${String(typeof ref === 'object' ? ref.name : ref)}`);
    return n;
  };
  const etcdState = () => {
    const e = built.state.etcd;
    if (!e) throw new Error('no etcd');
    return e;
  };
  const total = nodes.length;

  const cluster: Cluster = {
    nodes,
    etcdUrl: etcdState().endpoint,
    etcd: {
      endpoint: etcdState().endpoint,
      dataDir: etcdState().dataDir,
      pid: () => etcdState().pid,
      stop: () => built.stopEtcd(),
      restart: async () => {
        await built.stopEtcd();
        await built.startEtcd();
      },
    },
    fabric: nsHandle(built.fabric.name),
    router: built.state.router ? nsHandle(built.state.router) : undefined,
    tmp,
    petrelctl: built.petrelctl,
    petrelctlOk: built.petrelctlOk,
    exec: (ref, cmd, args = [], timeoutMs = 30_000) => nodeOf(ref).ns.exec(cmd, args, { timeoutMs }),
    node: nodeOf,
    async addPod(ref, name, opts = {}) {
      const n = nodeOf(ref);
      const st = await built.addPod(n.name, name, opts);
      const pod: Pod = {
        name,
        node: n,
        netns: nsHandle(st.netns),
        containerId: st.containerId,
        ip: st.ip,
        ip6: st.ip6,
        async remove() {
          if (!pods.includes(pod)) return;
          pods.splice(pods.indexOf(pod), 1);
          await built.removePod(name);
        },
      };
      pods.push(pod);
      return pod;
    },
    async routes(ref, family = 4) {
      const out = await nodeOf(ref).ns.ip(`-${family}`, '-json', 'route', 'show', 'proto', '80');
      return JSON.parse(out || '[]') as KernelRoute[];
    },
    async addHost(tag, octet) {
      if (octet <= 1 || octet >= 254 || (octet > 10 && octet <= 10 + total))
        throw new Error(`10.99.0.${octet} is taken by the fabric, the router or a node`);
      const ns = nsHandle((await built.makeNetns(tag)).name);
      const fabric = built.fabric;
      const ip = `10.99.0.${octet}`;
      await fabric.ip('link', 'add', `vh${octet}`, 'type', 'veth', 'peer', 'name', UPLINK, 'netns', ns.name);
      await fabric.ip('link', 'set', `vh${octet}`, 'master', 'br0', 'up');
      await ns.ip('addr', 'add', `${ip}/24`, 'dev', UPLINK);
      await ns.ip('link', 'set', UPLINK, 'up');
      await ns.ip('route', 'add', 'default', 'via', FABRIC_IP);
      if (built.state.router) await ns.ip('route', 'add', '10.98.0.0/24', 'via', ROUTER_IP);
      if (!v6) return Object.assign(ns, { ip });
      const ip6 = `fd99::${octet}`;
      await ns.ip('addr', 'add', `${ip6}/64`, 'dev', UPLINK, 'nodad');
      await ns.ip('-6', 'route', 'add', 'default', 'via', FABRIC_IP6);
      return Object.assign(ns, { ip, ip6 });
    },
    spawn: (ns, cmd, args) => built.spawn(ns.name, cmd.split('/').pop() ?? 'proc', cmd, args),
    kill: (d, signal = 'SIGTERM') => built.kill(d, signal),
    logs(lines = 40) {
      return nodes
        .map((n) => `--- ${n.name} agent log (tail)\n${n.log().split('\n').slice(-lines).join('\n')}`)
        .join('\n');
    },
    stop,
  };

  try {
    if (o.startAgents !== false) for (const n of nodes) await n.startAgent();
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}
