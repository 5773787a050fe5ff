/**
 * Shell: a real N-node Petrel cluster inside network namespaces, described by a LabState (state.ts)
 * with addresses from layout.ts. One implementation for `petrelctl lab` (whose processes outlive the
 * command: state.json says what to end later) and for the multi-node integration tests
 * (test/helpers/cluster.ts, index 0). Nothing touches the root namespace.
 *
 *   fabric netns   bridge br0 10.99.I.1/24: the nodes' L2 segment; etcd on 10.99.I.1:2379; "the
 *                  outside world" 10.97.I.1/32 on its lo (the nodes' default route points here).
 *   node-K netns   eth0 10.99.I.(10+K)/24 bridged into br0; default via the fabric. One petrel-agent
 *                  exactly as a node runs it, IPAM socket and logs in the lab directory.
 *   router netns   (routed nodes) 10.99.I.254 on br0 and br1 10.98.I.1/24 holding the routed nodes.
 *   pods           a netns per pod, wired by the real CNI plugin executed inside the node netns as a
 *                  runtime does; or (a --cri lab) a sandbox of the node's containerd, which runs
 *                  in the node netns and calls the plugin itself (RunPodSandbox, as kubelet asks).
 *
 * Every process is the leader of its own process group, output to a file in the lab directory;
 * ending a group ends what it forked. `destroy()` ends each recorded group, deletes each recorded
 * namespace and the lab directory, and works on a half-built cluster.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CriClient } from './cri/client.js';
import {
  buildPauseImage,
  cleanEmptyHostDirs,
  cleanSandboxPaths,
  containerdPaths,
  hostPathsBefore,
  labConflist,
  startLabContainerd,
  stopLabContainerd,
  unmountUnder,
} from './cri/containerd.js';
import {
  addPodScript,
  execInGuest,
  GUEST_AGENT_SOCKET,
  type GuestsSpec,
  guestPath,
  removePodScript,
  startAgentScript,
  stopAgentScript,
  waitGuestsReady,
} from './guest-nodes.js';
import { bridgeMac, labAddresses, nodeAddresses, PROBE_PORT, STATUS_PORT, UPLINK } from './layout.js';
import { ECHO } from './probe-js.js';
import {
  createNetns,
  type ExecResult,
  endGroup,
  type Netns,
  netns,
  type Proc,
  procOf,
  spawnGroup,
  waitFor,
} from './sh.js';
import type { LabState, NodeState, PodState } from './state.js';

export const REF_PLUGINS = '/usr/lib/cni';
export const CLUSTER_AS = 64512;
/** The CNI network name (conflist name) of the lab's pods. */
export const LAB_NETWORK = 'petrel-lab';
/** The Kubernetes namespace of a --cri lab's pods. */
export const POD_NAMESPACE = 'default';

export interface BuildOptions {
  /** Nodes on the fabric bridge (node-1 .. node-N). */
  nodes: number;
  /** Nodes behind the router (node-(N+1) ..). Default 0. */
  routerNodes?: number;
  /** petrelctl commands run after the pools, before the agents start. */
  setup?: string[][];
  /** Extra agent flags per node (labels, --as ...), recorded in the node's agentArgv. */
  agentArgs?: (node: NodeState) => string[];
  /** Start the agents (default true). */
  startAgents?: boolean;
  leaseTtlSec?: number;
  logLevel?: string;
  /** Agent status endpoint: 'any' = 0.0.0.0:9099 (reachable at the node address), else loopback. */
  statusListen?: 'any' | 'loopback';
  /** A progress line (what is being done); the lab prints it with the elapsed time. */
  progress?: (msg: string) => void;
  /** A containerd per node (CRI): pods through RunPodSandbox (after the agents start). */
  cri?: boolean;
  /** The nodes are qemu guests on the fabric bridge (guest-nodes.ts), not namespaces. */
  guests?: { memMb?: number; bootTimeoutMs?: number };
}

export interface AddPodOptions {
  pools?: string[];
  assignIpv4?: boolean;
  assignIpv6?: boolean;
}

/** Operations on a cluster described by a state (built here, or read back from state.json). */
export interface LabCluster {
  readonly state: LabState;
  readonly fabric: Netns;
  node(ref: string | number): NodeState;
  nodeNetns(ref: string | number): Netns;
  /** The agent process of a node (this process's child, or re-found by PID), if running. */
  agent(ref: string | number): Proc | undefined;
  startAgent(ref: string | number, extraArgs?: string[]): Promise<void>;
  stopAgent(ref: string | number, signal?: NodeJS.Signals): Promise<void>;
  /** etcd: stop (data kept) and start again on the same address and data. */
  stopEtcd(): Promise<void>;
  startEtcd(): Promise<void>;
  /** bin/petrelctl --etcd-endpoints URL ARGS, run in the fabric netns. */
  petrelctl(...args: string[]): Promise<ExecResult>;
  petrelctlOk(...args: string[]): Promise<string>;
  addPod(ref: string | number, name: string, opts?: AddPodOptions): Promise<PodState>;
  /** CNI DEL, then the pod netns is deleted. Rejects if DEL failed (the netns is deleted anyway). */
  removePod(name: string): Promise<void>;
  /** A long-running process in a namespace (its group), recorded in state.procs. */
  spawn(nsName: string, what: string, cmd: string, args: string[]): Proc;
  /** Ends a process started with spawn(). */
  kill(p: Proc, signal?: NodeJS.Signals): Promise<void>;
  /** A namespace made and recorded (deleted by destroy). */
  makeNetns(tag: string): Promise<Netns>;
  /** Ends every process, deletes every namespace and (unless keepDir) the directory. Idempotent. */
  destroy(opts?: { keepDir?: boolean }): Promise<void>;
  /** The agent log of a node so far (its --log-file plus its stdout/stderr). */
  agentLog(ref: string | number): string;
}

/** A fresh state for a cluster: nothing made yet. */
export function initialState(o: {
  name: string;
  index: number;
  prefix: string;
  dir: string;
  mode: LabState['mode'];
  ipv6: boolean;
  pools: LabState['pools'];
  nodeExec: string;
  binDir: string;
  pluginDir: string;
  now: string;
}): LabState {
  return {
    version: 1,
    name: o.name,
    index: o.index,
    prefix: o.prefix,
    dir: o.dir,
    mode: o.mode,
    ipv6: o.ipv6,
    pools: o.pools,
    nodeExec: o.nodeExec,
    binDir: o.binDir,
    pluginDir: o.pluginDir,
    createdAt: o.now,
    fabric: `${o.prefix}-fabric`,
    netns: [],
    nodes: [],
    pods: [],
    procs: [],
  };
}

let containerSeq = 0;

/**
 * Operations over `state`. `save` is called after every change of the state (the lab writes
 * state.json; the tests pass nothing).
 */
export function openCluster(state: LabState, save: (s: LabState) => void = () => {}): LabCluster {
  const s = state;
  const fabric = netns(s.fabric);
  const procs = new Map<number, Proc>();
  let etcdProc: Proc | undefined;

  const nodeOf = (ref: string | number): NodeState => {
    const n =
      typeof ref === 'number'
        ? s.nodes.find((x) => x.index === ref)
        : s.nodes.find((x) => x.name === ref || String(x.index) === ref);
    if (!n) throw new Error(`no node ${String(ref)} in lab ${s.name}`);
    return n;
  };

  const agentProc = (n: NodeState): Proc | undefined => {
    // A guest's agent PID is the guest's, not one of this machine's.
    if (n.agentPid === undefined || n.guest) return undefined;
    let p = procs.get(n.agentPid);
    if (!p) {
      p = procOf(n.agentPid, n.outFile);
      procs.set(p.pid, p);
    }
    return p;
  };

  const ctl = (...args: string[]) =>
    fabric.exec(s.nodeExec, [join(s.binDir, 'petrelctl'), '--etcd-endpoints', s.etcd?.endpoint ?? '', ...args], {
      timeoutMs: 60_000,
    });
  const ctlOk = async (...args: string[]) => {
    const r = await ctl(...args);
    if (r.code !== 0) throw new Error(`petrelctl ${args.join(' ')} -> ${r.code}: ${r.stderr.trim() || r.stdout}`);
    return r.stdout;
  };

  const cni = (n: NodeState, command: string, pod: PodState, stdin: unknown) => {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/var/run/netns/${pod.netns}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name}`,
      CNI_PATH: `${s.pluginDir}:${REF_PLUGINS}`,
    };
    return netns(n.netns).exec(join(s.pluginDir, 'petrel'), [], {
      input: JSON.stringify(stdin),
      env,
      timeoutMs: 60_000,
    });
  };
  const netconf = (n: NodeState, p: PodState) => ({
    cniVersion: '1.0.0',
    name: LAB_NETWORK,
    type: 'petrel',
    agentSocket: n.socket,
    logLevel: 'warn',
    ipam: {
      type: 'petrel-ipam',
      ...(p.pools ? { pools: p.pools } : {}),
      assignIpv4: p.assignIpv4,
      assignIpv6: p.assignIpv6,
    },
  });

  const etcdHealthy = async () => {
    if (!s.etcd) return false;
    const r = await fabric.exec(
      'etcdctl',
      ['--endpoints', s.etcd.endpoint, '--command-timeout', '2s', 'endpoint', 'health'],
      {
        env: { ...process.env, ETCDCTL_API: '3' },
        timeoutMs: 4000,
      },
    );
    return r.code === 0;
  };

  const c: LabCluster = {
    state: s,
    fabric,
    node: nodeOf,
    nodeNetns: (ref) => netns(nodeOf(ref).netns),
    agent: (ref) => agentProc(nodeOf(ref)),
    async startAgent(ref, extraArgs = []) {
      const n = nodeOf(ref);
      if (n.guest) return guestStartAgent(n, extraArgs);
      const cur = agentProc(n);
      if (cur && !cur.exited()) return;
      rmSync(n.socket, { force: true });
      const p = spawnGroup(n.netns, s.nodeExec, [...n.agentArgv, ...extraArgs], n.outFile);
      procs.set(p.pid, p);
      n.agentPid = p.pid;
      save(s);
      const how = await waitFor(
        `${n.name} agent socket`,
        () => (p.exited() ? 'exited' : existsSync(n.socket) && 'up'),
        30_000,
      );
      if (how === 'exited') throw new Error(`${n.name} agent exited: ${p.output().slice(-3000)}`);
    },
    async stopAgent(ref, signal = 'SIGTERM') {
      const n = nodeOf(ref);
      if (n.guest) {
        const r = await execInGuest(n, stopAgentScript(n, signal, signal === 'SIGKILL' ? 0 : 12), 60_000);
        if (r.code !== 0) throw new Error(`${n.name}: stopping the agent -> ${r.code}: ${r.output}`);
        delete n.agentPid;
        save(s);
        return;
      }
      const p = agentProc(n);
      if (!p) return;
      await endGroup(p, { signal, graceMs: signal === 'SIGKILL' ? 0 : 12_000, mustContain: n.socket });
      procs.delete(p.pid);
      delete n.agentPid;
      save(s);
    },
    async stopEtcd() {
      if (!s.etcd) return;
      await endGroup(etcdProc ?? s.etcd.pid, { graceMs: 5000, mustContain: s.etcd.dataDir });
    },
    async startEtcd() {
      const e = s.etcd;
      if (!e) throw new Error('no etcd recorded');
      const p = spawnGroup(s.fabric, 'etcd', e.argv, e.outFile, { ...process.env, ETCD_UNSUPPORTED_ARCH: 'amd64' });
      etcdProc = p;
      e.pid = p.pid;
      save(s);
      await waitFor(
        'etcd health',
        async () => {
          if (p.exited()) throw new Error(`etcd exited: ${p.output().slice(-2000)}`);
          return etcdHealthy();
        },
        20_000,
      );
    },
    petrelctl: ctl,
    petrelctlOk: ctlOk,
    async addPod(ref, name, opts = {}) {
      const n = nodeOf(ref);
      if (s.pods.some((p) => p.name === name)) throw new Error(`pod ${name} exists`);
      if (s.cri) return criAddPod(n, name);
      if (n.guest) return guestAddPod(n, name, opts);
      const ns = await c.makeNetns(name);
      const pod = podRecord(n, name, ns.name, opts);
      const r = await cni(n, 'ADD', pod, netconf(n, pod));
      if (r.code !== 0) {
        await dropNetns(ns.name);
        throw new Error(`CNI ADD ${name} on ${n.name} -> ${r.code}: ${r.stdout} ${r.stderr}`);
      }
      return recordPod(pod, r.stdout);
    },
    async removePod(name) {
      const pod = s.pods.find((p) => p.name === name);
      if (!pod) throw new Error(`no pod ${name} in lab ${s.name}`);
      const n = nodeOf(pod.node);
      if (pod.sandboxId) return criRemovePod(n, pod);
      if (n.guest) return guestRemovePod(n, pod);
      const d = await cni(n, 'DEL', pod, netconf(n, pod));
      await dropNetns(pod.netns);
      s.pods.splice(s.pods.indexOf(pod), 1);
      save(s);
      if (d.code !== 0) throw new Error(`CNI DEL ${name} -> ${d.code}: ${d.stdout} ${d.stderr}`);
    },
    spawn(nsName, what, cmd, args) {
      mkdirSync(join(s.dir, 'procs'), { recursive: true });
      const outFile = join(s.dir, 'procs', `${what}-${s.procs.length + 1}.out`);
      const p = spawnGroup(nsName, cmd, args, outFile);
      procs.set(p.pid, p);
      s.procs.push({ pid: p.pid, what, netns: nsName, outFile, cmd });
      save(s);
      return p;
    },
    async kill(p, signal = 'SIGTERM') {
      await endGroup(p, { signal, graceMs: 3000 });
      procs.delete(p.pid);
      s.procs = s.procs.filter((x) => x.pid !== p.pid);
      save(s);
    },
    async makeNetns(tag) {
      const name = `${s.prefix}-${tag}`;
      s.netns.push(name);
      save(s);
      return createNetns(name);
    },
    async destroy(opts = {}) {
      // A --cri lab: the sandboxes first (CNI DEL through containerd needs the agents), then the
      // containerds with their shims and pause processes, then what they left in host paths.
      if (s.cri) await destroyCri();
      for (const n of s.nodes) {
        const p = agentProc(n);
        if (p) await endGroup(p, { graceMs: 2000, mustContain: n.socket });
        delete n.agentPid;
      }
      for (const x of [...s.procs]) await endGroup(procs.get(x.pid) ?? x.pid, { graceMs: 2000, mustContain: x.cmd });
      s.procs = [];
      if (s.etcd) await endGroup(etcdProc ?? s.etcd.pid, { graceMs: 3000, mustContain: s.etcd.dataDir });
      for (const ns of [...s.netns].reverse()) await netns(ns).delete();
      s.netns = [];
      s.pods = [];
      if (!opts.keepDir) rmSync(s.dir, { recursive: true, force: true });
      else save(s);
    },
    agentLog(ref) {
      const n = nodeOf(ref);
      const read = (f: string) => {
        try {
          return readFileSync(f, 'utf8');
        } catch {
          return '';
        }
      };
      return `${read(n.logFile)}${read(n.outFile)}`;
    },
  };

  /** A pod as kubelet makes it: RunPodSandbox, then its IPs and netns from PodSandboxStatus. */
  const criAddPod = async (n: NodeState, name: string): Promise<PodState> => {
    const ctd = n.containerd;
    if (!ctd) throw new Error(`${n.name} has no containerd (a --cri lab)`);
    const uid = randomUUID();
    const cri = new CriClient(ctd.socket);
    try {
      const { id } = await cri.runPodSandbox({
        name,
        namespace: POD_NAMESPACE,
        uid,
        logDirectory: containerdPaths(ctd.dir).logDir,
        labels: { 'petrel.io/lab': s.name },
      });
      const pod: PodState = {
        name,
        node: n.name,
        netns: '',
        containerId: id,
        sandboxId: id,
        uid,
        ip: '',
        ip6: '',
        assignIpv4: true,
        assignIpv6: s.ipv6,
      };
      try {
        const st = await cri.status(id);
        if (st.state !== 'SANDBOX_READY') throw new Error(`sandbox ${id} of ${name}: ${st.state}`);
        if (!st.netnsPath?.startsWith('/var/run/netns/cni-'))
          throw new Error(`sandbox ${id} of ${name}: netns ${String(st.netnsPath)} is not containerd's`);
        pod.netns = basename(st.netnsPath);
        const addrs = [st.ip, ...st.additionalIps].filter(Boolean);
        pod.ip = addrs.find((a) => !a.includes(':')) ?? '';
        pod.ip6 = addrs.find((a) => a.includes(':')) ?? '';
      } catch (err) {
        await cri.stopPodSandbox(id).catch(() => undefined);
        await cri.removePodSandbox(id).catch(() => undefined);
        throw err;
      }
      s.pods.push(pod);
      save(s);
      return pod;
    } finally {
      cri.close();
    }
  };

  /** StopPodSandbox (CNI DEL) + RemovePodSandbox; the pod leaves the state even if they fail. */
  const criRemovePod = async (n: NodeState, pod: PodState): Promise<void> => {
    const id = pod.sandboxId as string;
    let failure: unknown;
    if (n.containerd) {
      const cri = new CriClient(n.containerd.socket);
      try {
        await cri.stopPodSandbox(id);
        await cri.removePodSandbox(id);
      } catch (err) {
        failure = err;
      } finally {
        cri.close();
      }
      await cleanSandboxPaths({
        id,
        containerdSocket: n.containerd.socket,
        network: LAB_NETWORK,
        netnsName: pod.netns,
      });
    }
    s.pods.splice(s.pods.indexOf(pod), 1);
    save(s);
    if (failure) throw failure;
  };

  const destroyCri = async () => {
    const cri = s.cri;
    if (!cri) return;
    await Promise.all(
      s.nodes.map(async (n) => {
        const ctd = n.containerd;
        if (!ctd) return;
        const pods = s.pods.filter((p) => p.node === n.name && p.sandboxId);
        if (pods.length > 0 && existsSync(ctd.socket)) {
          const client = new CriClient(ctd.socket);
          try {
            for (const p of pods) {
              const id = p.sandboxId as string;
              await client.stopPodSandbox(id, 30_000).catch(() => undefined);
              await client.removePodSandbox(id, 30_000).catch(() => undefined);
            }
          } finally {
            client.close();
          }
        }
        await stopLabContainerd(ctd);
        for (const p of pods)
          await cleanSandboxPaths({
            id: p.sandboxId as string,
            containerdSocket: ctd.socket,
            network: LAB_NETWORK,
            netnsName: p.netns,
          });
        await unmountUnder(ctd.dir);
        delete n.containerd;
      }),
    );
    s.pods = s.pods.filter((p) => !p.sandboxId);
    cleanEmptyHostDirs(cri.hostPathsBefore);
    save(s);
  };

  const guestStartAgent = async (n: NodeState, extraArgs: string[]) => {
    if (n.agentPid !== undefined) {
      const alive = await execInGuest(n, `kill -0 ${n.agentPid} 2>/dev/null`, 30_000);
      if (alive.code === 0) return;
    }
    const r = await execInGuest(n, startAgentScript(s, n, extraArgs), 180_000);
    const pid = /^pid (\d+)$/m.exec(r.output);
    if (r.code !== 0 || !pid) throw new Error(`${n.name} agent did not start (in its guest): ${r.output.slice(-3000)}`);
    n.agentPid = Number(pid[1]);
    save(s);
  };

  const guestCni = (n: NodeState, command: 'ADD' | 'DEL', pod: PodState) => ({
    command,
    pod,
    netconf: netconf(n, pod),
    plugin: join(s.pluginDir, 'petrel'),
    cniPath: `${s.pluginDir}:${REF_PLUGINS}`,
  });

  /** A new pod's record (addresses filled in from the CNI result). */
  const podRecord = (n: NodeState, name: string, netns: string, opts: AddPodOptions): PodState => {
    containerSeq++;
    return {
      name,
      node: n.name,
      netns,
      containerId: `${s.prefix}-${process.pid}-${containerSeq}`.replace(/[^A-Za-z0-9_.-]/g, '_'),
      ip: '',
      ip6: '',
      ...(opts.pools ? { pools: opts.pools } : {}),
      assignIpv4: opts.assignIpv4 ?? true,
      assignIpv6: opts.assignIpv6 ?? false,
    };
  };

  /** Fill a pod's addresses from its CNI result (JSON text) and record it. */
  const recordPod = (pod: PodState, result: string): PodState => {
    const res = JSON.parse(result) as { ips: { address: string }[] };
    const addrs = res.ips.map((x) => x.address.split('/')[0] ?? '');
    pod.ip = addrs.find((a) => !a.includes(':')) ?? '';
    pod.ip6 = addrs.find((a) => a.includes(':')) ?? '';
    s.pods.push(pod);
    save(s);
    return pod;
  };

  /** A pod in a guest: netns, CNI ADD and its echo server, in one script (guest-nodes.ts). */
  const guestAddPod = async (n: NodeState, name: string, opts: AddPodOptions): Promise<PodState> => {
    const pod = podRecord(n, name, `${s.prefix}-${name}`, opts);
    const r = await execInGuest(n, addPodScript(guestCni(n, 'ADD', pod), s.nodeExec, ECHO, PROBE_PORT), 180_000);
    const at = r.output.lastIndexOf('@@RESULT ');
    if (r.code !== 0 || at < 0) throw new Error(`CNI ADD ${name} on ${n.name} (guest) -> ${r.code}: ${r.output}`);
    return recordPod(pod, r.output.slice(at + 9));
  };

  const guestRemovePod = async (n: NodeState, pod: PodState): Promise<void> => {
    const r = await execInGuest(n, removePodScript(guestCni(n, 'DEL', pod)), 120_000).catch((err: Error) => ({
      code: -1,
      output: err.message,
    }));
    s.pods.splice(s.pods.indexOf(pod), 1);
    save(s);
    if (r.code !== 0) throw new Error(`CNI DEL ${pod.name} (guest) -> ${r.code}: ${r.output}`);
  };

  const dropNetns = async (name: string) => {
    await netns(name).delete();
    s.netns = s.netns.filter((x) => x !== name);
    save(s);
  };

  return c;
}

/** Lab bridges: STP and multicast snooping off (a fabric, not a switch with loops). */
const BRIDGE_TYPE = ['type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0'] as const;

/**
 * Builds the topology of `state` (fabric, router, nodes), starts etcd, creates the pools and runs
 * the setup commands, then starts the agents. On failure, destroys what was made and rethrows.
 */
export async function buildCluster(
  state: LabState,
  o: BuildOptions,
  save?: (s: LabState) => void,
): Promise<LabCluster> {
  const c = openCluster(state, save);
  const s = c.state;
  const say = o.progress ?? (() => {});
  const A = labAddresses(s.index);
  const v6 = s.ipv6;
  try {
    mkdirSync(s.dir, { recursive: true });
    say('fabric: bridge, etcd address, outside address');
    const fabric = await c.makeNetns('fabric');
    await fabric.ip('link', 'add', 'br0', 'address', bridgeMac(s.index, 1), ...BRIDGE_TYPE);
    await fabric.ip('addr', 'add', `${A.fabricIp}/24`, 'dev', 'br0');
    await fabric.ip('link', 'set', 'br0', 'up');
    // (On lo: this kernel may lack the dummy driver.)
    await fabric.ip('addr', 'add', `${A.outsideIp}/32`, 'dev', 'lo');
    if (v6) {
      await fabric.ip('addr', 'add', `${A.fabricIp6}/64`, 'dev', 'br0', 'nodad');
      await fabric.ip('addr', 'add', `${A.outsideIp6}/128`, 'dev', 'lo', 'nodad');
    }

    const routed = o.routerNodes ?? 0;
    let router: Netns | undefined;
    if (routed > 0 && !o.guests) {
      say('router: second subnet');
      router = await c.makeNetns('router');
      s.router = router.name;
      await fabric.ip('link', 'add', 'vrouter', 'type', 'veth', 'peer', 'name', 'up0', 'netns', router.name);
      await fabric.ip('link', 'set', 'vrouter', 'master', 'br0', 'up');
      await router.ip('addr', 'add', `${A.routerIp}/24`, 'dev', 'up0');
      await router.ip('link', 'set', 'up0', 'up');
      await router.ip('link', 'add', 'br1', 'address', bridgeMac(s.index, 2), ...BRIDGE_TYPE);
      await router.ip('addr', 'add', `${A.routedGw}/24`, 'dev', 'br1');
      await router.ip('link', 'set', 'br1', 'up');
      await router.ip('route', 'add', 'default', 'via', A.fabricIp);
      await router.sysctl('net.ipv4.ip_forward', '1');
      await fabric.ip('route', 'add', A.routedSubnet, 'via', A.routerIp);
      if (v6) {
        await router.sysctl('net.ipv6.conf.all.forwarding', '1');
        await router.ip('addr', 'add', `${A.routerIp6}/64`, 'dev', 'up0', 'nodad');
        await router.ip('addr', 'add', `${A.routedGw6}/64`, 'dev', 'br1', 'nodad');
        await router.ip('-6', 'route', 'add', 'default', 'via', A.fabricIp6);
        await fabric.ip('-6', 'route', 'add', A.routedSubnet6, 'via', A.routerIp6);
      }
    }

    say('etcd');
    const dataDir = join(s.dir, 'etcd');
    const endpoint = `http://${A.fabricIp}:2379`;
    s.etcd = {
      pid: 0,
      endpoint,
      dataDir,
      outFile: join(s.dir, 'etcd.out'),
      argv: etcdArgs(dataDir, endpoint, `http://${A.fabricIp}:2380`),
    };
    await c.startEtcd();

    const logLevel = o.logLevel ?? 'info';
    const total = o.nodes + routed;
    const listen = o.statusListen === 'any' ? '0.0.0.0' : '127.0.0.1';
    const agentFlags = (node: NodeState, logFile: string) => [
      join(s.binDir, 'petrel-agent'),
      '--node-name',
      node.name,
      '--etcd-endpoints',
      endpoint,
      '--socket',
      node.socket,
      '--ip',
      node.cidr,
      '--ip6',
      node.cidr6 ?? 'none',
      '--status-listen',
      `${listen}:${STATUS_PORT}`,
      '--log-level',
      logLevel,
      '--log-file',
      logFile,
      ...(o.leaseTtlSec ? ['--node-lease-ttl', String(o.leaseTtlSec)] : []),
      ...(o.agentArgs?.(node) ?? []),
    ];
    if (o.guests) {
      await guestNodes(c, o, total, agentFlags, say);
      save?.(s);
    } else say(`${total} node namespaces`);
    for (let k = 1; k <= total && !o.guests; k++) {
      const subnet: 'fabric' | 'routed' = k <= o.nodes ? 'fabric' : 'routed';
      const name = `node-${k}`;
      const ns = await c.makeNetns(name);
      const addr = nodeAddresses(s.index, k, subnet === 'routed');
      const ip6 = v6 ? addr.ip6 : undefined;
      const bridgeNs = subnet === 'fabric' ? fabric : (router as Netns);
      const port = `vn${k}`;
      await bridgeNs.ip('link', 'add', port, 'type', 'veth', 'peer', 'name', UPLINK, 'netns', ns.name);
      await bridgeNs.ip('link', 'set', port, 'master', subnet === 'fabric' ? 'br0' : 'br1', 'up');
      await ns.ip('addr', 'add', `${addr.ip}/24`, 'dev', UPLINK);
      await ns.ip('link', 'set', UPLINK, 'up');
      if (subnet === 'fabric') {
        await ns.ip('route', 'add', 'default', 'via', A.fabricIp);
        if (routed > 0) await ns.ip('route', 'add', A.routedSubnet, 'via', A.routerIp);
      } else {
        await ns.ip('route', 'add', 'default', 'via', A.routedGw);
      }
      if (ip6) {
        await ns.ip('addr', 'add', `${ip6}/64`, 'dev', UPLINK, 'nodad');
        if (subnet === 'fabric') {
          await ns.ip('-6', 'route', 'add', 'default', 'via', A.fabricIp6);
          if (routed > 0) await ns.ip('-6', 'route', 'add', A.routedSubnet6, 'via', A.routerIp6);
        } else {
          await ns.ip('-6', 'route', 'add', 'default', 'via', A.routedGw6);
        }
      }
      const dir = join(s.dir, name);
      mkdirSync(dir, { recursive: true });
      const node: NodeState = {
        name,
        index: k,
        netns: ns.name,
        ip: addr.ip,
        cidr: `${addr.ip}/24`,
        ...(ip6 ? { ip6, cidr6: `${ip6}/64` } : {}),
        subnet,
        asNumber: CLUSTER_AS,
        socket: join(dir, 'agent.sock'),
        logFile: join(dir, 'agent.log'),
        outFile: join(dir, 'agent.out'),
        statusUrl: o.statusListen === 'any' ? `http://${addr.ip}:${STATUS_PORT}` : `http://127.0.0.1:${STATUS_PORT}`,
        agentArgv: [],
      };
      node.agentArgv = agentFlags(node, node.logFile);
      setAs(node);
      s.nodes.push(node);
      save?.(s);
    }

    if (s.pools.length > 0) say(`pools: ${s.pools.map((p) => `${p.name} ${p.cidr}`).join(', ')}`);
    for (const p of s.pools) {
      const args = ['ipam', 'pool', 'add', p.name, '--cidr', p.cidr];
      if (p.blockSize) args.push('--block-size', String(p.blockSize));
      if (p.ipipMode) args.push('--ipip-mode', p.ipipMode);
      if (p.vxlanMode) args.push('--vxlan-mode', p.vxlanMode);
      if (p.natOutgoing) args.push('--nat-outgoing');
      if (p.nodeSelector) args.push('--node-selector', p.nodeSelector);
      await c.petrelctlOk(...args);
    }
    for (const cmd of o.setup ?? []) await c.petrelctlOk(...cmd);

    if (o.startAgents !== false) {
      say(
        `starting ${total} petrel-agent${total === 1 ? '' : 's'}${o.guests ? ' (in their guests, in parallel)' : ''}`,
      );
      if (o.guests) await settleAll(s.nodes.map((n) => c.startAgent(n.name)));
      else for (const n of s.nodes) await c.startAgent(n.name);
    }
    if (o.cri) {
      s.cri = { network: LAB_NETWORK, hostPathsBefore: hostPathsBefore() };
      save?.(s);
      say(`containerd (CRI) in each of ${total} node namespaces: pause image, conflist ${LAB_NETWORK}`);
      const pauseTar = await buildPauseImage(join(s.dir, 'cri'));
      // All settle before a failure is acted on (destroy must not race a containerd still starting).
      const started = await Promise.allSettled(
        s.nodes.map((n) =>
          startLabContainerd({
            dir: join(s.dir, n.name, 'containerd'),
            netnsPath: `/var/run/netns/${n.netns}`,
            plugins: { petrel: join(s.pluginDir, 'petrel'), 'petrel-ipam': join(s.pluginDir, 'petrel-ipam') },
            conflist: labConflist({ network: LAB_NETWORK, agentSocket: n.socket, ipv6: s.ipv6 }),
            pauseTar,
            onStarted: (ctd) => {
              n.containerd = ctd;
              save?.(s);
            },
          }),
        ),
      );
      const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    return c;
  } catch (err) {
    await c.destroy();
    throw err;
  }
}

/** The node's AS from its agent flags (`--as N`), else the cluster's. */
function setAs(node: NodeState): void {
  const asAt = node.agentArgv.indexOf('--as');
  if (asAt >= 0) node.asNumber = Number(node.agentArgv[asAt + 1]);
}

/** Waits for every promise; then rethrows the first failure (nothing still running when the caller cleans up). */
async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * The nodes as qemu guests (guest-nodes.ts): the keeper boots one per node on the fabric bridge
 * (the routed nodes on a second subnet of the same bridge, the fabric routing between the two),
 * and the node records point into the guests.
 */
async function guestNodes(
  c: LabCluster,
  o: BuildOptions,
  total: number,
  agentFlags: (node: NodeState, logFile: string) => string[],
  say: (msg: string) => void,
): Promise<void> {
  const s = c.state;
  const A = labAddresses(s.index);
  const routed = o.routerNodes ?? 0;
  const addrs = Array.from({ length: total }, (_, i) => {
    const k = i + 1;
    const isRouted = k > o.nodes;
    return { k, isRouted, ip: nodeAddresses(s.index, k, isRouted).ip, gateway: isRouted ? A.routedGw : A.fabricIp };
  });
  const spec: GuestsSpec = {
    netns: s.fabric,
    bridgeCidr: `${A.fabricIp}/24`,
    extraBridgeCidrs: routed > 0 ? [`${A.routedGw}/24`] : [],
    nodes: addrs.map((a) => ({ cidr: `${a.ip}/24`, gateway: a.gateway })),
    memMb: o.guests?.memMb ?? 768,
    bootTimeoutMs: o.guests?.bootTimeoutMs ?? 240_000,
    runDirParent: s.dir,
    ready: join(s.dir, 'guests.ready'),
    error: join(s.dir, 'guests.error'),
  };
  const specFile = join(s.dir, 'guests.spec.json');
  writeFileSync(specFile, JSON.stringify(spec, null, 2));
  say(
    `${total} qemu guests (real kernel with ipip; ${spec.memMb} MiB each) on the fabric bridge${routed > 0 ? `, ${routed} behind the fabric's router (${A.routedSubnet})` : ''}`,
  );
  const keeper = c.spawn(s.fabric, 'guests', s.nodeExec, [join(s.binDir, 'petrelctl'), 'lab', 'keep-guests', specFile]);
  s.guests = { runDir: '', keeperPid: keeper.pid };
  const ready = await waitGuestsReady(spec, keeper.exited, keeper.output);
  s.guests.runDir = ready.runDir;
  say(`guests booted: ${ready.guests.map((g) => `${g.name} ${(g.bootMs / 1000).toFixed(1)} s`).join(', ')}`);
  for (const a of addrs) {
    const g = ready.guests[a.k - 1];
    if (!g) throw new Error(`guest ${a.k} missing from ${spec.ready}`);
    const name = `node-${a.k}`;
    const node: NodeState = {
      name,
      index: a.k,
      netns: '',
      ip: a.ip,
      cidr: `${a.ip}/24`,
      subnet: a.isRouted ? 'routed' : 'fabric',
      asNumber: CLUSTER_AS,
      socket: GUEST_AGENT_SOCKET,
      logFile: join(g.dir, 'agent.log'),
      outFile: join(g.dir, 'agent.out'),
      statusUrl: `http://${a.ip}:${STATUS_PORT}`,
      agentArgv: [],
      guest: { name: g.name, dir: g.dir, pid: g.pid, tap: g.tap },
    };
    node.agentArgv = agentFlags(node, guestPath(node, 'agent.log'));
    setAs(node);
    s.nodes.push(node);
  }
}

/** etcd's flags for a single-member cluster on `clientUrl` with data in `dataDir`. */
export function etcdArgs(
  dataDir: string,
  clientUrl: string,
  peerUrl: string,
  tls?: { ca: string; cert: string; key: string },
): string[] {
  return [
    '--name',
    'petrel-test',
    '--data-dir',
    dataDir,
    '--listen-client-urls',
    clientUrl,
    '--advertise-client-urls',
    clientUrl,
    '--listen-peer-urls',
    peerUrl,
    '--initial-advertise-peer-urls',
    peerUrl,
    '--initial-cluster',
    `petrel-test=${peerUrl}`,
    '--log-level',
    'error',
    ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth'] : []),
  ];
}
