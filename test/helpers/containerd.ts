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
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildPauseImage,
  cleanEmptyHostDirs,
  containerdConfig,
  hostPathsBefore,
} from '../../agent/lab/cri/containerd.js';
import { runOk } from './netns.js';
import { type Daemon, startDaemon, waitFor } from './process.js';

// The pause image and config.toml live in agent/lab/cri/containerd.ts (petrelctl lab --cri uses them).
export { buildPauseImage, containerdConfig, PAUSE_IMAGE } from '../../agent/lab/cri/containerd.js';

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
  const { runContainerd: hadRunContainerd, varLibCni: hadVarLibCni } = hostPathsBefore();
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
    // /var/lib/cni whole (host-local keeps its leases there too); /run/containerd only where empty
    // (a shim still running would keep its socket there).
    if (!hadVarLibCni) rmSync('/var/lib/cni', { recursive: true, force: true });
    cleanEmptyHostDirs({ runContainerd: hadRunContainerd, varLibCni: true });
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
