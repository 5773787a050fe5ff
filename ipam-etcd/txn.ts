/**
 * The transaction context every IPAM operation runs in: versioned reads (with this process's
 * caches), the one compare-and-swap commit, and the bounded conflict retry. assign.ts, release.ts,
 * admin.ts and gc.ts share one instance per allocator.
 *
 * Complicating factors:
 *  - Caches may be stale; that is safe because every write compares the mod revisions of what it
 *    read. A conflicting write drops the cached copies of every key it compared or wrote, so the
 *    retry reads fresh; a successful write caches the blocks it wrote at the new revision.
 *  - Pools, config, node labels and affinity lists are served from a short TTL cache (shared
 *    promises, so concurrent callers issue one read); a failed read is not cached.
 *  - Retries are bounded (maxRetries) with full-jitter exponential backoff on the injected clock.
 */
import { type Clock, sleep } from '../agent/common/clock.js';
import type { Logger } from '../agent/common/logger.js';
import { ConflictError, IpamError } from './errors.js';
import { keys, parseAffinityKey } from './keys.js';
import {
  DEFAULT_CONFIG,
  parseAffinity,
  parseBlock,
  parseConfig,
  parseHandle,
  parseNode,
  parsePool,
  serialize,
} from './records.js';
import type { Cond, IpamStore, Write } from './store.js';
import type { Block, Handle, IpamConfig, Pool } from './types.js';

/** A record and the etcd mod revision it was read (or written) at. */
export interface Versioned<T> {
  value: T;
  rev: string;
}

/** One affinity of a node as read: its block CIDR, state and mod revision. */
export interface AffinityEntry {
  cidr: string;
  state: string;
  rev: string;
}

export interface TxnOptions {
  clock: Clock;
  log: Logger;
  /** Conflicts tolerated per record write before RetriesExhausted. */
  maxRetries: number;
  /** How long pools, config, labels and affinity lists may be served from memory (0 = always read). */
  cacheTtlMs: number;
}

/** The block `affinity` value of a node's block. */
export const hostAffinity = (node: string) => `host:${node}`;

export class IpamTxn {
  readonly clock: Clock;
  readonly log: Logger;
  private readonly maxRetries: number;
  private readonly cacheTtlMs: number;
  /** Block key → last value and mod revision we read or wrote. */
  private readonly blockCache = new Map<string, { value: string; rev: string }>();
  private readonly ttlCache = new Map<string, { at: number; value: Promise<unknown> }>();

  constructor(
    readonly store: IpamStore,
    opts: TxnOptions,
  ) {
    this.clock = opts.clock;
    this.log = opts.log;
    this.maxRetries = opts.maxRetries;
    this.cacheTtlMs = opts.cacheTtlMs;
  }

  // ---------------------------------------------------------------- caches

  /** `fn()` shared by callers for cacheTtlMs (a failed read is not cached). */
  cached<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const now = this.clock.now();
    const hit = this.ttlCache.get(key);
    if (hit && now - hit.at < this.cacheTtlMs) return hit.value as Promise<T>;
    const value = fn();
    if (this.cacheTtlMs > 0) {
      this.ttlCache.set(key, { at: now, value });
      value.catch(() => this.ttlCache.delete(key));
    }
    return value;
  }

  invalidate(key: string): void {
    this.ttlCache.delete(key);
  }

  /**
   * Every write goes through here: on success the written blocks are cached with their new
   * revision; on a conflict the cached copies of everything it compared are dropped.
   */
  async commit(conds: Cond[], writes: Write[]): Promise<string> {
    let rev: string;
    try {
      rev = await this.store.commit(conds, writes);
    } catch (err) {
      for (const c of conds) this.blockCache.delete(c.key);
      for (const w of writes) this.blockCache.delete(w.key);
      throw err;
    }
    for (const w of writes) {
      if (!w.key.startsWith(keys.blocks)) continue;
      if ('delete' in w) this.blockCache.delete(w.key);
      else this.blockCache.set(w.key, { value: w.value, rev });
    }
    return rev;
  }

  // ---------------------------------------------------------------- reads

  /** The block as last seen by this process (read from etcd when not cached). */
  async readBlockCached(cidr: string): Promise<Versioned<Block> | null> {
    const key = keys.block(cidr);
    const hit = this.blockCache.get(key);
    if (hit) return { value: parseBlock(key, hit.value), rev: hit.rev };
    return this.readBlock(cidr);
  }

  /** Reads a block from etcd (and refreshes this process's cached copy). */
  async readBlock(cidr: string): Promise<Versioned<Block> | null> {
    const key = keys.block(cidr);
    const kv = await this.store.get(key);
    if (!kv) {
      this.blockCache.delete(key);
      return null;
    }
    const value = parseBlock(kv.key, kv.value);
    this.blockCache.set(key, { value: kv.value, rev: kv.modRevision });
    return { value, rev: kv.modRevision };
  }

  async readHandle(id: string): Promise<Versioned<Handle> | null> {
    const kv = await this.store.get(keys.handle(id));
    return kv ? { value: parseHandle(kv.key, kv.value), rev: kv.modRevision } : null;
  }

  async readPools(): Promise<Pool[]> {
    const kvs = await this.store.list(keys.pools);
    return kvs.map((kv) => parsePool(kv.key, kv.value)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async readConfig(): Promise<IpamConfig> {
    const kv = await this.store.get(keys.config);
    return kv ? parseConfig(kv.key, kv.value) : { ...DEFAULT_CONFIG };
  }

  async readNodeLabels(node: string): Promise<Record<string, string>> {
    const kv = await this.store.get(keys.node(node));
    return kv ? parseNode(kv.key, kv.value).labels : {};
  }

  /** The node's affinities (all states), sorted by block CIDR key. */
  async nodeAffinities(node: string): Promise<AffinityEntry[]> {
    const kvs = await this.store.list(keys.nodeAffinities(node));
    const out: AffinityEntry[] = [];
    for (const kv of kvs) {
      const k = parseAffinityKey(kv.key);
      if (!k) continue;
      out.push({ cidr: k.cidr, state: parseAffinity(kv.key, kv.value).state, rev: kv.modRevision });
    }
    return out;
  }

  /** Every affinity under `prefix` (one node's, or all), with the node each belongs to. */
  async readAffinities(prefix: string): Promise<(AffinityEntry & { node: string })[]> {
    const kvs = await this.store.list(prefix);
    const out: (AffinityEntry & { node: string })[] = [];
    for (const kv of kvs) {
      const k = parseAffinityKey(kv.key);
      if (!k) continue;
      out.push({ node: k.node, cidr: k.cidr, state: parseAffinity(kv.key, kv.value).state, rev: kv.modRevision });
    }
    return out;
  }

  // ---------------------------------------------------------------- retry

  /** Runs `fn` until it does not throw ConflictError, at most maxRetries+1 times, with jittered backoff. */
  async retrying<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        if (attempt >= this.maxRetries) {
          throw new IpamError(
            'retries-exhausted',
            `gave up on ${what} after ${attempt + 1} conflicting writes: excessive concurrent IPAM requests`,
            { cause: err },
          );
        }
        // Exponential from 2 ms, capped at 100 ms, full jitter.
        const capMs = Math.min(100, 2 * 2 ** Math.min(attempt, 6));
        this.log.debug({ what, attempt, key: err.key }, 'ipam write conflict, retrying');
        await sleep(this.clock, this.clock.random() * capMs);
      }
    }
  }
}

// ------------------------------------------------------------------ write builders (pure)

/** The conditional write that applies per-block count changes to a handle (deleted at zero). */
export function handleWrite(
  id: string,
  h: Versioned<Handle> | null,
  delta: Record<string, number>,
): { cond: Cond; write: Write } | null {
  const blocks = { ...(h?.value.blocks ?? {}) };
  for (const [cidr, d] of Object.entries(delta)) {
    const n = (blocks[cidr] ?? 0) + d;
    if (n > 0) blocks[cidr] = n;
    else delete blocks[cidr];
  }
  const cond: Cond = { key: keys.handle(id), modRevision: h ? h.rev : null };
  if (Object.keys(blocks).length === 0) return h ? { cond, write: { key: keys.handle(id), delete: true } } : null;
  return { cond, write: { key: keys.handle(id), value: serialize({ blocks }) } };
}

/** The write of a block's new value, or its deletion (null). */
export function blockWrite(cidr: string, b: Block | null): Write {
  return b ? { key: keys.block(cidr), value: serialize(b) } : { key: keys.block(cidr), delete: true };
}

/** For `.catch()`: a lost compare-and-swap is fine here, anything else is rethrown. */
export function ignoreConflict(err: unknown): void {
  if (!(err instanceof ConflictError)) throw err;
}
