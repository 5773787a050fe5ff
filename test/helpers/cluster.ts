/**
 * A real N-node Petrel cluster inside network namespaces, for the multi-node integration tests
 * (test/integration/cluster) and, later, `petrelctl lab`. Nothing touches the root namespace.
 *
 *   fabric netns   bridge br0 10.99.0.1/24 (+ fd99::1/64): the nodes' L2 segment; etcd listens on
 *                  10.99.0.1:2379; "the outside world" too: 10.97.0.1/32 (+ fd97::1/128) on its lo
 *                  (the nodes' default route points here; it knows no pod route, so a pod reaches it
 *                  only through natOutgoing).
 *   node-K netns   eth0 10.99.0.(10+K)/24 (+ fd99::(10+K)/64) bridged into br0; default via the fabric,
 *                  10.98.0.0/24 via the router. One petrel-agent (bin/petrel-agent) with its IPAM socket
 *                  in a temp dir and its status endpoint on 127.0.0.1:9099 inside the node.
 *   router netns   (routerNodes > 0) 10.99.0.254/24 on the bridge and br1 10.98.0.1/24 (+ fd98::1/64)
 *                  holding the routed nodes: node-K there has 10.98.0.(10+K)/24, default via 10.98.0.1.
 *   pods           a netns per pod, wired by the real CNI plugin (dist-sea/petrel, else bin/petrel)
 *                  executed inside the node netns as a runtime does.
 *
 * Every process runs as the leader of its own process group (spawn detached: setsid; `ip netns
 * exec` execs the command in place, so the PID is the command's): stop() ends each group whole
 * (SIGTERM, then SIGKILL), so children the agent forked (`ip -batch`, `ip monitor`) go with it.
 * stop() deletes every namespace and temp dir made, and works when startCluster() failed halfway
 * (startCluster calls it itself before rethrowing).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { BIN_DIR, PETREL_BINS, pluginDir, REF_PLUGINS } from './bins.js';
import { type EtcdHandle, startEtcd } from './etcd.js';
import type { ProbedCapability } from './needs.js';
import { createNetns, type ExecResult, type Netns } from './netns.js';
import { type Daemon, startDaemon, waitFor } from './process.js';

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

export interface ClusterPool {
  name: string;
  cidr: string;
  blockSize?: number;
  ipipMode?: 'Always' | 'CrossSubnet' | 'Never';
  vxlanMode?: 'Always' | 'CrossSubnet' | 'Never';
  natOutgoing?: boolean;
  nodeSelector?: string;
}

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
  readonly agent: Daemon | undefined;
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
  readonly etcd: EtcdHandle;
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
  spawn(ns: Netns | { name: string }, cmd: string, args: string[]): Daemon;
  /** Ends a process started with spawn() (its whole group). */
  kill(d: Daemon, signal?: NodeJS.Signals): Promise<void>;
  /** Tail of every agent log, for assertion messages. */
  logs(lines?: number): string;
  /** Stops everything and deletes every namespace and temp dir. Idempotent. */
  stop(): Promise<void>;
}

export type NodeRef = ClusterNode | string | number;

// ---------------------------------------------------------------- process groups

const groups = new Set<number>();

function signalGroup(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pid: number): boolean {
  return signalGroup(pid, 0 as unknown as NodeJS.Signals);
}

/** SIGTERM (unless `signal` says otherwise) to the group, SIGKILL after graceMs; waits until the group is empty. */
async function endGroup(d: Daemon, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  const pid = d.pid;
  signalGroup(pid, signal);
  const deadline = performance.now() + graceMs;
  while (groupAlive(pid) && performance.now() < deadline) await delay(50);
  signalGroup(pid, 'SIGKILL');
  await waitFor(`process group ${pid} gone`, () => !groupAlive(pid), 5000).catch(() => {});
  // The leader is our child: wait for its exit event so it is reaped.
  await waitFor(`process ${pid} reaped`, () => d.exited(), 5000).catch(() => {});
  groups.delete(pid);
}

process.on('exit', () => {
  for (const pid of groups) signalGroup(pid, 'SIGKILL');
});

function spawnGroup(nsName: string, cmd: string, args: string[]): Daemon {
  const d = startDaemon('ip', ['netns', 'exec', nsName, cmd, ...args], { detached: true });
  groups.add(d.pid);
  return d;
}

// ---------------------------------------------------------------- the cluster

let podSeq = 0;
let keptSeq = 0;

export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const tmp = mkdtempSync(join(tmpdir(), 'petrel-cluster-'));
  const namespaces: Netns[] = [];
  const pods: Pod[] = [];
  const daemons = new Set<Daemon>();
  const nodes: ClusterNode[] = [];
  let etcd: EtcdHandle | undefined;
  let stopped = false;

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const n of nodes) await n.stopAgent().catch(() => {});
    for (const d of [...daemons]) await endGroup(d, 'SIGTERM', 2000);
    daemons.clear();
    await etcd?.destroy().catch(() => {});
    for (const p of pods) await p.netns.delete();
    for (const ns of namespaces.reverse()) await ns.delete();
    // PETREL_CLUSTER_KEEP_LOGS=DIR: keep the agent logs (DIR/<pid>-<n>/node-K.log) for debugging.
    const keep = process.env.PETREL_CLUSTER_KEEP_LOGS;
    if (keep) {
      const dir = join(keep, `${process.pid}-${++keptSeq}`);
      mkdirSync(dir, { recursive: true });
      for (const n of nodes) writeFileSync(join(dir, `${n.name}.log`), n.log());
    }
    rmSync(tmp, { recursive: true, force: true });
  };

  const mkns = async (tag: string) => {
    const ns = await createNetns(tag);
    namespaces.push(ns);
    return ns;
  };

  try {
    const v6 = o.ipv6 === true;
    const fabric = await mkns('fabric');
    await fabric.ip('link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0');
    await fabric.ip('addr', 'add', `${FABRIC_IP}/24`, 'dev', 'br0');
    await fabric.ip('link', 'set', 'br0', 'up');
    // (On lo: this kernel may lack the dummy driver.)
    await fabric.ip('addr', 'add', `${OUTSIDE_IP}/32`, 'dev', 'lo');
    if (v6) {
      await fabric.ip('addr', 'add', `${FABRIC_IP6}/64`, 'dev', 'br0', 'nodad');
      await fabric.ip('addr', 'add', `${OUTSIDE_IP6}/128`, 'dev', 'lo', 'nodad');
    }

    let router: Netns | undefined;
    const routed = o.routerNodes ?? 0;
    if (routed > 0) {
      router = await mkns('router');
      await fabric.ip('link', 'add', 'vrouter', 'type', 'veth', 'peer', 'name', 'up0', 'netns', router.name);
      await fabric.ip('link', 'set', 'vrouter', 'master', 'br0', 'up');
      await router.ip('addr', 'add', `${ROUTER_IP}/24`, 'dev', 'up0');
      await router.ip('link', 'set', 'up0', 'up');
      await router.ip('link', 'add', 'br1', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0');
      await router.ip('addr', 'add', `${ROUTED_GW}/24`, 'dev', 'br1');
      await router.ip('link', 'set', 'br1', 'up');
      await router.ip('route', 'add', 'default', 'via', FABRIC_IP);
      await router.sysctl('net.ipv4.ip_forward', '1');
      await fabric.ip('route', 'add', '10.98.0.0/24', 'via', ROUTER_IP);
      if (v6) {
        await router.sysctl('net.ipv6.conf.all.forwarding', '1');
        await router.ip('addr', 'add', `${ROUTER_IP6}/64`, 'dev', 'up0', 'nodad');
        await router.ip('addr', 'add', `${ROUTED_GW6}/64`, 'dev', 'br1', 'nodad');
        await router.ip('-6', 'route', 'add', 'default', 'via', FABRIC_IP6);
        await fabric.ip('-6', 'route', 'add', 'fd98::/64', 'via', ROUTER_IP6);
      }
    }

    etcd = await startEtcd({ netns: fabric.name, host: FABRIC_IP });
    const etcdUrl = etcd.endpoint;

    const logLevel = o.logLevel ?? 'info';
    const total = o.nodes + routed;
    for (let k = 1; k <= total; k++) {
      const subnet: 'fabric' | 'routed' = k <= o.nodes ? 'fabric' : 'routed';
      const name = `node-${k}`;
      const ns = await mkns(`n${k}`);
      const host = 10 + k;
      const ip = subnet === 'fabric' ? `10.99.0.${host}` : `10.98.0.${host}`;
      const ip6 = v6 ? (subnet === 'fabric' ? `fd99::${host}` : `fd98::${host}`) : undefined;
      const bridgeNs = subnet === 'fabric' ? fabric : (router as Netns);
      const bridge = subnet === 'fabric' ? 'br0' : 'br1';
      const port = `vn${k}`;
      await bridgeNs.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', UPLINK, 'netns', ns.name);
      await bridgeNs.ip('link', 'set', port, 'master', bridge, 'up');
      await ns.ip('addr', 'add', `${ip}/24`, 'dev', UPLINK);
      await ns.ip('link', 'set', UPLINK, 'up');
      if (subnet === 'fabric') {
        await ns.ip('route', 'add', 'default', 'via', FABRIC_IP);
        if (routed > 0) await ns.ip('route', 'add', '10.98.0.0/24', 'via', ROUTER_IP);
      } else {
        await ns.ip('route', 'add', 'default', 'via', ROUTED_GW);
      }
      if (ip6) {
        await ns.ip('addr', 'add', `${ip6}/64`, 'dev', UPLINK, 'nodad');
        if (subnet === 'fabric') {
          await ns.ip('-6', 'route', 'add', 'default', 'via', FABRIC_IP6);
          if (routed > 0) await ns.ip('-6', 'route', 'add', 'fd98::/64', 'via', ROUTER_IP6);
        } else {
          await ns.ip('-6', 'route', 'add', 'default', 'via', ROUTED_GW6);
        }
      }
      const dir = join(tmp, name);
      mkdirSync(dir, { recursive: true });
      const socket = join(dir, 'agent.sock');
      const logFile = join(dir, 'agent.log');
      let agent: Daemon | undefined;
      let pastOutput = '';
      const node: ClusterNode = {
        name,
        index: k,
        ns,
        ip,
        ...(ip6 ? { ip6, cidr6: `${ip6}/64` } : {}),
        cidr: `${ip}/24`,
        subnet,
        socket,
        logFile,
        statusUrl: `http://127.0.0.1:${STATUS_PORT}`,
        get agent() {
          return agent;
        },
        async startAgent(extraArgs: string[] = []) {
          if (agent && !agent.exited()) return;
          rmSync(socket, { force: true });
          const args = [
            join(BIN_DIR, 'petrel-agent'),
            '--node-name',
            name,
            '--etcd-endpoints',
            etcdUrl,
            '--socket',
            socket,
            '--ip',
            `${ip}/24`,
            '--ip6',
            ip6 ? `${ip6}/64` : 'none',
            '--status-listen',
            `127.0.0.1:${STATUS_PORT}`,
            '--log-level',
            logLevel,
            '--log-file',
            logFile,
            ...(o.leaseTtlSec ? ['--node-lease-ttl', String(o.leaseTtlSec)] : []),
            ...(o.agentArgs?.(node) ?? []),
            ...extraArgs,
          ];
          const d = spawnGroup(ns.name, process.execPath, args);
          agent = d;
          // (waitFor retries a check that throws: an exit is a value here, so it fails fast.)
          const how = await waitFor(
            `${name} agent socket`,
            () => (d.exited() ? 'exited' : existsSync(socket) && 'up'),
            30_000,
          );
          if (how === 'exited') throw new Error(`${name} agent exited: ${d.output().slice(-3000)}`);
        },
        async stopAgent() {
          const d = agent;
          if (!d) return;
          await endGroup(d, 'SIGTERM', 12_000);
          pastOutput += d.output();
          agent = undefined;
        },
        async killAgent() {
          const d = agent;
          if (!d) return;
          await endGroup(d, 'SIGKILL', 0);
          pastOutput += d.output();
          agent = undefined;
        },
        log() {
          let file = '';
          try {
            file = readFileSync(logFile, 'utf8');
          } catch {
            /* not written yet */
          }
          return `${file}${pastOutput}${agent?.output() ?? ''}`;
        },
      };
      nodes.push(node);
    }

    const ctl = (...args: string[]) =>
      fabric.exec(join(BIN_DIR, 'petrelctl'), ['--etcd-endpoints', etcdUrl, ...args], { timeoutMs: 60_000 });
    const ctlOk = async (...args: string[]) => {
      const r = await ctl(...args);
      if (r.code !== 0) throw new Error(`petrelctl ${args.join(' ')} -> ${r.code}: ${r.stderr.trim() || r.stdout}`);
      return r.stdout;
    };
    for (const p of o.pools ?? []) {
      const args = ['ipam', 'pool', 'add', p.name, '--cidr', p.cidr];
      if (p.blockSize) args.push('--block-size', String(p.blockSize));
      if (p.ipipMode) args.push('--ipip-mode', p.ipipMode);
      if (p.vxlanMode) args.push('--vxlan-mode', p.vxlanMode);
      if (p.natOutgoing) args.push('--nat-outgoing');
      if (p.nodeSelector) args.push('--node-selector', p.nodeSelector);
      await ctlOk(...args);
    }
    for (const s of o.setup ?? []) await ctlOk(...s);

    const nodeOf = (ref: NodeRef): ClusterNode => {
      const n =
        typeof ref === 'number' ? nodes[ref - 1] : typeof ref === 'string' ? nodes.find((x) => x.name === ref) : ref;
      if (!n) throw new Error(`no node ${String(typeof ref === 'object' ? ref.name : ref)}`);
      return n;
    };

    const cni = async (n: ClusterNode, command: string, containerId: string, netns: string, stdin: unknown) => {
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: netns,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${containerId}`,
        CNI_PATH: `${pluginDir()}:${REF_PLUGINS}`,
      };
      return n.ns.exec(join(pluginDir(), 'petrel'), [], { input: JSON.stringify(stdin), env, timeoutMs: 60_000 });
    };

    const cluster: Cluster = {
      nodes,
      etcdUrl,
      etcd,
      fabric,
      router,
      tmp,
      petrelctl: ctl,
      petrelctlOk: ctlOk,
      exec: (ref, cmd, args = [], timeoutMs = 30_000) => nodeOf(ref).ns.exec(cmd, args, { timeoutMs }),
      node: nodeOf,
      async addPod(ref, name, opts = {}) {
        const n = nodeOf(ref);
        const netns = await createNetns(`p-${name}`.slice(0, 12));
        podSeq++;
        const containerId = `c${process.pid}x${podSeq}`;
        const conf = {
          cniVersion: '1.0.0',
          name: 'petrel-cluster',
          type: 'petrel',
          agentSocket: n.socket,
          logLevel: 'warn',
          ipam: {
            type: 'petrel-ipam',
            ...(opts.pools ? { pools: opts.pools } : {}),
            assignIpv4: opts.assignIpv4 ?? true,
            assignIpv6: opts.assignIpv6 ?? false,
          },
        };
        let removed = false;
        const r = await cni(n, 'ADD', containerId, netns.path, conf);
        if (r.code !== 0) {
          await netns.delete();
          throw new Error(`CNI ADD ${name} on ${n.name} -> ${r.code}: ${r.stdout} ${r.stderr}`);
        }
        const res = JSON.parse(r.stdout) as { ips: { address: string }[] };
        const addrs = res.ips.map((x) => x.address.split('/')[0] ?? '');
        const pod: Pod = {
          name,
          node: n,
          netns,
          containerId,
          ip: addrs.find((a) => !a.includes(':')) ?? '',
          ip6: addrs.find((a) => a.includes(':')) ?? '',
          async remove() {
            if (removed) return;
            removed = true;
            const d = await cni(n, 'DEL', containerId, netns.path, conf);
            await netns.delete();
            pods.splice(pods.indexOf(pod), 1);
            if (d.code !== 0) throw new Error(`CNI DEL ${name} -> ${d.code}: ${d.stdout} ${d.stderr}`);
          },
        };
        pods.push(pod);
        return pod;
      },
      async routes(ref, family = 4) {
        const n = nodeOf(ref);
        const out = await n.ns.ip(`-${family}`, '-json', 'route', 'show', 'proto', '80');
        return JSON.parse(out || '[]') as KernelRoute[];
      },
      async addHost(tag, octet) {
        if (octet <= 1 || octet >= 254 || (octet > 10 && octet <= 10 + total))
          throw new Error(`10.99.0.${octet} is taken by the fabric, the router or a node`);
        const ns = await mkns(tag);
        const ip = `10.99.0.${octet}`;
        await fabric.ip('link', 'add', `vh${octet}`, 'type', 'veth', 'peer', 'name', UPLINK, 'netns', ns.name);
        await fabric.ip('link', 'set', `vh${octet}`, 'master', 'br0', 'up');
        await ns.ip('addr', 'add', `${ip}/24`, 'dev', UPLINK);
        await ns.ip('link', 'set', UPLINK, 'up');
        await ns.ip('route', 'add', 'default', 'via', FABRIC_IP);
        if (routed > 0) await ns.ip('route', 'add', '10.98.0.0/24', 'via', ROUTER_IP);
        if (!v6) return Object.assign(ns, { ip });
        const ip6 = `fd99::${octet}`;
        await ns.ip('addr', 'add', `${ip6}/64`, 'dev', UPLINK, 'nodad');
        await ns.ip('-6', 'route', 'add', 'default', 'via', FABRIC_IP6);
        return Object.assign(ns, { ip, ip6 });
      },
      spawn(ns, cmd, args) {
        const d = spawnGroup(ns.name, cmd, args);
        daemons.add(d);
        return d;
      },
      async kill(d, signal = 'SIGTERM') {
        daemons.delete(d);
        await endGroup(d, signal, 3000);
      },
      logs(lines = 40) {
        return nodes
          .map((n) => `--- ${n.name} agent log (tail)\n${n.log().split('\n').slice(-lines).join('\n')}`)
          .join('\n');
      },
      stop,
    };

    if (o.startAgents !== false) for (const n of nodes) await n.startAgent();
    return cluster;
  } catch (err) {
    await stop();
    throw err;
  }
}
