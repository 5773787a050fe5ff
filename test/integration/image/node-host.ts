/**
 * One lab node as a host for the DaemonSet: containerd (1.6, CRI on) started inside the node's
 * network namespace AND a mount namespace of its own, so that the host paths in
 * manifests/30-node.yaml mean the same on every node and nothing of the machine's is written:
 *
 *   /run       a fresh tmpfs: /var/run/petrel (the agent's socket, which the conflist names and the
 *              plugin opens), /run/xtables.lock, containerd's shim sockets, the pods' /run/netns
 *   /opt       a fresh tmpfs holding /opt/cni/bin, pre-filled with the distribution's loopback and
 *              portmap (what a node has before Petrel: Debian's /usr/lib/cni)
 *   /etc       an overlay over the machine's /etc: /etc/cni/net.d is written to this node's upper dir
 *   /var/lib   an overlay too: /var/lib/cni (containerd's CNI result cache) stays per node
 *
 * containerd uses its default CNI dirs (/opt/cni/bin, /etc/cni/net.d) and finds no conflist at
 * start: the init container writes it, as on a fresh node. Started as `nsenter --net=NODE unshare
 * --mount --propagation private sh -c 'mounts…; exec containerd'` (each execs: the PID is
 * containerd's). containerd's shims, the containers and the pods' pause processes live in that
 * mount namespace: stop() ends containerd, then every process left in the namespace by PID (what
 * a crashed test leaves), which removes the namespace and its mounts with it.
 */
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { buildPauseImage, containerdConfig } from '../../helpers/containerd.js';
import { CriClient } from '../../helpers/cri.js';
import { type ExecResult, run, runOk } from '../../helpers/netns.js';
import { type Daemon, startDaemon, waitFor } from '../../helpers/process.js';

export interface NodeHost {
  readonly name: string;
  readonly socket: string;
  readonly cri: CriClient;
  /** Where the CRI writes the pods' and containers' logs (a machine path, seen by the node too). */
  readonly logDir: string;
  readonly daemon: Daemon;
  /** A command in the node's mount and network namespaces (its view of /run, /opt, /etc). */
  exec(cmd: string, args: string[], input?: string): Promise<ExecResult>;
  /** `ctr -n k8s.io images import FILE` into this node's containerd. */
  importImage(archive: string): Promise<void>;
  /** Stops containerd, then every process still in the node's mount namespace. Idempotent. */
  stop(): Promise<void>;
}

/** Reference plugins a node has before Petrel is installed (the conflist chains portmap). */
const NODE_CNI_PLUGINS = ['loopback', 'portmap'];

function mntNs(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/** PIDs whose mount namespace is `ns`. */
function pidsIn(ns: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    if (mntNs(Number(e)) === ns) out.push(Number(e));
  }
  return out;
}

export async function startNodeHost(o: { name: string; dir: string; netnsPath: string }): Promise<NodeHost> {
  const d = o.dir;
  for (const p of ['root', 'state', 'pods', 'etc/upper', 'etc/work', 'varlib/upper', 'varlib/work'])
    mkdirSync(join(d, p), { recursive: true });
  const socket = join(d, 'containerd.sock');
  writeFileSync(
    join(d, 'config.toml'),
    containerdConfig({ dir: d, socket, binDir: '/opt/cni/bin', confDir: '/etc/cni/net.d' }),
  );
  const script = [
    'set -e',
    'mount -t tmpfs -o mode=0755 petrel-node-run /run',
    'mount -t tmpfs -o mode=0755 petrel-node-opt /opt',
    'mkdir -p /opt/cni/bin',
    ...NODE_CNI_PLUGINS.map((p) => `ln -s /usr/lib/cni/${p} /opt/cni/bin/${p}`),
    `mount -t overlay petrel-node-etc -o lowerdir=/etc,upperdir=${d}/etc/upper,workdir=${d}/etc/work /etc`,
    `mount -t overlay petrel-node-varlib -o lowerdir=/var/lib,upperdir=${d}/varlib/upper,workdir=${d}/varlib/work /var/lib`,
    `exec containerd --config ${d}/config.toml`,
  ].join('\n');
  const daemon = startDaemon(
    'nsenter',
    [`--net=${o.netnsPath}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script],
    { env: { ...process.env, PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  const hostNs = mntNs(process.pid);
  let ns: string | undefined;
  let cri: CriClient | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    cri?.close();
    await daemon.stop(10_000);
    if (ns && ns !== hostNs) {
      // Shims, containers and pause processes: everything left in this node's mount namespace.
      for (let i = 0; i < 50; i++) {
        const left = pidsIn(ns);
        if (left.length === 0) break;
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        await delay(100);
      }
    }
    rmSync(d, { recursive: true, force: true });
  };
  const exec = (cmd: string, args: string[], input?: string) =>
    run('nsenter', ['-t', String(daemon.pid), '-m', '-n', cmd, ...args], {
      timeoutMs: 60_000,
      ...(input !== undefined ? { input } : {}),
    });
  const importImage = async (archive: string) => {
    await runOk('ctr', ['-a', socket, '-n', 'k8s.io', 'images', 'import', archive], { timeoutMs: 300_000 });
  };
  try {
    await waitFor(
      `${o.name} containerd socket`,
      () => {
        if (daemon.exited()) throw new Error(`containerd exited: ${daemon.output().slice(-3000)}`);
        return existsSync(socket);
      },
      20_000,
      100,
    );
    ns = mntNs(daemon.pid);
    if (!ns || ns === hostNs) throw new Error('containerd is not in a mount namespace of its own');
    await importImage(await buildPauseImage(d));
    cri = new CriClient(socket);
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: o.name, socket, cri, logDir: join(d, 'pods'), daemon, exec, importImage, stop };
}
