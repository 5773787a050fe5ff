/** Shared plumbing of petrelctl commands: etcd connection from global flags, output, tables. */

import type { Ipam } from '../../ipam-etcd/index.js';
import type { Logger } from '../common/logger.js';
import { writeOut } from '../common/output.js';

export interface GlobalOptions {
  etcdEndpoints: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
  etcdTimeoutMs: number;
}

/** The etcd connection the global options name (endpoints, TLS files, per-request timeout). */
export function etcdConnection(o: GlobalOptions): {
  endpoints: string[];
  tls: { ca: string | undefined; cert: string | undefined; key: string | undefined };
  timeoutMs: number;
} {
  return {
    endpoints: o.etcdEndpoints
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    tls: { ca: o.etcdCa, cert: o.etcdCert, key: o.etcdKey },
    timeoutMs: o.etcdTimeoutMs,
  };
}

export interface CtlContext {
  /** Opens the IPAM on etcd per the global flags, runs `fn`, closes. */
  withIpam(fn: (ipam: Ipam) => Promise<void>): Promise<void>;
  out(line: string): void;
  setExitCode(code: number): void;
  /** The global flags (etcd endpoints and TLS). */
  options(): GlobalOptions;
  /** The command's logger (stderr), loaded on first use. */
  log(): Promise<Logger>;
}

/** `log` is called when a command opens etcd (loading the logger is part of petrelctl's start-up). */
export function makeContext(
  getOpts: () => GlobalOptions,
  log: () => Logger | Promise<Logger>,
  setExit: (c: number) => void,
): CtlContext {
  return {
    async withIpam(fn) {
      const o = getOpts();
      // etcd over its JSON gateway (etcd-http-store.ts), not gRPC: see there for why.
      const [{ Ipam }, { EtcdHttpStore }, { systemClock }] = await Promise.all([
        import('../../ipam-etcd/allocator.js'),
        import('./etcd-http-store.js'),
        import('../common/clock.js'),
      ]);
      const store = new EtcdHttpStore(etcdConnection(o));
      const ipam = new Ipam(store, { clock: systemClock, log: (await log()).child({ component: 'ipam' }) });
      try {
        await fn(ipam);
      } finally {
        await store.close();
      }
    },
    out: (line) => {
      writeOut(`${line}\n`);
    },
    setExitCode: setExit,
    options: getOpts,
    log: async () => log(),
  };
}

export function printJson(v: unknown): void {
  writeOut(`${JSON.stringify(v, null, 2)}\n`);
}

export { table } from '../lab/report.js';
