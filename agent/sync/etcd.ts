/**
 * The agent's etcd edge for what the IPAM store does not do: prefix reads with their revision,
 * watches, leases and create-if-absent claims (etcd3). Only this file (and ipam-etcd's
 * etcd-store.ts) know etcd; the client is loaded on first use, like the IPAM's.
 */
import type { Etcd3, Lease, Watcher } from 'etcd3';
import type { EtcdConfig } from '../../ipam-etcd/index.js';

export interface KeyValue {
  key: string;
  value: string;
}

export type WatchEvent = { type: 'put'; key: string; value: string } | { type: 'delete'; key: string };

export interface WatchHandle {
  cancel(): Promise<void>;
}

/** What etcd said when a claim is held by someone else. */
export class ClaimTakenError extends Error {
  override readonly name = 'ClaimTakenError';
  constructor(
    readonly key: string,
    readonly holder: string,
  ) {
    super(`${key} is held by ${holder}`);
  }
}

export class EtcdUnavailableError extends Error {
  override readonly name = 'EtcdUnavailableError';
}

export class ClusterEtcd {
  private constructor(
    private readonly client: Etcd3,
    private readonly timeoutMs: number,
    private readonly endpoints: string[],
  ) {}

  static async open(cfg: EtcdConfig): Promise<ClusterEtcd> {
    const { Etcd3 } = await import('etcd3');
    const { noop } = await import('cockatiel');
    const { readFileSync } = await import('node:fs');
    const timeoutMs = cfg.timeoutMs ?? 5000;
    const tls = cfg.tls;
    const client = new Etcd3({
      hosts: cfg.endpoints,
      dialTimeout: timeoutMs,
      faultHandling: { host: () => noop, global: noop },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeoutMs }),
      ...(tls?.ca || tls?.cert || tls?.key
        ? {
            credentials: {
              rootCertificate: tls.ca ? readFileSync(tls.ca) : Buffer.alloc(0),
              ...(tls.key ? { privateKey: readFileSync(tls.key) } : {}),
              ...(tls.cert ? { certChain: readFileSync(tls.cert) } : {}),
            },
          }
        : {}),
    });
    return new ClusterEtcd(client, timeoutMs, cfg.endpoints);
  }

  private wrap(op: string, err: unknown): Error {
    if (err instanceof ClaimTakenError) return err;
    const msg = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    return new EtcdUnavailableError(`etcd at ${this.endpoints.join(',')} failed ${op}: ${msg}`, { cause: err });
  }

  /** Every key under each prefix, read in one transaction: one consistent revision. */
  async readPrefixes(prefixes: string[]): Promise<{ revision: string; kvs: KeyValue[] }> {
    try {
      const ns = this.client;
      const res = await ns
        .if(prefixes[0] ?? '/', 'Version', '>', -1)
        .then(...prefixes.map((p) => ns.getAll().prefix(p)))
        .commit();
      const kvs: KeyValue[] = [];
      for (const r of res.responses) {
        for (const kv of r.response_range?.kvs ?? []) kvs.push({ key: kv.key.toString(), value: kv.value.toString() });
      }
      return { revision: res.header.revision, kvs };
    } catch (err) {
      throw this.wrap(`read ${prefixes.join(' ')}`, err);
    }
  }

  async get(key: string): Promise<string | null> {
    try {
      return await this.client.get(key).string();
    } catch (err) {
      throw this.wrap(`GET ${key}`, err);
    }
  }

  async put(key: string, value: string): Promise<void> {
    try {
      await this.client.put(key).value(value).exec();
    } catch (err) {
      throw this.wrap(`PUT ${key}`, err);
    }
  }

  async delete(keys: string[]): Promise<void> {
    try {
      for (const k of keys) await this.client.delete().key(k).exec();
    } catch (err) {
      throw this.wrap(`DELETE ${keys.join(' ')}`, err);
    }
  }

  /** Deletes `key` only while its value is `value` (releasing one's own claim). */
  async deleteIf(key: string, value: string): Promise<boolean> {
    try {
      const r = await this.client.if(key, 'Value', '==', value).then(this.client.delete().key(key)).commit();
      return r.succeeded;
    } catch (err) {
      throw this.wrap(`DELETE ${key}`, err);
    }
  }

  /** Creates `key` = `value` unless it exists with another value (ClaimTakenError names the holder). */
  async claim(key: string, value: string): Promise<void> {
    try {
      const r = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(value))
        .else(this.client.get(key))
        .commit();
      if (r.succeeded) return;
      const holder = r.responses[0]?.response_range?.kvs[0]?.value.toString() ?? '';
      if (holder !== value) throw new ClaimTakenError(key, holder);
    } catch (err) {
      throw this.wrap(`claim ${key}`, err);
    }
  }

  /**
   * Watches a prefix from `fromRevision` (exclusive: events after it). `onEvents` gets each batch;
   * `onLost` is called when the watch cannot continue (history compacted, cancelled by etcd): the
   * caller re-reads and watches again. Disconnects are retried by the client, resuming at the last
   * revision seen.
   */
  async watch(
    prefix: string,
    fromRevision: string,
    onEvents: (evs: WatchEvent[], revision: string) => void,
    onLost: (err: Error) => void,
    onConnection?: (up: boolean) => void,
  ): Promise<WatchHandle> {
    const w: Watcher = await this.client
      .watch()
      .prefix(prefix)
      .startRevision(String(BigInt(fromRevision) + 1n))
      .create();
    w.on('data', (res) => {
      if (res.compact_revision && res.compact_revision !== '0') {
        onLost(new Error(`watch history compacted at ${res.compact_revision}`));
        return;
      }
      const evs: WatchEvent[] = res.events.map((e) =>
        e.type === 'Delete'
          ? { type: 'delete', key: e.kv.key.toString() }
          : { type: 'put', key: e.kv.key.toString(), value: e.kv.value.toString() },
      );
      if (evs.length) onEvents(evs, res.header.revision);
    });
    w.on('error', (err: Error) => onLost(err));
    w.on('disconnected', () => onConnection?.(false));
    w.on('connected', () => onConnection?.(true));
    return {
      cancel: async () => {
        await w.cancel().catch(() => undefined);
      },
    };
  }

  /** A lease with automatic keepalive; `onLost` when it expired (etcd was away longer than the TTL). */
  lease(ttlSec: number, onLost: (err: Error) => void): Lease {
    const l = this.client.lease(ttlSec, { autoKeepAlive: true });
    l.on('lost', onLost);
    return l;
  }

  /** Revokes a lease by ID (node rm --force of a live node). */
  async revokeLease(id: string): Promise<void> {
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id });
    } catch (err) {
      throw this.wrap(`revoke lease ${id}`, err);
    }
  }

  /** Time to live of a lease in seconds; -1 when gone. */
  async leaseTtl(id: string): Promise<number> {
    try {
      const r = await this.client.leaseClient.leaseTimeToLive({ ID: id, keys: false });
      return Number(r.TTL);
    } catch (err) {
      throw this.wrap(`lease ${id}`, err);
    }
  }

  get requestTimeoutMs(): number {
    return this.timeoutMs;
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}
