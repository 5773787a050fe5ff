/**
 * A private containerd 1.6 (CRI plugin on) inside a node's network namespace: for `petrelctl lab up
 * --cri` (one per lab node, a detached process group recorded in state.json) and for the tests
 * (test/helpers/containerd.ts). Recipe: shared/reference/cni.md §8.
 *
 *  - Started with `nsenter --net=<node netns>` (not `ip netns exec`, which remounts /sys and would
 *    hide the cgroup mounts runc needs); nsenter execs containerd, so the PID is containerd's. Own
 *    root, state, socket and CNI conf/bin dirs; `restrict_oom_score_adj` because root here lacks
 *    CAP_SYS_RESOURCE.
 *  - The sandbox image is a static `pause` built here with gcc and imported as an OCI layout with
 *    `ctr images import` (no registry).
 *  - The conflist is written before containerd starts (a file moved in later is ignored).
 *  - containerd and its shims still use shared host paths: /run/containerd/{s,runc/k8s.io},
 *    /var/run/netns/cni-* and /var/lib/cni/results. cleanSandboxPaths() removes one sandbox's.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { endGroup, type Proc, pidAlive, pidCmdline, run, runOk, spawnGroup, waitFor } from '../sh.js';
import { CriClient } from './client.js';

export const PAUSE_IMAGE = 'localhost/petrel-test/pause:1.0';

const PAUSE_C = `/* Sandbox holder (lab and tests): waits for signals, exits on INT/TERM, reaps children. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void on_term(int sig) { (void)sig; _exit(0); }
static void on_child(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  signal(SIGCHLD, on_child);
  for (;;) pause();
  return 0;
}
`;

function sha256File(p: string, data: Buffer | string): { digest: string; size: number } {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  writeFileSync(p, buf);
  return { digest: createHash('sha256').update(buf).digest('hex'), size: buf.length };
}

/** Builds the pause image as an OCI layout tarball; returns its path. */
export async function buildPauseImage(dir: string): Promise<string> {
  const w = join(dir, 'pause-build');
  mkdirSync(join(w, 'rootfs'), { recursive: true });
  mkdirSync(join(w, 'oci', 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(w, 'pause.c'), PAUSE_C);
  await runOk('gcc', ['-static', '-Os', '-s', '-o', join(w, 'rootfs', 'pause'), join(w, 'pause.c')]);
  await runOk('tar', [
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--mtime=@0',
    '-C',
    join(w, 'rootfs'),
    '-cf',
    join(w, 'layer.tar'),
    'pause',
  ]);
  const blob = (name: string, data: Buffer | string) => {
    const tmp = join(w, name);
    const d = sha256File(tmp, data);
    writeFileSync(join(w, 'oci', 'blobs', 'sha256', d.digest), typeof data === 'string' ? data : data);
    return d;
  };
  const layer = blob('layer.blob', readFileSync(join(w, 'layer.tar')));
  const config = blob(
    'config.json',
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Entrypoint: ['/pause'], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layer.digest}`] },
    }),
  );
  const manifest = blob(
    'manifest.json',
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: `sha256:${config.digest}`,
        size: config.size,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layer.digest}`, size: layer.size },
      ],
    }),
  );
  writeFileSync(join(w, 'oci', 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(w, 'oci', 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${manifest.digest}`,
          size: manifest.size,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'io.containerd.image.name': PAUSE_IMAGE, 'org.opencontainers.image.ref.name': '1.0' },
        },
      ],
    }),
  );
  const tar = join(dir, 'pause-oci.tar');
  await runOk('tar', [
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '-C',
    join(w, 'oci'),
    '-cf',
    tar,
    'oci-layout',
    'index.json',
    'blobs',
  ]);
  rmSync(w, { recursive: true, force: true });
  return tar;
}

/**
 * A containerd 1.6 config.toml for one test containerd: its own root, state and sockets under
 * `dir`, the CRI plugin with CNI from `binDir` / `confDir`, runc, overlayfs, the offline pause image.
 */
export function containerdConfig(o: { dir: string; socket: string; binDir: string; confDir: string }): string {
  const { socket, binDir, confDir } = o;
  return `version = 2
root = "${o.dir}/root"
state = "${o.dir}/state"
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${binDir}"
    conf_dir = "${confDir}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
`;
}

/** Where the CNI plugins' loopback is (containerd sets up the pod's lo through it). */
export const LOOPBACK_PLUGIN = '/usr/lib/cni/loopback';
/** The CRI namespace of containerd (kubelet's). */
export const K8S_NAMESPACE = 'k8s.io';

/** A node's containerd as state.json records it. */
export interface ContainerdState {
  /** containerd's PID (the leader of its process group). */
  pid: number;
  /** Its directory: root/, state/, net.d/, cni-bin/, pods/, config.toml, containerd.sock. */
  dir: string;
  socket: string;
  configFile: string;
  outFile: string;
}

/** The paths of a node containerd under `dir` (pure). */
export function containerdPaths(dir: string): Omit<ContainerdState, 'pid'> & {
  binDir: string;
  confDir: string;
  logDir: string;
} {
  return {
    dir,
    socket: join(dir, 'containerd.sock'),
    configFile: join(dir, 'config.toml'),
    outFile: join(dir, 'containerd.out'),
    binDir: join(dir, 'cni-bin'),
    confDir: join(dir, 'net.d'),
    logDir: join(dir, 'pods'),
  };
}

/**
 * The conflist of a --cri lab node (pure): the petrel plugin with the netconf the lab uses when it
 * calls the plugin itself (the node's agent socket, petrel-ipam), IPv6 too in a dual-stack lab.
 */
export function labConflist(o: { network: string; agentSocket: string; ipv6: boolean }): {
  name: string;
} & Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
    name: o.network,
    plugins: [
      {
        type: 'petrel',
        agentSocket: o.agentSocket,
        logLevel: 'warn',
        ipam: { type: 'petrel-ipam', assignIpv4: true, assignIpv6: o.ipv6 },
      },
    ],
  };
}

/** The address of a shim's socket as containerd 1.6 names it: /run/containerd/s/sha256(ADDRESS/NS/ID). */
export function shimSocketPath(containerdSocket: string, namespace: string, id: string): string {
  const h = createHash('sha256')
    .update(join(containerdSocket, namespace, id))
    .digest('hex');
  return `/run/containerd/s/${h}`;
}

/**
 * Writes a node containerd's dirs, CNI bin dir (the petrel plugins and loopback as symlinks),
 * conflist and config.toml, starts it in the node netns as a detached group, imports the pause
 * image and waits for CRI NetworkReady. On failure the daemon is stopped and the error rethrown.
 */
export async function startLabContainerd(o: {
  dir: string;
  netnsPath: string;
  plugins: Record<string, string>;
  conflist: { name: string } & Record<string, unknown>;
  pauseTar: string;
  onStarted?: (c: ContainerdState) => void;
}): Promise<ContainerdState> {
  const p = containerdPaths(o.dir);
  for (const d of [p.binDir, p.confDir, p.logDir, join(o.dir, 'root'), join(o.dir, 'state')])
    mkdirSync(d, { recursive: true });
  for (const [name, path] of Object.entries({ loopback: LOOPBACK_PLUGIN, ...o.plugins })) {
    rmSync(join(p.binDir, name), { force: true });
    symlinkSync(path, join(p.binDir, name));
  }
  writeFileSync(join(p.confDir, `10-${o.conflist.name}.conflist`), JSON.stringify(o.conflist, null, 2));
  writeFileSync(p.configFile, containerdConfig({ dir: o.dir, socket: p.socket, binDir: p.binDir, confDir: p.confDir }));
  const proc: Proc = spawnGroup(
    '',
    'nsenter',
    [`--net=${o.netnsPath}`, 'containerd', '--config', p.configFile],
    p.outFile,
  );
  const st: ContainerdState = {
    pid: proc.pid,
    dir: o.dir,
    socket: p.socket,
    configFile: p.configFile,
    outFile: p.outFile,
  };
  o.onStarted?.(st);
  try {
    await waitFor(
      'containerd socket',
      () => {
        if (proc.exited()) throw new Error(`containerd exited: ${proc.output().slice(-3000)}`);
        return existsSync(p.socket);
      },
      20_000,
      100,
    );
    await runOk('ctr', ['-a', p.socket, '-n', K8S_NAMESPACE, 'images', 'import', o.pauseTar], { timeoutMs: 60_000 });
    const cri = new CriClient(p.socket);
    try {
      await waitFor('CRI NetworkReady', () => cri.networkReady(), 20_000, 200);
    } finally {
      cri.close();
    }
  } catch (err) {
    await endGroup(proc, { graceMs: 5000, mustContain: p.configFile });
    throw err;
  }
  return st;
}

/** PIDs of the processes whose command line contains `needle`, and of all their descendants. */
export function processesOf(needle: string): number[] {
  const table = new Map<number, { ppid: number; cmd: string }>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z') continue;
      table.set(Number(e), { ppid: Number(rest[1]), cmd: pidCmdline(Number(e)) });
    } catch {
      /* gone meanwhile */
    }
  }
  const out = new Set<number>();
  for (const [pid, x] of table) if (pid !== process.pid && x.cmd.includes(needle)) out.add(pid);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, x] of table)
      if (!out.has(pid) && out.has(x.ppid)) {
        out.add(pid);
        grew = true;
      }
  }
  return [...out];
}

/** SIGTERM to each PID, SIGKILL after graceMs to those left; waits until they are gone (5 s). */
export async function endPids(pids: number[], graceMs = 3000): Promise<void> {
  const sig = (s: NodeJS.Signals) => {
    for (const p of pids)
      try {
        process.kill(p, s);
      } catch {
        /* gone */
      }
  };
  sig('SIGTERM');
  const until = (ms: number) => performance.now() + ms;
  let t = until(graceMs);
  while (pids.some(pidAlive) && performance.now() < t) await delay(50);
  sig('SIGKILL');
  t = until(5000);
  while (pids.some(pidAlive) && performance.now() < t) await delay(50);
}

/**
 * Stops a node containerd (its group, by PID, only while its command line still names its
 * config), then every shim left that serves its socket and what runs under those shims (the
 * pause processes).
 */
export async function stopLabContainerd(c: ContainerdState): Promise<void> {
  await endGroup(c.pid, { graceMs: 10_000, mustContain: c.configFile });
  const left = processesOf(`-address ${c.socket}`);
  if (left.length > 0) await endPids(left);
}

/**
 * Removes what containerd and its shim made for sandbox `id` in shared host paths: its pod netns
 * (/var/run/netns/NAME, a bind mount), runc's state dir, the shim socket, the cached CNI results
 * and runc's cgroup. Each is named by the sandbox ID: nothing of another runtime is touched.
 */
export async function cleanSandboxPaths(o: {
  id: string;
  containerdSocket: string;
  network: string;
  netnsName?: string;
}): Promise<void> {
  if (o.netnsName?.startsWith('cni-')) {
    const p = `/var/run/netns/${o.netnsName}`;
    if (existsSync(p)) {
      await run('umount', [p]);
      rmSync(p, { force: true });
    }
  }
  rmSync(`/run/containerd/runc/${K8S_NAMESPACE}/${o.id}`, { recursive: true, force: true });
  rmSync(shimSocketPath(o.containerdSocket, K8S_NAMESPACE, o.id), { force: true });
  for (const f of listDir('/var/lib/cni/results'))
    if (f.startsWith(`${o.network}-${o.id}-`) || f.startsWith(`cni-loopback-${o.id}-`))
      rmSync(`/var/lib/cni/results/${f}`, { force: true });
  // runc's cgroup of the sandbox (cgroup v1: one per controller; v2: one), if left behind (empty).
  for (const d of [...listDir('/sys/fs/cgroup').map((c) => `/sys/fs/cgroup/${c}`), '/sys/fs/cgroup'])
    try {
      rmdirSync(`${d}/${K8S_NAMESPACE}/${o.id}`);
    } catch {
      /* not there, or not empty */
    }
}

/** Which shared host directories existed before a lab's containerds ran (down removes only the others). */
export function hostPathsBefore(): { runContainerd: boolean; varLibCni: boolean } {
  return { runContainerd: existsSync('/run/containerd'), varLibCni: existsSync('/var/lib/cni') };
}

/** Removes the shared host directories containerd made (not there before), if empty. */
export function cleanEmptyHostDirs(before: { runContainerd: boolean; varLibCni: boolean }): void {
  const dirs: string[] = [];
  if (!before.varLibCni) dirs.push('/var/lib/cni/results', '/var/lib/cni');
  if (!before.runContainerd)
    dirs.push(
      `/run/containerd/runc/${K8S_NAMESPACE}`,
      '/run/containerd/runc',
      '/run/containerd/s',
      `/run/containerd/io.containerd.runtime.v2.task/${K8S_NAMESPACE}`,
      '/run/containerd/io.containerd.runtime.v2.task',
      '/run/containerd',
    );
  for (const d of dirs) {
    try {
      if (statSync(d).isDirectory() && listDir(d).length === 0) rmdirSync(d);
    } catch {
      /* gone */
    }
  }
}

/** Unmounts (lazily, deepest first) every mount point under `dir` (sandbox shm, rootfs left behind). */
export async function unmountUnder(dir: string): Promise<void> {
  let lines: string[] = [];
  try {
    lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  } catch {
    return;
  }
  const points = lines
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of points) await run('umount', ['-l', m]);
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}
