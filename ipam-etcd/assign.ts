/**
 * Assignment: affine blocks first (group commit per node), then a newly claimed block, then
 * borrowing from other nodes' blocks; and assignment of one given address.
 *
 * Complicating factors:
 *  - Two nodes must never own one block: a claim is two-phase, like Calico's. Phase 1 creates the
 *    node's affinity as `pending`; phase 2 creates the block (only if absent) with `affinity:
 *    host:<node>` and confirms the affinity, in one transaction that also checks the pending
 *    affinity is unchanged. The block's `affinity` field is the authority; a `pending` affinity
 *    counts as absent (a crash between the phases leaves one, which `ipam gc` removes).
 *  - Multi-address requests are all-or-nothing: if any address cannot be had, the ones this call
 *    assigned are released again (release.ts) before the error is thrown.
 *  - Concurrent callers on one node would all race for the same block and mostly lose: they are
 *    queued per node and family and merged into one transaction per block (Batcher). Block claims
 *    are serialised per node in this process.
 *  - Handles of new pods do not exist yet: the first attempt assumes so and reads them only after
 *    a conflict. A `fresh` request (the caller says the handle is new) whose handle turns out to
 *    exist ends there with HandleExistsError, nothing written for it, before it has any address.
 */
import { Batcher } from './batch.js';
import { assign, assignOrdinal, bumpSequence, freeCount, ipToOrdinal, newBlock, ordinalToIp } from './block.js';
import { blockCount, blockOf, contains, fnv1a32, formatCidr, nthBlock, parseCidr, parseIp } from './cidr.js';
import { ConflictError, HandleExistsError, IpamError } from './errors.js';
import { blockCidrFromKey, checkName, keys } from './keys.js';
import { poolOf, toAssignment, usablePools } from './pools.js';
import { parseAffinity, serialize } from './records.js';
import type { Releaser } from './release.js';
import type { Cond, Write } from './store.js';
import { handleWrite, hostAffinity, type IpamTxn, type Versioned } from './txn.js';
import type {
  AllocationAttrs,
  AssignArgs,
  Assignment,
  AutoAssignArgs,
  Block,
  Handle,
  IpamConfig,
  IpFamily,
  Pool,
} from './types.js';

/** Calico's default per-node block cap when maxBlocksPerHost is 0. */
export const DEFAULT_MAX_BLOCKS_PER_HOST = 20;

/** One caller waiting for addresses from its node's affine blocks (see affineAssign). */
interface AffineRequest {
  num: number;
  handle: string;
  owner: AllocationAttrs;
  usable: Pool[];
  got: Assignment[];
  /** The handle must not exist yet (AutoAssignArgs.fresh, and nothing assigned in this call so far). */
  fresh: boolean;
  /** This call already wrote the handle (another family or round): read it on the first try. */
  held: boolean;
  /** Set when a fresh request found its handle: rejected with this instead of resolved. */
  err?: HandleExistsError;
  resolve: (got: Assignment[]) => void;
  reject: (err: unknown) => void;
}

export class Assigner {
  /** Callers waiting for affine addresses, per node and family (key `node/family`). */
  private readonly batches: Batcher<AffineRequest>;
  /** Per node: serialises block claims made by this process. */
  private readonly claimLocks = new Map<string, Promise<unknown>>();

  constructor(
    private readonly tx: IpamTxn,
    private readonly release: Releaser,
    maxBatch: number,
  ) {
    this.batches = new Batcher(maxBatch, (key, batch) => this.drainAssign(key.slice(0, key.lastIndexOf('/')), batch));
  }

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
    const tx = this.tx;
    const [pools, cfg, labels] = await Promise.all([
      tx.cached('pools', () => tx.readPools()),
      tx.cached('config', () => tx.readConfig()),
      tx.cached(`labels/${args.node}`, () => tx.readNodeLabels(args.node)),
    ]);
    const done: Assignment[] = [];
    try {
      for (const [family, n] of want) {
        if (n === 0) continue;
        const usable = usablePools(pools, family, args.node, labels, args.pools);
        // After the first family the handle exists (this call wrote it): not fresh, read it.
        const sofar = done.length > 0;
        const fam = { ...args, fresh: !!args.fresh && !sofar, held: sofar };
        done.push(...(await this.assignFamily(family, n, usable, cfg, fam)));
      }
    } catch (err) {
      if (done.length > 0) {
        await this.release.releaseIps(done.map((a) => a.ip)).catch((e: unknown) => {
          tx.log.warn({ err: e, ips: done.map((a) => a.ip) }, 'rollback of partial assignment failed');
        });
      }
      throw err;
    }
    tx.log.debug({ handle: args.handle, node: args.node, ips: done.map((a) => a.ip) }, 'assigned');
    return done;
  }

  private async assignFamily(
    family: IpFamily,
    num: number,
    usable: Pool[],
    cfg: IpamConfig,
    args: AutoAssignArgs & { held?: boolean },
  ): Promise<Assignment[]> {
    const out: Assignment[] = [];
    const owner: AllocationAttrs = { ...(args.attrs ?? {}), node: args.node };
    const maxBlocks = cfg.maxBlocksPerHost > 0 ? cfg.maxBlocksPerHost : DEFAULT_MAX_BLOCKS_PER_HOST;
    const inUsable = (cidr: string) => poolOf(usable, cidr);
    let blockLimitHit = false;

    // 1. The node's own blocks (requests from concurrent callers merged into one transaction per
    //    block), then 2. a new block claimed for the node, and again.
    for (let round = 0; out.length < num && round < 64; round++) {
      const fresh = !!args.fresh && out.length === 0;
      const held = !!args.held || out.length > 0;
      out.push(
        ...(await this.affineAssign(args.node, family, usable, num - out.length, args.handle, owner, fresh, held)),
      );
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
      const blockKeys = await this.tx.store.listKeys(keys.blocks);
      for (const key of blockKeys) {
        if (out.length >= num) break;
        const cidr = blockCidrFromKey(key);
        const pool = inUsable(cidr);
        if (!pool) continue;
        const fresh = !!args.fresh && out.length === 0;
        out.push(...(await this.assignFromBlock(cidr, pool, num - out.length, args.handle, owner, null, fresh)));
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
        await this.release.releaseIps(out.map((a) => a.ip)).catch((e: unknown) => {
          this.tx.log.warn({ err: e }, 'rollback of partial assignment failed');
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
    fresh: boolean,
    held: boolean,
  ): Promise<Assignment[]> {
    return new Promise<Assignment[]>((resolve, reject) => {
      this.batches.push(`${node}/${family}`, { num, handle, owner, usable, got: [], fresh, held, resolve, reject });
    });
  }

  private async drainAssign(node: string, batch: AffineRequest[]): Promise<void> {
    const tx = this.tx;
    try {
      const affs = await tx.cached(`affinities/${node}`, () => tx.nodeAffinities(node));
      for (const a of affs) {
        if (a.state !== 'confirmed') continue;
        if (!batch.some((r) => !r.err && r.got.length < r.num && poolOf(r.usable, a.cidr))) continue;
        await this.assignBatchFromBlock(node, a.cidr, batch);
        if (batch.every((r) => r.err || r.got.length >= r.num)) break;
      }
      for (const r of batch) {
        if (r.err) r.reject(r.err);
        else r.resolve(r.got);
      }
    } catch (err) {
      // The callers never learn of addresses already committed for them: hand those back here.
      const stranded = batch.flatMap((r) => r.got.map((a) => a.ip));
      if (stranded.length) {
        await this.release
          .releaseIps(stranded)
          .catch((e: unknown) => tx.log.warn({ err: e, ips: stranded }, 'rollback failed'));
      }
      for (const r of batch) r.reject(err);
    }
  }

  /**
   * As many of the batch's outstanding addresses as the block has, one transaction per try. The
   * first try uses the cached block and assumes the handles this call has not written yet absent
   * (new pods'): a conflict then is most often such a handle existing (a repeated request), so it
   * is tried again at once with everything read, without the backoff a contended block gets.
   */
  private async assignBatchFromBlock(node: string, cidr: string, batch: AffineRequest[]): Promise<void> {
    await this.tx.retrying(`assign from ${cidr}`, async (attempt) => {
      if (attempt > 0) return this.takeFromBlock(node, cidr, batch, true);
      try {
        await this.takeFromBlock(node, cidr, batch, false);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        await this.takeFromBlock(node, cidr, batch, true);
      }
    });
  }

  /**
   * One transaction: the block and every handle involved. `readAll`: the block from etcd and every
   * handle read (a fresh request whose handle exists leaves the batch: HandleExistsError); else the
   * cached block, and only handles known to exist are read (written earlier in this call).
   */
  private async takeFromBlock(node: string, cidr: string, batch: AffineRequest[], readAll: boolean): Promise<void> {
    const tx = this.tx;
    const blk = readAll ? await tx.readBlock(cidr) : await tx.readBlockCached(cidr);
    if (!blk || blk.value.affinity !== hostAffinity(node) || freeCount(blk.value) === 0) return;
    const open = batch.filter((r) => !r.err && r.got.length < r.num);
    const ids = [...new Set(open.filter((r) => readAll || r.held || r.got.length > 0).map((r) => r.handle))];
    const read = new Map(await Promise.all(ids.map(async (id) => [id, await tx.readHandle(id)] as const)));
    if (readAll) {
      for (const r of open)
        if (r.fresh && r.got.length === 0 && read.get(r.handle)) r.err = new HandleExistsError(r.handle);
    }
    let block = blk.value;
    const takes: { r: AffineRequest; pool: Pool; ordinals: number[] }[] = [];
    for (const r of batch) {
      if (r.err) continue;
      const pool = poolOf(r.usable, cidr);
      const want = r.num - r.got.length;
      if (!pool || want <= 0 || freeCount(block) === 0) continue;
      const t = assign(block, want, r.handle, r.owner, tx.clock.wallNow());
      block = t.block;
      takes.push({ r, pool, ordinals: t.ordinals });
    }
    if (takes.length === 0) return;
    const perHandle = new Map<string, number>();
    for (const t of takes) perHandle.set(t.r.handle, (perHandle.get(t.r.handle) ?? 0) + t.ordinals.length);
    const conds: Cond[] = [{ key: keys.block(cidr), modRevision: blk.rev }];
    const writes: Write[] = [{ key: keys.block(cidr), value: serialize(bumpSequence(block)) }];
    for (const [id, n] of perHandle) {
      const hw = handleWrite(id, read.get(id) ?? null, { [cidr]: n });
      if (hw) {
        conds.push(hw.cond);
        writes.push(hw.write);
      }
    }
    await tx.commit(conds, writes);
    for (const t of takes) t.r.got.push(...t.ordinals.map((o) => toAssignment(ordinalToIp(block, o), cidr, t.pool)));
  }

  /**
   * Claims one more block for the node, one claim at a time per node in this process. Returns
   * 'ok' when the node (now) has affine space to try again, 'limit' at the block cap, 'none' when
   * the usable pools have no unclaimed block left.
   */
  private async claimForNode(node: string, family: IpFamily, usable: Pool[], maxBlocks: number) {
    const tx = this.tx;
    const prev = this.claimLocks.get(node) ?? Promise.resolve();
    const run = prev
      .catch(() => {})
      .then(async (): Promise<'ok' | 'limit' | 'none'> => {
        tx.invalidate(`affinities/${node}`);
        const affs = (await tx.cached(`affinities/${node}`, () => tx.nodeAffinities(node))).filter(
          (a) => a.state === 'confirmed',
        );
        // Another caller may have claimed a block while we waited for the lock.
        const mine = affs.filter((a) => poolOf(usable, a.cidr));
        const blocks = await Promise.all(mine.map((a) => tx.readBlock(a.cidr)));
        if (blocks.some((b) => b && b.value.affinity === hostAffinity(node) && freeCount(b.value) > 0)) return 'ok';
        if (affs.length >= maxBlocks) return 'limit';
        for (let tries = 0; tries < 16; tries++) {
          const candidate = await this.findFreeBlock(usable, node);
          if (!candidate) return 'none';
          const claimed = await this.claimBlock(candidate.cidr, node);
          tx.log.info({ node, family, block: candidate.cidr, claimed }, 'block claim');
          if (claimed) return 'ok';
        }
        return 'none';
      });
    this.claimLocks.set(node, run);
    try {
      return await run;
    } finally {
      tx.invalidate(`affinities/${node}`);
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
    fresh = false,
  ): Promise<Assignment[]> {
    const tx = this.tx;
    return tx.retrying(`assign from ${cidr}`, async () => {
      const [blk, h] = await Promise.all([tx.readBlock(cidr), tx.readHandle(handle)]);
      if (fresh && h) throw new HandleExistsError(handle);
      if (!blk || freeCount(blk.value) === 0) return [];
      if (affineTo !== null && blk.value.affinity !== hostAffinity(affineTo)) return [];
      const { block, ordinals } = assign(blk.value, num, handle, owner, tx.clock.wallNow());
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
    await this.tx.commit(conds, writes);
  }

  /** A block CIDR in the usable pools with no block record yet, starting at a node-specific offset. */
  private async findFreeBlock(usable: Pool[], node: string): Promise<{ cidr: string; pool: Pool } | null> {
    const existing = new Set((await this.tx.store.listKeys(keys.blocks)).map(blockCidrFromKey));
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
    const tx = this.tx;
    const affKey = keys.affinity(node, cidr);
    return tx.retrying(`claim ${cidr} for ${node}`, async () => {
      // Phase 1: pending affinity (create, or reset a stale pending/pendingDeletion one).
      const cur = await tx.store.get(affKey);
      if (cur && parseAffinity(affKey, cur.value).state === 'confirmed') {
        const blk = await tx.readBlock(cidr);
        if (blk?.value.affinity === hostAffinity(node)) return true;
      }
      const pendingRev = await tx.commit(
        [{ key: affKey, modRevision: cur ? cur.modRevision : null }],
        [{ key: affKey, value: serialize({ state: 'pending' }) }],
      );
      // Phase 2: create the block affine to us and confirm, iff the block is absent and our
      // pending affinity is untouched.
      const block = newBlock(cidr, hostAffinity(node), tx.clock.wallNow() * 1000);
      try {
        await tx.commit(
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
      const existing = await tx.readBlock(cidr);
      if (existing?.value.affinity === hostAffinity(node)) {
        await tx.commit(
          [{ key: affKey, modRevision: pendingRev }],
          [{ key: affKey, value: serialize({ state: 'confirmed' }) }],
        );
        return true;
      }
      if (!existing) throw new ConflictError(affKey); // our pending affinity changed: start over
      // Another node owns the block: withdraw our pending claim.
      await tx
        .commit([{ key: affKey, modRevision: pendingRev }], [{ key: affKey, delete: true }])
        .catch((e: unknown) => {
          if (!(e instanceof ConflictError)) throw e;
        });
      return false;
    });
  }

  async assignIp(args: AssignArgs): Promise<Assignment> {
    checkName('handle', args.handle);
    checkName('node', args.node);
    const tx = this.tx;
    const { family, addr } = parseIp(args.ip);
    const [pools, cfg] = await Promise.all([tx.readPools(), tx.readConfig()]);
    const pool = pools.find((p) => contains(parseCidr(p.cidr), family, addr));
    if (!pool) throw new IpamError('invalid', `${args.ip} is not in any IP pool`);
    if (pool.disabled) throw new IpamError('invalid', `${args.ip} is in pool ${pool.name}, which is disabled`);
    const cidr = formatCidr(blockOf(family, addr, pool.blockSize));
    const owner: AllocationAttrs = { ...(args.attrs ?? {}), node: args.node };
    return tx.retrying(`assign ${args.ip}`, async () => {
      let blk = await tx.readBlock(cidr);
      if (!blk) {
        await this.claimBlock(cidr, args.node);
        blk = await tx.readBlock(cidr);
        if (!blk) throw new ConflictError(keys.block(cidr));
      }
      if (cfg.strictAffinity && blk.value.affinity !== hostAffinity(args.node)) {
        throw new IpamError(
          'invalid',
          `${args.ip} is in block ${cidr} affine to ${blk.value.affinity ?? 'no node'} and strict affinity is enabled`,
        );
      }
      const h = await tx.readHandle(args.handle);
      const next = assignOrdinal(blk.value, ipToOrdinal(blk.value, args.ip), args.handle, owner, tx.clock.wallNow());
      await this.commitBlockAndHandle(cidr, blk.rev, bumpSequence(next), args.handle, h, 1);
      return toAssignment(args.ip, cidr, pool);
    });
  }
}
