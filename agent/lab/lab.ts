/**
 * Shell: `petrelctl lab up|status|exec|add-pod|rm-pod|kill-agent|start-agent|down`. A lab is a
 * cluster (cluster.ts) whose state lives in /run/petrel-lab/NAME/state.json (PETREL_LAB_DIR
 * overrides the root): the processes outlive `lab up`, and every later command reads the state,
 * acts, and writes it back. `down` removes exactly what the state lists, plus the lab directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { findTool } from '../common/tool-path.js';
import { buildCluster, initialState, type LabCluster, openCluster } from './cluster.js';
import { startExternalRouter } from './external.js';
import { execInGuest, execScript, keepGuests } from './guest-nodes.js';
import {
  freeLabIndex,
  LabConfigError,
  type LabMode,
  labPrefix,
  nextPodName,
  poolsFor,
  validateLabName,
} from './layout.js';
import { measureLab } from './measure.js';
import { type LabSummary, renderSummary } from './report.js';
import { listNetns, pidAlive } from './sh.js';
import { findNode, type LabState, type NodeState, type PodState, parseState, serializeState } from './state.js';

export function labRoot(): string {
  return process.env.PETREL_LAB_DIR ?? '/run/petrel-lab';
}

export interface LabIo {
  out(line: string): void;
  err(line: string): void;
  /** Monotonic ms (for progress lines). */
  now(): number;
}

function stateFile(name: string): string {
  return join(labRoot(), validateLabName(name), 'state.json');
}

/** Writes state.json atomically (temp file + rename). */
function saveState(s: LabState): void {
  const f = join(s.dir, 'state.json');
  mkdirSync(s.dir, { recursive: true });
  writeFileSync(`${f}.tmp`, serializeState(s));
  renameSync(`${f}.tmp`, f);
}

/**
 * Runs `fn` holding lab NAME's lock (NAME/lock, made with O_EXCL, holding our PID): commands that
 * change the state (add-pod, rm-pod, kill-agent, start-agent, down) read, change and write
 * state.json under it, so two at once do not lose each other's pods. A lock whose PID is gone is
 * stale and taken over.
 */
export async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const dir = join(labRoot(), validateLabName(name));
  return holdLock(
    join(dir, 'lock'),
    `lab ${name}`,
    () => {
      if (!existsSync(dir)) throw new LabConfigError(`no lab ${name} (${dir} does not exist)`);
    },
    fn,
  );
}

/** Runs `fn` holding the lock file `lock` (O_EXCL, our PID; a dead holder's lock is taken over); `check` runs before each try. */
async function holdLock<T>(lock: string, what: string, check: () => void, fn: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + 120_000;
  for (;;) {
    check();
    try {
      writeFileSync(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(lock, 'utf8'));
      } catch {
        continue; // released meanwhile
      }
      // An empty lock is one being written (open O_EXCL, then the PID): not stale unless it stays
      // empty for seconds (its maker died in between). Taking it over at once let two commands
      // hold the lock, and parallel add-pods lost a pod from state.json.
      const stale = Number.isInteger(holder) && holder > 0 ? !pidAlive(holder) : lockAgeMs(lock) > 5000;
      if (stale) {
        rmSync(lock, { force: true });
        continue;
      }
      if (performance.now() > deadline) throw new LabConfigError(`${what} is busy (pid ${holder} holds ${lock})`);
      await delay(50);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      if (readFileSync(lock, 'utf8') === String(process.pid)) rmSync(lock, { force: true });
    } catch {
      /* the directory went with down */
    }
  }
}

function lockAgeMs(f: string): number {
  try {
    return Date.now() - statSync(f).mtimeMs;
  } catch {
    return 0;
  }
}

export function readLab(name: string): LabState {
  const f = stateFile(name);
  if (!existsSync(f)) throw new LabConfigError(`no lab ${name} (${f} does not exist): petrelctl lab up --name ${name}`);
  return parseState(readFileSync(f, 'utf8'));
}

/** The labs that exist (names of readable state files). */
export function listLabs(): LabState[] {
  const root = labRoot();
  if (!existsSync(root)) return [];
  const out: LabState[] = [];
  for (const d of readdirSync(root)) {
    try {
      out.push(parseState(readFileSync(join(root, d, 'state.json'), 'utf8')));
    } catch {
      /* not a lab, or a broken one: its index stays free */
    }
  }
  return out;
}

/** Where bin/petrel-agent and bin/petrelctl are: PETREL_BIN_DIR, else beside this petrelctl. */
function binDir(): string {
  if (process.env.PETREL_BIN_DIR) return resolve(process.env.PETREL_BIN_DIR);
  const self = process.argv[1] ? dirname(resolve(process.argv[1])) : '';
  for (const d of [self, join(self, '..', 'bin'), dirname(process.execPath)])
    if (existsSync(join(d, 'petrel-agent')) && existsSync(join(d, 'petrelctl'))) return d;
  throw new LabConfigError('cannot find bin/petrel-agent (npm run build), or set PETREL_BIN_DIR');
}

/** The CNI plugins: PETREL_CNI_BIN_DIR, else dist-sea/ beside bin/ when packaged, else bin/. */
function pluginDir(bin: string): string {
  if (process.env.PETREL_CNI_BIN_DIR) return resolve(process.env.PETREL_CNI_BIN_DIR);
  const sea = join(bin, '..', 'dist-sea');
  return existsSync(join(sea, 'petrel')) && existsSync(join(sea, 'petrel-ipam')) ? resolve(sea) : bin;
}

/** The Node executable that runs the agent bundle (this one, unless petrelctl is a single executable). */
function nodeExec(): string {
  return basename(process.execPath).startsWith('node') ? process.execPath : 'node';
}

export interface UpOptions {
  name: string;
  nodes: number;
  mode: LabMode;
  podsPerNode: number;
  ipv6: boolean;
  /** A BIRD 2 router peering with every node (external.ts). */
  externalRouter?: boolean;
  /** How long to wait for every session and every pod pair before giving up (ms). */
  settleMs?: number;
  /** Serve `petrelctl ui` for the lab on this loopback HOST:PORT (e.g. 127.0.0.1:9180). */
  ui?: string;
  /** A containerd per node: pods are CRI pod sandboxes (containerd calls the plugin). */
  cri?: boolean;
}

export async function labUp(o: UpOptions, io: LabIo): Promise<number> {
  const t0 = io.now();
  const say = (m: string) => io.out(`[${((io.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${m}`);
  validateLabName(o.name);
  if (process.getuid?.() !== 0) throw new LabConfigError('lab up needs root (it creates network namespaces)');
  // This machine's kernel has no ipip: IPIP nodes are real-kernel qemu guests (guest-nodes.ts).
  const guests = o.mode === 'ipip' || o.mode === 'ipip-crosssubnet';
  if (guests) {
    const not = [o.cri && '--cri', o.ipv6 && '--ipv6', o.externalRouter && '--external-router'].filter(Boolean);
    if (not.length > 0)
      throw new LabConfigError(`--mode ${o.mode} (nodes are qemu guests) does not take ${not.join(', ')} yet`);
    if (!findTool('qemu-system-x86_64'))
      throw new LabConfigError(`--mode ${o.mode} needs qemu-system-x86_64 (apt-get install qemu-system-x86)`);
  }
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 50) throw new LabConfigError('--nodes: 1..50');
  if (!Number.isInteger(o.podsPerNode) || o.podsPerNode < 0 || o.podsPerNode > 50)
    throw new LabConfigError('--pods-per-node: 0..50');
  const dir = join(labRoot(), o.name);
  const bin = binDir();
  // Two `lab up` at once: the name check, the index and the first state.json under one lock, or
  // both take one index (or one name).
  mkdirSync(labRoot(), { recursive: true });
  const state = await holdLock(
    join(labRoot(), '.up.lock'),
    'lab up',
    () => {},
    async () => {
      if (existsSync(join(dir, 'state.json')))
        throw new LabConfigError(`lab ${o.name} exists: petrelctl lab down --name ${o.name} first`);
      const s = initialState({
        name: o.name,
        index: freeLabIndex(listLabs().map((l) => l.index)),
        prefix: labPrefix(o.name),
        dir,
        mode: o.mode,
        ipv6: o.ipv6,
        pools: poolsFor(o.mode, o.ipv6),
        nodeExec: nodeExec(),
        binDir: bin,
        // In a guest the plugins are the Node bundles: the single executables' runtime may need CPU
        // features the emulated CPU lacks.
        pluginDir: guests ? bin : pluginDir(bin),
        now: new Date().toISOString(),
      });
      saveState(s);
      return s;
    },
  );
  // Interrupted (Ctrl-C): what was made so far is in state.json; `lab down` removes it.
  const onSigint = () => {
    io.err(`\ninterrupted: petrelctl lab down --name ${o.name} removes what was made`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  // CrossSubnet shows both paths: with 3 or more nodes the last one is on another subnet.
  const routerNodes = o.mode === 'ipip-crosssubnet' && o.nodes >= 3 ? 1 : 0;
  say(
    `lab ${o.name}: ${o.nodes} nodes${guests ? ' (qemu guests)' : ''}, mode ${o.mode}${o.ipv6 ? ', IPv6' : ''}${o.cri ? ', CRI (containerd)' : ''}, fabric 10.99.${state.index}.0/24${routerNodes ? ` + 10.98.${state.index}.0/24` : ''}, state ${dir}`,
  );
  let c: LabCluster;
  try {
    c = await buildCluster(
      state,
      {
        nodes: o.nodes - routerNodes,
        routerNodes,
        statusListen: 'any',
        progress: say,
        cri: o.cri === true,
        ...(guests ? { guests: {} } : {}),
      },
      saveState,
    );
  } catch (err) {
    say('failed: removing what was made');
    throw err;
  }
  try {
    if (o.externalRouter) {
      say('external router: BIRD 2, eBGP with every node');
      await startExternalRouter(c, (f, text) => writeFileSync(f, text));
      saveState(c.state);
    }
    if (o.podsPerNode > 0)
      say(
        `${o.podsPerNode * o.nodes} pods ${o.cri ? "as CRI pod sandboxes of each node's containerd" : 'through the petrel CNI plugin'}`,
      );
    // The nodes in parallel (each node's pods in turn: names are per node); all settle before a
    // failure is acted on, so nothing is still being added while the lab is removed.
    const added = await Promise.allSettled(
      c.state.nodes.map(async (n) => {
        for (let j = 0; j < o.podsPerNode; j++) {
          const name = nextPodName(
            n.index,
            c.state.pods.map((p) => p.name),
          );
          await c.addPod(n.name, name, { assignIpv4: true, assignIpv6: o.ipv6 });
        }
      }),
    );
    const failed = added.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    say('failed: removing what was made');
    await c.destroy();
    throw err;
  }
  process.removeListener('SIGINT', onSigint);
  say('waiting for BGP sessions and pod-to-pod TCP');
  const summary = await settle(c, o.settleMs ?? 60_000, io);
  say(summary.healthy ? 'up' : 'up, NOT healthy');
  const uiUrl = o.ui ? await startLabUi(c, o.ui, say) : undefined;
  io.out('');
  io.out(renderSummary(summary));
  if (uiUrl) io.out(`\nUI: ${uiUrl}`);
  io.out('');
  io.out(
    `next: petrelctl lab status --name ${o.name} | lab exec --name ${o.name} node-1 -- petrelctl node status | lab down --name ${o.name}`,
  );
  return summary.healthy ? 0 : 1;
}

/**
 * `lab up --ui`: the UI runs inside the fabric netns (where etcd and every agent's status endpoint
 * are) on a Unix socket in the lab's directory, and `ui forward` relays a loopback port of the root
 * netns to it (Unix sockets cross namespaces; no link or address is added to the root netns). Both
 * are lab processes: `lab down` ends them and removes the socket with the directory.
 */
async function startLabUi(c: LabCluster, listen: string, say: (m: string) => void): Promise<string> {
  if (!/^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/.test(listen))
    throw new LabConfigError(`--ui ${JSON.stringify(listen)}: a loopback HOST:PORT (e.g. 127.0.0.1:9180)`);
  const s = c.state;
  if (!s.etcd) throw new LabConfigError('lab has no etcd');
  const sock = join(s.dir, 'ui.sock');
  const ctl = join(s.binDir, 'petrelctl');
  say(`UI: petrelctl ui in ${s.fabric} on unix:${sock}, relayed from ${listen}`);
  const inner = c.spawn(s.fabric, 'ui', s.nodeExec, [
    ctl,
    '--etcd-endpoints',
    s.etcd.endpoint,
    'ui',
    '--listen',
    `unix:${sock}`,
  ]);
  const until = async (what: string, p: { exited(): boolean; output(): string }, ok: () => boolean) => {
    for (let i = 0; i < 300; i++) {
      if (ok()) return;
      if (p.exited()) throw new Error(`${what} exited: ${p.output().slice(-500)}`);
      await delay(50);
    }
    throw new Error(`${what} did not start in 15 s: ${p.output().slice(-500)}`);
  };
  await until('petrelctl ui', inner, () => existsSync(sock));
  const fwd = c.spawn('', 'ui-forward', s.nodeExec, [ctl, 'ui', 'forward', '--listen', listen, '--to', `unix:${sock}`]);
  await until('petrelctl ui forward', fwd, () => fwd.output().includes('petrelctl ui forward: http://'));
  return /http:\/\/\S+/.exec(fwd.output())?.[0] ?? `http://${listen}`;
}

/** Measures until healthy or `ms` passed; the last measurement. */
async function settle(c: LabCluster, ms: number, io: LabIo): Promise<LabSummary> {
  const deadline = io.now() + ms;
  for (;;) {
    const sessionsUp = await measureLab(c, { path: false, connectTimeoutMs: 1500 });
    if (sessionsUp.healthy || io.now() > deadline) {
      if (!sessionsUp.healthy) return measureLab(c);
      const full = await measureLab(c);
      if (full.healthy || io.now() > deadline) return full;
    }
  }
}

export async function labStatus(name: string, json: boolean, io: LabIo): Promise<number> {
  const c = openCluster(readLab(name));
  const s = await measureLab(c);
  io.out(json ? JSON.stringify(s, null, 2) : renderSummary(s));
  return s.healthy ? 0 : 1;
}

/** Runs CMD in a node's or pod's netns (stdio inherited); its exit status. */
export async function labExec(name: string, target: string, cmd: string[]): Promise<number> {
  const s = readLab(name);
  const node = findNode(s, target);
  const pod = s.pods.find((p) => p.name === target);
  const ns = node?.netns ?? pod?.netns;
  if (!node && !pod) throw new LabConfigError(`no node or pod ${target} in lab ${name}`);
  if (cmd.length === 0) throw new LabConfigError('lab exec NODE|POD -- CMD [ARGS...]');
  const labEnv = {
    PETREL_ETCD_ENDPOINTS: s.etcd?.endpoint ?? '',
    ETCDCTL_ENDPOINTS: s.etcd?.endpoint ?? '',
    ETCDCTL_API: '3',
    PETREL_LAB: name,
  };
  const host = node ?? findNode(s, pod?.node ?? '');
  if (host?.guest)
    return labExecGuest(host, cmd, { PATH: `${s.binDir}:/usr/sbin:/usr/bin:/sbin:/bin`, ...labEnv }, pod);
  if (!ns) throw new LabConfigError(`no namespace for ${target} in lab ${name}`);
  const env = { ...process.env, PATH: `${s.binDir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`, ...labEnv };
  const r = spawnSync('ip', ['netns', 'exec', ns, ...cmd], { stdio: 'inherit', env });
  return r.status ?? 1;
}

/** `lab exec` on a guest node (or a pod in one): through its command queue; output when it ends. */
async function labExecGuest(
  n: NodeState,
  cmd: string[],
  env: Record<string, string>,
  pod: PodState | undefined,
): Promise<number> {
  const r = await execInGuest(n, execScript(cmd, env, pod?.netns), 600_000);
  process.stdout.write(r.output);
  return r.code;
}

/** At most this many pods per `lab add-pod` (each is a netns and a CNI ADD). */
const MAX_ADD = 250;

/**
 * `count` pods on one node through the plugin (ADD), or in a --cri lab through the node's
 * containerd (RunPodSandbox), one after another; prints each as it is made.
 */
export async function labAddPod(name: string, nodeRef: string, io: LabIo, count = 1): Promise<number> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_ADD)
    throw new LabConfigError(`--count must be 1..${MAX_ADD}, got ${count}`);
  return withLock(name, async () => {
    const s = readLab(name);
    const n = findNode(s, nodeRef);
    if (!n) throw new LabConfigError(`no node ${nodeRef} in lab ${name}`);
    const c = openCluster(s, saveState);
    for (let i = 0; i < count; i++) {
      const pod = await c.addPod(
        n.name,
        nextPodName(
          n.index,
          s.pods.map((p) => p.name),
        ),
        {
          assignIpv4: true,
          assignIpv6: s.ipv6,
        },
      );
      io.out(`${pod.name} on ${pod.node}: ${[pod.ip, pod.ip6].filter(Boolean).join(',')}`);
    }
    return 0;
  });
}

/**
 * Removes pods (CNI DEL, then the netns; in a --cri lab StopPodSandbox + RemovePodSandbox), in order;
 * every name is checked before any is removed.
 */
export async function labRmPod(name: string, pods: string[], io: LabIo): Promise<number> {
  return withLock(name, async () => {
    const s = readLab(name);
    const unknown = pods.filter((p) => !s.pods.some((x) => x.name === p));
    if (unknown.length > 0) throw new LabConfigError(`no pod ${unknown.join(', ')} in lab ${name}`);
    const c = openCluster(s, saveState);
    for (const pod of new Set(pods)) {
      await c.removePod(pod);
      io.out(`${pod} removed`);
    }
    return 0;
  });
}

export async function labKillAgent(name: string, nodeRef: string, io: LabIo): Promise<number> {
  return withLock(name, async () => {
    const c = openCluster(readLab(name), saveState);
    const n = c.node(nodeRef);
    const pid = n.agentPid;
    if (pid === undefined) {
      io.out(`${n.name}: agent not running`);
      return 0;
    }
    await c.stopAgent(n.name, 'SIGKILL');
    io.out(`${n.name}: agent pid ${pid} killed (SIGKILL)`);
    return 0;
  });
}

export async function labStartAgent(name: string, nodeRef: string, io: LabIo): Promise<number> {
  return withLock(name, async () => {
    const c = openCluster(readLab(name), saveState);
    const n = c.node(nodeRef);
    await c.startAgent(n.name);
    io.out(`${n.name}: agent pid ${n.agentPid} started`);
    return 0;
  });
}

/** Stops the lab's etcd (SIGTERM, data kept), waits `downMs`, starts it again on the same address and data. */
export async function labRestartEtcd(name: string, downMs: number, io: LabIo): Promise<number> {
  return withLock(name, async () => {
    const c = openCluster(readLab(name), saveState);
    await c.stopEtcd();
    io.out(`etcd stopped${downMs > 0 ? `; starting again in ${downMs} ms` : ''}`);
    if (downMs > 0) await delay(downMs);
    await c.startEtcd();
    io.out(`etcd started (pid ${c.state.etcd?.pid})`);
    return 0;
  });
}

/** `lab keep-guests SPEC` (started by lab up, not by hand): holds a guest lab's qemu guests. */
export function labKeepGuests(spec: string): Promise<number> {
  return keepGuests(spec);
}

/** Removes the lab: its processes (by PID), namespaces and directory. A lab that does not exist: 0. */
export async function labDown(name: string, io: LabIo): Promise<number> {
  validateLabName(name);
  if (!existsSync(join(labRoot(), name))) {
    io.out(`no lab ${name}`);
    return 0;
  }
  return withLock(name, async () => {
    const dir = join(labRoot(), name);
    let s: LabState | undefined;
    try {
      s = readLab(name);
    } catch (err) {
      if (!existsSync(dir)) {
        io.out(`no lab ${name}`);
        return 0;
      }
      io.err(`lab ${name}: ${(err as Error).message}; deleting its namespaces (${labPrefix(name)}-*) and ${dir}`);
    }
    if (s) {
      await openCluster(s, saveState).destroy();
    } else {
      const prefix = `${labPrefix(name)}-`;
      for (const ns of listNetns().filter((n) => n.startsWith(prefix))) spawnSync('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
    io.out(`lab ${name} down`);
    return 0;
  });
}
