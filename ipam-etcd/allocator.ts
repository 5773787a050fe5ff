/**
 * The IPAM allocator: read → pure block mutation → compare-and-swap commit → retry on conflict.
 *
 * Complicating factors:
 *  - Many writers: every agent, every `petrelctl`, and the GC write the same keys. Every write is
 *    one etcd transaction guarded by the mod revisions of every record it read (block + handle,
 *    or block + affinity), so a lost race writes nothing and is retried from a fresh read
 *    (bounded, with jittered exponential backoff). Block and handle change in the same transaction,
 *    so the handle index can never disagree with the blocks after a crash or a lost race.
 *  - Two nodes must never own one block: a claim is two-phase, like Calico's. Phase 1 creates the
 *    node's affinity as `pending`; phase 2 creates the block (only if absent) with `affinity:
 *    host:<node>` and confirms the affinity, in one transaction that also checks the pending
 *    affinity is unchanged. The block's `affinity` field is the authority; a `pending` affinity
 *    counts as absent (a crash between the phases leaves one, which `ipam gc` removes).
 *  - Multi-address requests are all-or-nothing: if any address cannot be had, the ones this call
 *    assigned are released again before the error is thrown.
 *  - Idempotence: release of a free address or an unknown handle is a no-op, never an error.
 *  - Corruption: a record that does not parse is IpamError('corrupt') and is never overwritten.
 */

import { type Clock, sleep } from '../agent/common/clock.js';
import type { Logger } from '../agent/common/logger.js';
import { Batcher } from './batch.js';
import {
  assign,
  assignOrdinal,
  bumpSequence,
  countsByHandle,
  freeCount,
  inUseCount,
  ipToOrdinal,
  isEmpty,
  newBlock,
  ordinalsOf,
  ordinalToIp,
  releaseHandle,
  releaseOrdinals,
} from './block.js';
import { blockCount, blockOf, contains, fnv1a32, formatCidr, nthBlock, parseCidr, parseIp } from './cidr.js';
import { ConflictError, IpamError } from './errors.js';
import { blockCidrFromKey, isValidName, keys, parseAffinityKey } from './keys.js';
import { overlappingPools, type PoolInput, validatePool } from './pools.js';
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
import { parseSelector } from './selector.js';
import type { Cond, IpamStore, Write } from './store.js';
import type {
  AllocationAttrs,
  AssignArgs,
  Assignment,
  AutoAssignArgs,
  Block,
  Handle,
  IpamApi,
  IpamConfig,
  IpFamily,
  Pool,
} from './types.js';

/** Calico's default per-node block cap when maxBlocksPerHost is 0. */
export const DEFAULT_MAX_BLOCKS_PER_HOST = 20;

export interface IpamOptions {
  clock: Clock;
  log: Logger;
  /** Conflicts tolerated per record write before RetriesExhausted (default 40). */
  maxRetries?: number;
  /**
   * How long pools, IPAM config, node labels and a node's affinity list may be served from memory
   * (default 1000 ms; 0 = always read). Blocks are cached until a write conflicts. Staleness is
   * safe: every write is compare-and-swap, and a conflict drops the cached copy.
   */
  cacheTtlMs?: number;
  /** Most assignment requests merged into one block transaction (default 32). */
  maxBatch?: number;
}

/** One caller waiting for addresses from its node's affine blocks (see affineAssign). */
interface AffineRequest {
  num: number;
  handle: string;
  owner: AllocationAttrs;
  usable: Pool[];
  got: Assignment[];
  resolve: (got: Assignment[]) => void;
  reject: (err: unknown) => void;
}

/** One caller releasing everything a handle holds in one block. */
interface ReleaseRequest {
  handle: string;
  resolve: (ips: string[]) => void;
  reject: (err: unknown) => void;
}

interface Versioned<T> {
  value: T;
  rev: string;
}

const hostAffinity = (node: string) => `host:${node}`;

export class Ipam implements IpamApi {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly maxRetries: number;
  private readonly cacheTtlMs: number;
  private readonly maxBatch: number;
  /** Block key → last value and mod revision we read or wrote. */
  private readonly blockCache = new Map<string, { value: string; rev: string }>();
  private readonly ttlCache = new Map<string, { at: number; value: Promise<unknown> }>();
  /** Callers waiting for affine addresses, per node and family (key `node/family`). */
  private readonly assignBatches: Batcher<AffineRequest>;
  /** Callers releasing a handle's addresses, per block CIDR. */
  private readonly releaseBatches: Batcher<ReleaseRequest>;
  /** Per node: serialises block claims made by this process. */
  private readonly claimLocks = new Map<string, Promise<unknown>>();

  constructor(
    readonly store: IpamStore,
    opts: IpamOptions,
  ) {
    this.clock = opts.clock;
    this.log = opts.log;
    this.maxRetries = opts.maxRetries ?? 40;
    this.cacheTtlMs = opts.cacheTtlMs ?? 1000;
    this.maxBatch = opts.maxBatch ?? 32;
    this.assignBatches = new Batcher(this.maxBatch, (key, batch) =>
      this.drainAssign(key.slice(0, key.lastIndexOf('/')), batch),
    );
    this.releaseBatches = new Batcher(this.maxBatch, (cidr, batch) => this.drainRelease(cidr, batch));
  }

  // ---------------------------------------------------------------- caches

  /** `fn()` shared by callers for cacheTtlMs (a failed read is not cached). */
  private cached<T>(key: string, fn: () => Promise<T>): Promise<T> {
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

  private invalidate(key: string): void {
    this.ttlCache.delete(key);
  }

  /**
   * Every write goes through here: on success the written blocks are cached with their new
   * revision; on a conflict the cached copies of everything it compared are dropped.
   */
  private async commit(conds: Cond[], writes: Write[]): Promise<string> {
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

  /** The block as last seen by this process (read from etcd when not cached). */
  private async readBlockCached(cidr: string): Promise<Versioned<Block> | null> {
    const key = keys.block(cidr);
    const hit = this.blockCache.get(key);
    if (hit) return { value: parseBlock(key, hit.value), rev: hit.rev };
    return this.readBlock(cidr);
  }

  // ---------------------------------------------------------------- reads

  async readPools(): Promise<Pool[]> {
    const kvs = await this.store.list(keys.pools);
    return kvs.map((kv) => parsePool(kv.key, kv.value)).sort((a, b) => a.name.localeCompare(b.name));
  }

  async listPools(): Promise<Pool[]> {
    return this.readPools();
  }

  async readConfig(): Promise<IpamConfig> {
    const kv = await this.store.get(keys.config);
    return kv ? parseConfig(kv.key, kv.value) : { ...DEFAULT_CONFIG };
  }

  async readNodeLabels(node: string): Promise<Record<string, string>> {
    const kv = await this.store.get(keys.node(node));
    return kv ? parseNode(kv.key, kv.value).labels : {};
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

  private async readHandle(id: string): Promise<Versioned<Handle> | null> {
    const kv = await this.store.get(keys.handle(id));
    return kv ? { value: parseHandle(kv.key, kv.value), rev: kv.modRevision } : null;
  }

  /** The node's affinities (all states), sorted by block CIDR key. */
  async nodeAffinities(node: string): Promise<{ cidr: string; state: string; rev: string }[]> {
    const kvs = await this.store.list(keys.nodeAffinities(node));
    const out: { cidr: string; state: string; rev: string }[] = [];
    for (const kv of kvs) {
      const k = parseAffinityKey(kv.key);
      if (!k) continue;
      out.push({ cidr: k.cidr, state: parseAffinity(kv.key, kv.value).state, rev: kv.modRevision });
    }
    return out;
  }

  // ---------------------------------------------------------------- retry

  /** Runs `fn` until it does not throw ConflictError, at most maxRetries+1 times, with jittered backoff. */
  private async retrying<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
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

  // ---------------------------------------------------------------- assignment

  async autoAssign(args: AutoAssignArgs): Promise<Assignment[]> {
    checkName('handle', args.handle);
    checkName('node', args.node);
    const want: [IpFamily, number][] = [
      [4, args.num4 ?? 0],
      [6, args.num6 ?? 0],
    ];
    for (const [fam, n] of want) {
      if (!Number.isInteger(n) || n < 0 || n > 1024) {
        throw new IpamError('invalid', `number of IPv${fam} addresses must be 0..1024, not ${n}`);
      }
    }
    const [pools, cfg, labels] = await Promise.all([
      this.cached('pools', () => this.readPools()),
      this.cached('config', () => this.readConfig()),
      this.cached(`labels/${args.node}`, () => this.readNodeLabels(args.node)),
    ]);
    const done: Assignment[] = [];
    try {
      for (const [family, n] of want) {
        if (n === 0) continue;
        const usable = usablePools(pools, family, args.node, labels, args.pools);
        done.push(...(await this.assignFamily(family, n, usable, cfg, args)));
      }
    } catch (err) {
      if (done.length > 0) {
        await this.releaseIps(done.map((a) => a.ip)).catch((e: unknown) => {
          this.log.warn({ err: e, ips: done.map((a) => a.ip) }, 'rollback of partial assignment failed');
        });
      }
      throw err;
    }
    this.log.debug({ handle: args.handle, node: args.node, ips: done.map((a) => a.ip) }, 'assigned');
    return done;
  }

  private async assignFamily(
    family: IpFamily,
    num: number,
    usable: Pool[],
    cfg: IpamConfig,
    args: AutoAssignArgs,
  ): Promise<Assignment[]> {
    const out: Assignment[] = [];
    const owner: AllocationAttrs = { ...(args.attrs ?? {}), node: args.node };
    const maxBlocks = cfg.maxBlocksPerHost > 0 ? cfg.maxBlocksPerHost : DEFAULT_MAX_BLOCKS_PER_HOST;
    const inUsable = (cidr: string) => poolOf(usable, cidr);
    let blockLimitHit = false;

    // 1. The node's own blocks (requests from concurrent callers merged into one transaction per
    //    block), then 2. a new block claimed for the node, and again.
    for (let round = 0; out.length < num && round < 64; round++) {
      out.push(...(await this.affineAssign(args.node, family, usable, num - out.length, args.handle, owner)));
      if (out.length >= num) break;
      const claim = await this.claimForNode(args.node, family, usable, maxBlocks);
      if (claim === 'limit') {
        blockLimitHit = true;
        break;
      }
      if (claim === 'none') break;
    }

    // 3. Borrow from other nodes' blocks, unless strict affinity forbids it or the cap was hit.
    if (out.length < num && !cfg.strictAffinity && !blockLimitHit) {
      const blockKeys = await this.store.listKeys(keys.blocks);
      for (const key of blockKeys) {
        if (out.length >= num) break;
        const cidr = blockCidrFromKey(key);
        const pool = inUsable(cidr);
        if (!pool) continue;
        out.push(...(await this.assignFromBlock(cidr, pool, num - out.length, args.handle, owner, null)));
      }
    }

    if (out.length < num) {
      const why = blockLimitHit
        ? `node ${args.node} reached its limit of ${maxBlocks} blocks`
        : cfg.strictAffinity
          ? 'no more free affine blocks and strict affinity is enabled'
          : `no free addresses in pools [${usable.map((p) => p.name).join(', ')}]`;
      const err = new IpamError(
        'exhausted',
        `assigned ${out.length} of ${num} requested IPv${family} addresses: ${why}`,
      );
      if (out.length > 0) {
        await this.releaseIps(out.map((a) => a.ip)).catch((e: unknown) => {
          this.log.warn({ err: e }, 'rollback of partial assignment failed');
        });
      }
      throw err;
    }
    return out;
  }

  /**
   * Assigns up to `num` addresses from the node's confirmed, usable blocks. Concurrent callers for
   * the same node and family queue up; one drain loop serves them, merging up to maxBatch requests
   * into a single transaction per block (the block plus every handle involved). Without this,
   * concurrent callers on one node all race for the same block and mostly lose (CAS conflicts).
   * Resolves with what could be assigned (possibly fewer than `num`, possibly none).
   */
  private affineAssign(
    node: string,
    family: IpFamily,
    usable: Pool[],
    num: number,
    handle: string,
    owner: AllocationAttrs,
  ): Promise<Assignment[]> {
    return new Promise<Assignment[]>((resolve, reject) => {
      this.assignBatches.push(`${node}/${family}`, { num, handle, owner, usable, got: [], resolve, reject });
    });
  }

  private async drainAssign(node: string, batch: AffineRequest[]): Promise<void> {
    try {
      const affs = await this.cached(`affinities/${node}`, () => this.nodeAffinities(node));
      for (const a of affs) {
        if (a.state !== 'confirmed') continue;
        if (!batch.some((r) => r.got.length < r.num && poolOf(r.usable, a.cidr))) continue;
        await this.assignBatchFromBlock(node, a.cidr, batch);
        if (batch.every((r) => r.got.length >= r.num)) break;
      }
      for (const r of batch) r.resolve(r.got);
    } catch (err) {
      // The callers never learn of addresses already committed for them: hand those back here.
      const stranded = batch.flatMap((r) => r.got.map((a) => a.ip));
      if (stranded.length) {
        await this.releaseIps(stranded).catch((e: unknown) =>
          this.log.warn({ err: e, ips: stranded }, 'rollback failed'),
        );
      }
      for (const r of batch) r.reject(err);
    }
  }

  /** One transaction per attempt: as many of the batch's outstanding addresses as the block has. */
  private async assignBatchFromBlock(node: string, cidr: string, batch: AffineRequest[]): Promise<void> {
    await this.retrying(`assign from ${cidr}`, async (attempt) => {
      const blk = attempt === 0 ? await this.readBlockCached(cidr) : await this.readBlock(cidr);
      if (!blk || blk.value.affinity !== hostAffinity(node) || freeCount(blk.value) === 0) return;
      let block = blk.value;
      const takes: { r: AffineRequest; pool: Pool; ordinals: number[] }[] = [];
      for (const r of batch) {
        const pool = poolOf(r.usable, cidr);
        const want = r.num - r.got.length;
        if (!pool || want <= 0 || freeCount(block) === 0) continue;
        const t = assign(block, want, r.handle, r.owner, this.clock.wallNow());
        block = t.block;
        takes.push({ r, pool, ordinals: t.ordinals });
      }
      if (takes.length === 0) return;
      const perHandle = new Map<string, number>();
      for (const t of takes) perHandle.set(t.r.handle, (perHandle.get(t.r.handle) ?? 0) + t.ordinals.length);
      // Handles of new pods do not exist yet: assume so first, read them only after a conflict.
      const handles = await Promise.all(
        [...perHandle.keys()].map(async (id) => [id, attempt === 0 ? null : await this.readHandle(id)] as const),
      );
      const conds: Cond[] = [{ key: keys.block(cidr), modRevision: blk.rev }];
      const writes: Write[] = [{ key: keys.block(cidr), value: serialize(bumpSequence(block)) }];
      for (const [id, h] of handles) {
        const hw = handleWrite(id, h, { [cidr]: perHandle.get(id) ?? 0 });
        if (hw) {
          conds.push(hw.cond);
          writes.push(hw.write);
        }
      }
      await this.commit(conds, writes);
      for (const t of takes) t.r.got.push(...t.ordinals.map((o) => toAssignment(ordinalToIp(block, o), cidr, t.pool)));
    });
  }

  /**
   * Claims one more block for the node, one claim at a time per node in this process. Returns
   * 'ok' when the node (now) has affine space to try again, 'limit' at the block cap, 'none' when
   * the usable pools have no unclaimed block left.
   */
  private async claimForNode(node: string, family: IpFamily, usable: Pool[], maxBlocks: number) {
    const prev = this.claimLocks.get(node) ?? Promise.resolve();
    const run = prev
      .catch(() => {})
      .then(async (): Promise<'ok' | 'limit' | 'none'> => {
        this.invalidate(`affinities/${node}`);
        const affs = (await this.cached(`affinities/${node}`, () => this.nodeAffinities(node))).filter(
          (a) => a.state === 'confirmed',
        );
        // Another caller may have claimed a block while we waited for the lock.
        const mine = affs.filter((a) => poolOf(usable, a.cidr));
        const blocks = await Promise.all(mine.map((a) => this.readBlock(a.cidr)));
        if (blocks.some((b) => b && b.value.affinity === hostAffinity(node) && freeCount(b.value) > 0)) return 'ok';
        if (affs.length >= maxBlocks) return 'limit';
        for (let tries = 0; tries < 16; tries++) {
          const candidate = await this.findFreeBlock(usable, node);
          if (!candidate) return 'none';
          const claimed = await this.claimBlock(candidate.cidr, node);
          this.log.info({ node, family, block: candidate.cidr, claimed }, 'block claim');
          if (claimed) return 'ok';
        }
        return 'none';
      });
    this.claimLocks.set(node, run);
    try {
      return await run;
    } finally {
      this.invalidate(`affinities/${node}`);
      if (this.claimLocks.get(node) === run) this.claimLocks.delete(node);
    }
  }

  /**
   * Assigns up to `num` addresses from one block in one transaction (block + handle).
   * With `affineTo`, only if the block is still affine to that node.
   */
  private async assignFromBlock(
    cidr: string,
    pool: Pool,
    num: number,
    handle: string,
    owner: AllocationAttrs,
    affineTo: string | null,
  ): Promise<Assignment[]> {
    return this.retrying(`assign from ${cidr}`, async () => {
      const [blk, h] = await Promise.all([this.readBlock(cidr), this.readHandle(handle)]);
      if (!blk || freeCount(blk.value) === 0) return [];
      if (affineTo !== null && blk.value.affinity !== hostAffinity(affineTo)) return [];
      const { block, ordinals } = assign(blk.value, num, handle, owner, this.clock.wallNow());
      await this.commitBlockAndHandle(cidr, blk.rev, bumpSequence(block), handle, h, ordinals.length);
      return ordinals.map((o) => toAssignment(ordinalToIp(block, o), cidr, pool));
    });
  }

  /** One transaction: the block's new value and the handle's count for it adjusted by `delta`. */
  private async commitBlockAndHandle(
    cidr: string,
    blockRev: string,
    block: Block | null,
    handle: string,
    h: Versioned<Handle> | null,
    delta: number,
  ): Promise<void> {
    const conds: Cond[] = [{ key: keys.block(cidr), modRevision: blockRev }];
    const writes: Write[] = [
      block ? { key: keys.block(cidr), value: serialize(block) } : { key: keys.block(cidr), delete: true },
    ];
    const hw = handleWrite(handle, h, { [cidr]: delta });
    if (hw) {
      conds.push(hw.cond);
      writes.push(hw.write);
    }
    await this.commit(conds, writes);
  }

  /** A block CIDR in the usable pools with no block record yet, starting at a node-specific offset. */
  private async findFreeBlock(usable: Pool[], node: string): Promise<{ cidr: string; pool: Pool } | null> {
    const existing = new Set((await this.store.listKeys(keys.blocks)).map(blockCidrFromKey));
    for (const pool of usable) {
      const pc = parseCidr(pool.cidr);
      const count = blockCount(pc, pool.blockSize);
      const start = BigInt(fnv1a32(node)) % count;
      // Only the existing blocks can be taken, so at most existing.size + 1 candidates are probed.
      const probes = count < BigInt(existing.size + 1) ? count : BigInt(existing.size + 1);
      for (let i = 0n; i < probes; i++) {
        const cidr = formatCidr(nthBlock(pc, pool.blockSize, (start + i) % count));
        if (!existing.has(cidr)) return { cidr, pool };
      }
    }
    return null;
  }

  /**
   * Two-phase claim of a block for a node. Returns true when the block is now the node's (claimed
   * here or found already claimed by it), false when another node won it.
   */
  async claimBlock(cidr: string, node: string): Promise<boolean> {
    const affKey = keys.affinity(node, cidr);
    return this.retrying(`claim ${cidr} for ${node}`, async () => {
      // Phase 1: pending affinity (create, or reset a stale pending/pendingDeletion one).
      const cur = await this.store.get(affKey);
      if (cur && parseAffinity(affKey, cur.value).state === 'confirmed') {
        const blk = await this.readBlock(cidr);
        if (blk?.value.affinity === hostAffinity(node)) return true;
      }
      const pendingRev = await this.commit(
        [{ key: affKey, modRevision: cur ? cur.modRevision : null }],
        [{ key: affKey, value: serialize({ state: 'pending' }) }],
      );
      // Phase 2: create the block affine to us and confirm, iff the block is absent and our
      // pending affinity is untouched.
      const block = newBlock(cidr, hostAffinity(node), this.clock.wallNow() * 1000);
      try {
        await this.commit(
          [
            { key: keys.block(cidr), modRevision: null },
            { key: affKey, modRevision: pendingRev },
          ],
          [
            { key: keys.block(cidr), value: serialize(block) },
            { key: affKey, value: serialize({ state: 'confirmed' }) },
          ],
        );
        return true;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      const existing = await this.readBlock(cidr);
      if (existing?.value.affinity === hostAffinity(node)) {
        await this.commit(
          [{ key: affKey, modRevision: pendingRev }],
          [{ key: affKey, value: serialize({ state: 'confirmed' }) }],
        );
        return true;
      }
      if (!existing) throw new ConflictError(affKey); // our pending affinity changed: start over
      // Another node owns the block: withdraw our pending claim.
      await this.commit([{ key: affKey, modRevision: pendingRev }], [{ key: affKey, delete: true }]).catch(
        (e: unknown) => {
          if (!(e instanceof ConflictError)) throw e;
        },
      );
      return false;
    });
  }

  async assignIp(args: AssignArgs): Promise<Assignment> {
    checkName('handle', args.handle);
    checkName('node', args.node);
    const { family, addr } = parseIp(args.ip);
    const [pools, cfg] = await Promise.all([this.readPools(), this.readConfig()]);
    const pool = pools.find((p) => contains(parseCidr(p.cidr), family, addr));
    if (!pool) throw new IpamError('invalid', `${args.ip} is not in any IP pool`);
    if (pool.disabled) throw new IpamError('invalid', `${args.ip} is in pool ${pool.name}, which is disabled`);
    const cidr = formatCidr(blockOf(family, addr, pool.blockSize));
    const owner: AllocationAttrs = { ...(args.attrs ?? {}), node: args.node };
    return this.retrying(`assign ${args.ip}`, async () => {
      let blk = await this.readBlock(cidr);
      if (!blk) {
        await this.claimBlock(cidr, args.node);
        blk = await this.readBlock(cidr);
        if (!blk) throw new ConflictError(keys.block(cidr));
      }
      if (cfg.strictAffinity && blk.value.affinity !== hostAffinity(args.node)) {
        throw new IpamError(
          'invalid',
          `${args.ip} is in block ${cidr} affine to ${blk.value.affinity ?? 'no node'} and strict affinity is enabled`,
        );
      }
      const h = await this.readHandle(args.handle);
      const next = assignOrdinal(blk.value, ipToOrdinal(blk.value, args.ip), args.handle, owner, this.clock.wallNow());
      await this.commitBlockAndHandle(cidr, blk.rev, bumpSequence(next), args.handle, h, 1);
      return toAssignment(args.ip, cidr, pool);
    });
  }

  // ---------------------------------------------------------------- release

  async releaseByHandle(handle: string): Promise<string[]> {
    checkName('handle', handle);
    const h = await this.readHandle(handle);
    if (!h) return [];
    const released: string[] = [];
    for (const cidr of Object.keys(h.value.blocks)) {
      released.push(
        ...(await new Promise<string[]>((resolve, reject) => {
          this.releaseBatches.push(cidr, { handle, resolve, reject });
        })),
      );
    }
    this.log.debug({ handle, released }, 'released by handle');
    return released;
  }

  /** Releases the batch's handles from one block: one transaction (block + every handle). */
  private async drainRelease(cidr: string, batch: ReleaseRequest[]): Promise<void> {
    try {
      const ids = [...new Set(batch.map((r) => r.handle))];
      const out = await this.retrying(`release in ${cidr}`, async (attempt) => {
        const [blk, ...hs] = await Promise.all([
          attempt === 0 ? this.readBlockCached(cidr) : this.readBlock(cidr),
          ...ids.map((id) => this.readHandle(id)),
        ]);
        const conds: Cond[] = [];
        const writes: Write[] = [];
        const ips = new Map<string, string[]>();
        let block = blk?.value ?? null;
        ids.forEach((id, i) => {
          const hh = hs[i] ?? null;
          if (!hh || !(cidr in hh.value.blocks)) return;
          if (block) {
            const r = releaseHandle(block, id);
            block = r.block;
            ips.set(
              id,
              r.released.map((x) => ordinalToIp(r.block, x.ordinal)),
            );
          }
          // Whatever the count said, the handle holds nothing in this block any more.
          const hw = handleWrite(id, hh, { [cidr]: -(hh.value.blocks[cidr] ?? 0) });
          if (hw) {
            conds.push(hw.cond);
            writes.push(hw.write);
          }
        });
        if (blk && block && block !== blk.value) {
          conds.push({ key: keys.block(cidr), modRevision: blk.rev });
          writes.push(blockWrite(cidr, afterRelease(block)));
        }
        if (writes.length) await this.commit(conds, writes);
        return ips;
      });
      for (const r of batch) r.resolve(out.get(r.handle) ?? []);
    } catch (err) {
      for (const r of batch) r.reject(err);
    }
  }

  async releaseIps(ips: string[]): Promise<string[]> {
    const pools = await this.readPools();
    const byBlock = new Map<string, string[]>();
    for (const ip of ips) {
      const { family, addr } = parseIp(ip);
      const pool = pools.find((p) => contains(parseCidr(p.cidr), family, addr));
      if (!pool) continue; // not ours: nothing to release
      const cidr = formatCidr(blockOf(family, addr, pool.blockSize));
      byBlock.set(cidr, [...(byBlock.get(cidr) ?? []), ip]);
    }
    const released: string[] = [];
    for (const [cidr, blockIps] of byBlock) {
      released.push(...(await this.releaseInBlock(cidr, blockIps, undefined)));
    }
    return released;
  }

  /**
   * Releases addresses of one block and decrements their handles, in one transaction. With
   * `expectSeq` (ordinal → allocation sequence number), an address re-assigned since is kept.
   */
  private async releaseInBlock(cidr: string, ips: string[], expectSeq: Map<number, number> | undefined) {
    return this.retrying(`release in ${cidr}`, async () => {
      const blk = await this.readBlock(cidr);
      if (!blk) return [];
      const ords = ips.map((ip) => ipToOrdinal(blk.value, ip)).filter((o) => o >= 0);
      const r = releaseOrdinals(blk.value, ords, expectSeq);
      if (r.released.length === 0) return [];
      const perHandle = new Map<string, number>();
      for (const x of r.released) perHandle.set(x.handle, (perHandle.get(x.handle) ?? 0) + 1);
      const handles = await Promise.all(
        [...perHandle.keys()].map(async (id) => [id, await this.readHandle(id)] as const),
      );
      const conds: Cond[] = [{ key: keys.block(cidr), modRevision: blk.rev }];
      const writes: Write[] = [blockWrite(cidr, afterRelease(r.block))];
      for (const [id, h] of handles) {
        const hw = handleWrite(id, h, { [cidr]: -(perHandle.get(id) ?? 0) });
        if (hw) {
          conds.push(hw.cond);
          writes.push(hw.write);
        }
      }
      await this.commit(conds, writes);
      return r.released.map((x) => ordinalToIp(blk.value, x.ordinal));
    });
  }

  async ipsByHandle(handle: string): Promise<Assignment[]> {
    checkName('handle', handle);
    const [h, pools] = await Promise.all([this.readHandle(handle), this.readPools()]);
    if (!h) return [];
    const out: Assignment[] = [];
    for (const cidr of Object.keys(h.value.blocks)) {
      const blk = await this.readBlock(cidr);
      const pool = poolOf(pools, cidr);
      if (!blk || !pool) continue;
      for (const o of ordinalsOf(blk.value, handle)) out.push(toAssignment(ordinalToIp(blk.value, o), cidr, pool));
    }
    return out;
  }

  /**
   * Releases empty blocks affine to `node` (or to every node), always keeping each node's last
   * block, and removes pending affinities whose block is not the node's (crashed claims).
   * Returns the released block CIDRs.
   */
  async releaseEmptyBlocks(opts: { node?: string; dryRun?: boolean } = {}): Promise<string[]> {
    const prefix = opts.node ? keys.nodeAffinities(opts.node) : keys.affinities;
    const kvs = await this.store.list(prefix);
    const byNode = new Map<string, { cidr: string; state: string; rev: string }[]>();
    for (const kv of kvs) {
      const k = parseAffinityKey(kv.key);
      if (!k) continue;
      const list = byNode.get(k.node) ?? [];
      list.push({ cidr: k.cidr, state: parseAffinity(kv.key, kv.value).state, rev: kv.modRevision });
      byNode.set(k.node, list);
    }
    const released: string[] = [];
    for (const [node, affs] of byNode) {
      const blocks = await Promise.all(affs.map((a) => this.readBlock(a.cidr)));
      const owned = affs
        .map((a, i) => ({ ...a, blk: blocks[i] ?? null }))
        .filter((a) => a.blk?.value.affinity === hostAffinity(node));
      const keepOne = owned.every((a) => a.blk && isEmpty(a.blk.value));
      for (const [i, a] of affs.entries()) {
        const blk = blocks[i] ?? null;
        const ours = blk?.value.affinity === hostAffinity(node);
        if (!ours) {
          if (a.state === 'confirmed' && blk) continue; // mismatch: reported by check, not guessed at here
          if (!opts.dryRun) {
            await this.commit(
              [{ key: keys.affinity(node, a.cidr), modRevision: a.rev }],
              [{ key: keys.affinity(node, a.cidr), delete: true }],
            ).catch(ignoreConflict);
          }
          continue;
        }
        if (!blk || !isEmpty(blk.value)) continue;
        if (keepOne && owned[0]?.cidr === a.cidr) continue; // the node's last block stays
        if (!opts.dryRun) {
          try {
            await this.commit(
              [
                { key: keys.block(a.cidr), modRevision: blk.rev },
                { key: keys.affinity(node, a.cidr), modRevision: a.rev },
              ],
              [
                { key: keys.block(a.cidr), delete: true },
                { key: keys.affinity(node, a.cidr), delete: true },
              ],
            );
          } catch (err) {
            ignoreConflict(err); // it changed (e.g. an address was just assigned): keep it
            continue;
          }
        }
        released.push(a.cidr);
        this.invalidate(`affinities/${node}`);
        this.log.info({ node, block: a.cidr, dryRun: opts.dryRun ?? false }, 'released empty block');
      }
    }
    return released;
  }

  // ---------------------------------------------------------------- pools, config, nodes

  async addPool(input: PoolInput): Promise<Pool> {
    const pool = validatePool(input);
    this.invalidate('pools');
    return this.retrying(`add pool ${pool.name}`, async () => {
      const [kvs, epoch] = await Promise.all([this.store.list(keys.pools), this.store.get(keys.poolsEpoch)]);
      const pools = kvs.map((kv) => parsePool(kv.key, kv.value));
      if (pools.some((p) => p.name === pool.name)) throw new IpamError('invalid', `pool ${pool.name} already exists`);
      const clash = overlappingPools([...pools, pool]).find(([, b]) => b === pool);
      if (clash) throw new IpamError('invalid', `pool ${pool.cidr} overlaps pool ${clash[0].name} (${clash[0].cidr})`);
      await this.commit(
        [
          { key: keys.pool(pool.name), modRevision: null },
          { key: keys.poolsEpoch, modRevision: epoch ? epoch.modRevision : null },
        ],
        [
          { key: keys.pool(pool.name), value: JSON.stringify(pool, null, 1) },
          { key: keys.poolsEpoch, value: nextEpoch(epoch?.value) },
        ],
      );
      return pool;
    });
  }

  /** Changes the mutable fields of a pool (disabled, natOutgoing, modes, nodeSelector). */
  async updatePool(name: string, change: Partial<Omit<PoolInput, 'name' | 'cidr' | 'blockSize'>>): Promise<Pool> {
    this.invalidate('pools');
    return this.retrying(`update pool ${name}`, async () => {
      const kv = await this.store.get(keys.pool(name));
      if (!kv) throw new IpamError('not-found', `no pool named ${name}`);
      const cur = parsePool(kv.key, kv.value);
      const next = validatePool({ ...cur, ...stripUndefined(change) });
      await this.commit(
        [{ key: kv.key, modRevision: kv.modRevision }],
        [{ key: kv.key, value: JSON.stringify(next, null, 1) }],
      );
      return next;
    });
  }

  /** Removes a pool; refused while any address in it is assigned. Its empty blocks go with it. */
  async removePool(name: string): Promise<void> {
    this.invalidate('pools');
    await this.retrying(`remove pool ${name}`, async () => {
      const [kv, epoch] = await Promise.all([this.store.get(keys.pool(name)), this.store.get(keys.poolsEpoch)]);
      if (!kv) throw new IpamError('not-found', `no pool named ${name}`);
      const pool = parsePool(kv.key, kv.value);
      const blockKvs = (await this.store.list(keys.blocks)).filter((b) => poolOf([pool], blockCidrFromKey(b.key)));
      const conds: Cond[] = [
        { key: kv.key, modRevision: kv.modRevision },
        { key: keys.poolsEpoch, modRevision: epoch ? epoch.modRevision : null },
      ];
      const writes: Write[] = [
        { key: kv.key, delete: true },
        { key: keys.poolsEpoch, value: nextEpoch(epoch?.value) },
      ];
      for (const b of blockKvs) {
        const blk = parseBlock(b.key, b.value);
        if (!isEmpty(blk)) {
          throw new IpamError('in-use', `pool ${name} still has ${inUseCount(blk)} assigned addresses in ${blk.cidr}`);
        }
        conds.push({ key: b.key, modRevision: b.modRevision });
        writes.push({ key: b.key, delete: true });
        const node = blk.affinity?.startsWith('host:') ? blk.affinity.slice(5) : null;
        if (node) writes.push({ key: keys.affinity(node, blk.cidr), delete: true });
      }
      await this.commit(conds, writes);
    });
  }

  async setConfig(cfg: Partial<IpamConfig>): Promise<IpamConfig> {
    this.invalidate('config');
    return this.retrying('set ipam config', async () => {
      const kv = await this.store.get(keys.config);
      const cur = kv ? parseConfig(kv.key, kv.value) : { ...DEFAULT_CONFIG };
      const next: IpamConfig = { ...cur, ...stripUndefined(cfg) };
      if (!Number.isInteger(next.maxBlocksPerHost) || next.maxBlocksPerHost < 0) {
        throw new IpamError('invalid', 'maxBlocksPerHost must be a non-negative integer');
      }
      await this.commit(
        [{ key: keys.config, modRevision: kv ? kv.modRevision : null }],
        [{ key: keys.config, value: serialize(next) }],
      );
      return next;
    });
  }

  /** Creates or replaces a node record's labels (used by pool nodeSelectors). */
  async setNodeLabels(node: string, labels: Record<string, string>): Promise<void> {
    checkName('node', node);
    this.invalidate(`labels/${node}`);
    await this.retrying(`set labels of ${node}`, async () => {
      const kv = await this.store.get(keys.node(node));
      const cur = kv ? parseNode(kv.key, kv.value) : { name: node, labels: {} };
      await this.commit(
        [{ key: keys.node(node), modRevision: kv ? kv.modRevision : null }],
        [{ key: keys.node(node), value: serialize({ ...cur, labels }) }],
      );
    });
  }

  // ---------------------------------------------------------------- garbage collection

  /**
   * Releases allocations whose owner is gone. An allocation is leaked when it names a pod
   * (`namespace/pod`) not in `livePods`, or a node not in `liveNodes` (when given), and is older
   * than `graceMs`. Release is all-or-none per handle, and guarded by allocation sequence numbers
   * so an address re-assigned since the scan is never freed. Then empty blocks are released.
   */
  async gc(opts: { livePods: Set<string>; liveNodes?: Set<string> | undefined; graceMs: number; dryRun?: boolean }) {
    const now = this.clock.wallNow();
    const kvs = await this.store.list(keys.blocks);
    interface Leak {
      ip: string;
      block: string;
      ordinal: number;
      seq: number;
      owner: AllocationAttrs;
    }
    const leaks = new Map<string, Leak[]>();
    const keep = new Set<string>();
    for (const kv of kvs) {
      const b = parseBlock(kv.key, kv.value);
      b.allocations.forEach((idx, o) => {
        if (idx === null) return;
        const a = b.attributes[idx];
        if (!a) return;
        const pod = a.owner.pod && a.owner.namespace ? `${a.owner.namespace}/${a.owner.pod}` : null;
        const nodeGone =
          opts.liveNodes !== undefined && a.owner.node !== undefined && !opts.liveNodes.has(a.owner.node);
        const podGone = pod !== null && !opts.livePods.has(pod);
        const old = now - a.assignedAt >= opts.graceMs;
        if ((nodeGone || podGone) && old) {
          const l = leaks.get(a.handle) ?? [];
          l.push({
            ip: ordinalToIp(b, o),
            block: b.cidr,
            ordinal: o,
            seq: b.sequenceNumberForAllocation[String(o)] ?? -1,
            owner: a.owner,
          });
          leaks.set(a.handle, l);
        } else {
          keep.add(a.handle);
        }
      });
    }
    const released: { handle: string; ips: string[] }[] = [];
    for (const [handle, ls] of leaks) {
      if (keep.has(handle)) continue; // all-or-none per handle
      if (!opts.dryRun) {
        const ips: string[] = [];
        for (const block of new Set(ls.map((l) => l.block))) {
          const mine = ls.filter((l) => l.block === block);
          const seq = new Map(mine.map((l) => [l.ordinal, l.seq] as const));
          ips.push(
            ...(await this.releaseInBlock(
              block,
              mine.map((l) => l.ip),
              seq,
            )),
          );
        }
        released.push({ handle, ips });
      } else {
        released.push({ handle, ips: ls.map((l) => l.ip) });
      }
      this.log.info({ handle, ips: ls.map((l) => l.ip), owner: ls[0]?.owner, dryRun: opts.dryRun ?? false }, 'gc leak');
    }
    const blocks = await this.releaseEmptyBlocks({ dryRun: opts.dryRun ?? false });
    return { released, releasedBlocks: blocks };
  }
}

// ------------------------------------------------------------------ helpers (pure)

function checkName(what: string, v: string): void {
  if (typeof v !== 'string' || !isValidName(v)) {
    throw new IpamError('invalid', `invalid ${what} ${JSON.stringify(v)}: letters, digits, '.', '-', '_', ':' only`);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The pools epoch counts pool creations and removals; its value is informational. */
function nextEpoch(cur: string | undefined): string {
  let n = 0;
  try {
    n = Number((JSON.parse(cur ?? '{}') as { epoch?: unknown }).epoch) || 0;
  } catch {
    n = 0;
  }
  return serialize({ epoch: n + 1 });
}

function ignoreConflict(err: unknown): void {
  if (!(err instanceof ConflictError)) throw err;
}

/** The pool (of those given) that contains a block CIDR. */
export function poolOf(pools: Pool[], blockCidr: string): Pool | undefined {
  const b = parseCidr(blockCidr);
  return pools.find((p) => {
    const pc = parseCidr(p.cidr);
    return pc.family === b.family && b.len === p.blockSize && contains(pc, b.family, b.addr);
  });
}

/**
 * Pools a node may assign from for one family: the named ones (each must exist, be enabled and be
 * of the family), else every enabled pool whose nodeSelector matches the node's labels.
 */
export function usablePools(
  pools: Pool[],
  family: IpFamily,
  node: string,
  labels: Record<string, string>,
  requested?: string[],
): Pool[] {
  const ofFamily = (p: Pool) => parseCidr(p.cidr).family === family;
  if (requested && requested.length > 0) {
    const chosen: Pool[] = [];
    for (const name of requested) {
      const p = pools.find((x) => x.name === name);
      if (!p) throw new IpamError('not-found', `no pool named ${name}`);
      if (p.disabled) throw new IpamError('invalid', `pool ${name} is disabled`);
      if (ofFamily(p)) chosen.push(p);
    }
    if (chosen.length === 0) {
      throw new IpamError('invalid', `none of the requested pools [${requested.join(', ')}] is IPv${family}`);
    }
    return chosen;
  }
  const usable = pools.filter((p) => ofFamily(p) && !p.disabled && parseSelector(p.nodeSelector)({ ...labels }));
  if (usable.length === 0) throw new IpamError('not-found', `no enabled IPv${family} pool selects node ${node}`);
  return usable;
}

function toAssignment(ip: string, block: string, pool: Pool): Assignment {
  return {
    ip,
    family: ip.includes(':') ? 6 : 4,
    block,
    pool: pool.name,
    ipipMode: pool.ipipMode,
    vxlanMode: pool.vxlanMode,
  };
}

/** After a release: bump the sequence; an emptied block with no affinity is deleted (null). */
function afterRelease(b: Block): Block | null {
  return isEmpty(b) && b.affinity === null ? null : bumpSequence(b);
}

function blockWrite(cidr: string, b: Block | null): Write {
  return b ? { key: keys.block(cidr), value: serialize(b) } : { key: keys.block(cidr), delete: true };
}

/** The conditional write that applies per-block count changes to a handle (deleted at zero). */
function handleWrite(
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

export { countsByHandle, freeCount, inUseCount };
