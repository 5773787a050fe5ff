/**
 * A real etcd (Debian etcd-server) for integration tests: free loopback ports, a temp data dir,
 * health-checked start, stop by PID, restart on the same ports and data (for fault tests).
 * Optionally inside a network namespace (`netns`, created with `ip netns add`): then it listens on
 * the namespace's own 127.0.0.1:2379 (or `host`), and the health check runs inside the namespace.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdArgs } from '../../agent/lab/cluster.js';
import { freePort } from './ports.js';
import { type Daemon, startDaemon, waitFor } from './process.js';

export interface EtcdHandle {
  /** Client URL, e.g. http://127.0.0.1:23791 */
  readonly endpoint: string;
  readonly dataDir: string;
  pid(): number;
  /** Stops the process (data kept). */
  stop(): Promise<void>;
  /** Starts again on the same ports and data dir. */
  restart(): Promise<void>;
  /** Stops and deletes the data dir. */
  destroy(): Promise<void>;
}

export interface EtcdOptions {
  netns?: string;
  host?: string;
  /** Serve clients over TLS and require client certificates signed by `ca` (mTLS). */
  tls?: { ca: string; cert: string; key: string };
}

/** etcd's /health, asked with etcdctl (client certificates, and from inside the netns if any). */
async function healthy(endpoint: string, opts: EtcdOptions): Promise<boolean> {
  const tls = opts.tls ? ['--cacert', opts.tls.ca, '--cert', opts.tls.cert, '--key', opts.tls.key] : [];
  const argv = ['etcdctl', '--endpoints', endpoint, ...tls, '--command-timeout', '2s', 'endpoint', 'health'];
  const [cmd, args] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, ...argv]] : [argv[0]!, argv.slice(1)];
  const r = spawnSync(cmd as string, args as string[], { env: { ...process.env, ETCDCTL_API: '3' }, timeout: 3000 });
  return r.status === 0;
}

export async function startEtcd(opts: EtcdOptions = {}): Promise<EtcdHandle> {
  const host = opts.host ?? '127.0.0.1';
  // A namespace has its own port space: etcd's standard ports are free there.
  const clientPort = opts.netns ? 2379 : await freePort();
  const peerPort = opts.netns ? 2380 : await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'petrel-etcd-'));
  const endpoint = `${opts.tls ? 'https' : 'http'}://${host}:${clientPort}`;
  const peer = `http://${host}:${peerPort}`;
  const args = etcdArgs(dataDir, endpoint, peer, opts.tls);
  let daemon: Daemon | undefined;
  const start = async () => {
    const [cmd, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, 'etcd', ...args]] : ['etcd', args];
    daemon = startDaemon(cmd as string, argv as string[], { env: { ...process.env, ETCD_UNSUPPORTED_ARCH: 'amd64' } });
    const d = daemon;
    try {
      await waitFor(
        'etcd health',
        async () => {
          if (d.exited()) throw new Error(`etcd exited: ${d.output().slice(-2000)}`);
          return healthy(endpoint, opts);
        },
        20_000,
      );
    } catch (err) {
      await d.stop();
      throw err;
    }
  };
  await start();
  return {
    endpoint,
    dataDir,
    pid: () => daemon?.pid ?? -1,
    stop: async () => {
      await daemon?.stop();
    },
    restart: async () => {
      await daemon?.stop();
      await start();
    },
    destroy: async () => {
      await daemon?.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
