/**
 * A private containerd (1.6, CRI plugin on) for tests, inside the network namespace that stands
 * for the node, so pod veths and routes land there. Recipe: shared/reference/cni.md §8.
 *
 *  - Started with `nsenter --net=<node netns>` (not `ip netns exec`, which remounts /sys and would
 *    hide the cgroup mounts runc needs). Own root, state, socket and CNI conf/bin dirs in a temp
 *    dir; `restrict_oom_score_adj` because root here lacks CAP_SYS_RESOURCE.
 *  - The sandbox image is a static `pause` built here with gcc and imported as an OCI layout with
 *    `ctr images import` (no registry).
 *  - The conflist is written before containerd starts (a file moved in later is ignored).
 *  - containerd still uses shared host paths: /run/containerd/{s,runc/k8s.io}, /var/run/netns/cni-*
 *    and /var/lib/cni/results. stop() removes what this run created there.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOk } from './netns.js';
import { type Daemon, startDaemon, waitFor } from './process.js';

export const PAUSE_IMAGE = 'localhost/petrel-test/pause:1.0';

const PAUSE_C = `/* Sandbox holder for tests: waits for signals, exits on INT/TERM, reaps children. */
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
  const { readFileSync } = await import('node:fs');
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

export interface ContainerdOptions {
  /** Work dir (temp); root/state/socket/conf/bin live here. */
  dir: string;
  /** Path of the node netns, e.g. /var/run/netns/petrel-t-1-node. */
  netnsPath: string;
  /** Plugins to put in the CNI bin dir: name -> executable path. loopback is added. */
  plugins: Record<string, string>;
  /** The conflist (object), written as 10-<name>.conflist. */
  conflist: { name: string } & Record<string, unknown>;
}

export interface Containerd {
  readonly socket: string;
  readonly daemon: Daemon;
  readonly logDir: string;
  /** Stops containerd by PID and removes what it left in shared host paths. */
  stop(): Promise<void>;
}

function listDir(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}

export async function startContainerd(o: ContainerdOptions): Promise<Containerd> {
  const binDir = join(o.dir, 'cni-bin');
  const confDir = join(o.dir, 'net.d');
  const logDir = join(o.dir, 'pods');
  for (const d of [binDir, confDir, logDir, join(o.dir, 'root'), join(o.dir, 'state')])
    mkdirSync(d, { recursive: true });
  for (const [name, path] of Object.entries({ loopback: '/usr/lib/cni/loopback', ...o.plugins })) {
    symlinkSync(path, join(binDir, name));
  }
  writeFileSync(join(confDir, `10-${o.conflist.name}.conflist`), JSON.stringify(o.conflist, null, 2));
  const socket = join(o.dir, 'containerd.sock');
  writeFileSync(join(o.dir, 'config.toml'), containerdConfig({ dir: o.dir, socket, binDir, confDir }));
  // Shared paths: remember what existed so stop() removes only what this run added.
  const hadRunContainerd = existsSync('/run/containerd');
  const hadVarLibCni = existsSync('/var/lib/cni');
  const netnsBefore = new Set(listDir('/var/run/netns'));
  const daemon = startDaemon(
    'nsenter',
    [`--net=${o.netnsPath}`, 'containerd', '--config', join(o.dir, 'config.toml')],
    {
      env: { ...process.env, PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
    },
  );
  const stop = async () => {
    await daemon.stop(10_000);
    // Shims outlive containerd only while sandboxes exist; tests remove theirs first.
    for (const n of listDir('/var/run/netns')) {
      if (n.startsWith('cni-') && !netnsBefore.has(n)) {
        await runOk('umount', [`/var/run/netns/${n}`]).catch(() => undefined);
        rmSync(`/var/run/netns/${n}`, { force: true });
      }
    }
    for (const f of listDir('/var/lib/cni/results')) {
      if (f.startsWith(`${o.conflist.name}-`) || f.startsWith('cni-loopback-'))
        rmSync(`/var/lib/cni/results/${f}`, { force: true });
    }
    if (!hadVarLibCni) rmSync('/var/lib/cni', { recursive: true, force: true });
    if (!hadRunContainerd) {
      // Only empty directories (a shim still running would keep its socket here).
      for (const d of [
        '/run/containerd/runc/k8s.io',
        '/run/containerd/runc',
        '/run/containerd/s',
        '/run/containerd/io.containerd.runtime.v2.task/k8s.io',
        '/run/containerd/io.containerd.runtime.v2.task',
        '/run/containerd',
      ]) {
        try {
          if (statSync(d).isDirectory() && listDir(d).length === 0) rmdirSync(d);
        } catch {
          /* gone */
        }
      }
    }
  };
  try {
    await waitFor(
      'containerd socket',
      () => {
        if (daemon.exited()) throw new Error(`containerd exited: ${daemon.output().slice(-3000)}`);
        return existsSync(socket);
      },
      20_000,
      100,
    );
    const tar = await buildPauseImage(o.dir);
    await runOk('ctr', ['-a', socket, '-n', 'k8s.io', 'images', 'import', tar]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, daemon, logDir, stop };
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
