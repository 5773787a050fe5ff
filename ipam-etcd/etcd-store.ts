/**
 * IpamStore on etcd v3 (npm `etcd3`). The only module that knows etcd's response shapes.
 *  - get/list are linearizable range reads;
 *  - commit is one Txn: If(all conditions) Then(all writes); a failed If is a ConflictError;
 *  - a condition "must not exist" compares Version == 0, otherwise ModRevision == rev;
 *  - every call carries a deadline (`timeoutMs`), so an unreachable etcd becomes
 *    IpamError('unavailable') within the timeout instead of a hang. The client's own retry and
 *    circuit-breaker policies are off: the circuit breaker would keep failing for seconds after
 *    etcd comes back, and retrying is the caller's decision.
 */
import { readFileSync } from 'node:fs';
import { noop } from 'cockatiel';
import { Etcd3, GRPCDeadlineExceededError, type IOptions } from 'etcd3';
import { ConflictError, IpamError } from './errors.js';
import type { Cond, IpamStore, KV, Write } from './store.js';

export interface EtcdTls {
  /** Paths to PEM files. */
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

export interface EtcdConfig {
  endpoints: string[];
  tls?: EtcdTls | undefined;
  /** Per-request deadline in ms (default 5000). */
  timeoutMs?: number | undefined;
}

const EMPTY = Buffer.alloc(0);

export class EtcdStore implements IpamStore {
  private readonly client: Etcd3;
  private readonly timeoutMs: number;
  private readonly endpoints: string[];

  constructor(cfg: EtcdConfig) {
    if (cfg.endpoints.length === 0) throw new IpamError('invalid', 'no etcd endpoints configured');
    this.timeoutMs = cfg.timeoutMs ?? 5000;
    this.endpoints = cfg.endpoints;
    const opts: IOptions = {
      hosts: cfg.endpoints,
      dialTimeout: this.timeoutMs,
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
    };
    if (cfg.tls?.ca || cfg.tls?.cert || cfg.tls?.key) {
      try {
        opts.credentials = {
          rootCertificate: cfg.tls.ca ? readFileSync(cfg.tls.ca) : EMPTY,
          ...(cfg.tls.key ? { privateKey: readFileSync(cfg.tls.key) } : {}),
          ...(cfg.tls.cert ? { certChain: readFileSync(cfg.tls.cert) } : {}),
        };
      } catch (err) {
        throw new IpamError('invalid', `cannot read etcd TLS files: ${(err as Error).message}`, { cause: err });
      }
    }
    this.client = new Etcd3(opts);
  }

  private unavailable(op: string, err: unknown): IpamError {
    const detail = (err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err))
      .replace(/\.?\s*Resolution note:.*$/, '')
      .replace(/^\d+ [A-Z_]+: /, '');
    const timedOut = err instanceof GRPCDeadlineExceededError || /deadline exceeded/i.test(detail);
    const what = timedOut ? `did not answer ${op} within ${this.timeoutMs} ms` : `failed ${op}`;
    return new IpamError('unavailable', `etcd at ${this.endpoints.join(',')} ${what}: ${detail}`, { cause: err });
  }

  async get(key: string): Promise<KV | null> {
    try {
      const res = await this.client.kv.range({ key: Buffer.from(key) });
      const kv = res.kvs[0];
      return kv ? { key, value: kv.value.toString(), modRevision: kv.mod_revision } : null;
    } catch (err) {
      throw this.unavailable(`GET ${key}`, err);
    }
  }

  async list(prefix: string): Promise<KV[]> {
    try {
      const res = await this.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) });
      return res.kvs.map((kv) => ({
        key: kv.key.toString(),
        value: kv.value.toString(),
        modRevision: kv.mod_revision,
      }));
    } catch (err) {
      throw this.unavailable(`LIST ${prefix}`, err);
    }
  }

  async listKeys(prefix: string): Promise<string[]> {
    try {
      const res = await this.client.kv.range({
        key: Buffer.from(prefix),
        range_end: prefixEnd(prefix),
        keys_only: true,
      });
      return res.kvs.map((kv) => kv.key.toString());
    } catch (err) {
      throw this.unavailable(`LIST ${prefix}`, err);
    }
  }

  async commit(conds: Cond[], writes: Write[]): Promise<string> {
    let res: { succeeded: boolean; header: { revision: string } };
    try {
      res = await this.client.kv.txn({
        compare: conds.map((c) =>
          c.modRevision === null
            ? { key: Buffer.from(c.key), target: 'Version' as const, result: 'Equal' as const, version: 0 }
            : {
                key: Buffer.from(c.key),
                target: 'Mod' as const,
                result: 'Equal' as const,
                mod_revision: c.modRevision,
              },
        ),
        success: writes.map((w) =>
          'delete' in w
            ? { request_delete_range: { key: Buffer.from(w.key) } }
            : { request_put: { key: Buffer.from(w.key), value: Buffer.from(w.value) } },
        ),
        failure: [],
      });
    } catch (err) {
      throw this.unavailable(`TXN ${writes.map((w) => w.key).join(',')}`, err);
    }
    if (!res.succeeded) throw new ConflictError(conds.map((c) => c.key).join(','));
    return res.header.revision;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/** etcd's range end for a prefix: the prefix with its last byte incremented. */
function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i] = b[i]! + 1;
      return out;
    }
  }
  return Buffer.from([0]);
}
