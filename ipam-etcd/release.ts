/**
 * Release: by handle (batched per block), by address, and guarded release for the GC.
 *
 * Complicating factors:
 *  - Idempotence: release of a free address or an unknown handle is a no-op, never an error.
 *  - Block and handle change in one transaction, so the handle index never disagrees with the
 *    blocks; whatever a handle's count said, after its release it holds nothing in that block.
 *  - Group commit: concurrent releases touching one block become one transaction (Batcher).
 *  - A block emptied of addresses and without affinity is deleted, not kept as an empty record.
 *  - The GC's release carries the allocation sequence numbers it saw, so an address re-assigned
 *    since the scan is kept (libcalico-go releaseIPsFromBlock does the same).
 */
import { Batcher } from './batch.js';
import {
  bumpSequence,
  ipToOrdinal,
  isEmpty,
  ordinalsOf,
  ordinalToIp,
  releaseHandle,
  releaseOrdinals,
} from './block.js';
import { blockOf, contains, formatCidr, parseCidr, parseIp } from './cidr.js';
import { checkName, keys } from './keys.js';
import { poolOf, toAssignment } from './pools.js';
import type { Cond, Write } from './store.js';
import { blockWrite, handleWrite, type IpamTxn } from './txn.js';
import type { Assignment, Block } from './types.js';

/** One caller releasing everything a handle holds in one block. */
interface ReleaseRequest {
  handle: string;
  resolve: (ips: string[]) => void;
  reject: (err: unknown) => void;
}

export class Releaser {
  /** Callers releasing a handle's addresses, per block CIDR. */
  private readonly batches: Batcher<ReleaseRequest>;

  constructor(
    private readonly tx: IpamTxn,
    maxBatch: number,
  ) {
    this.batches = new Batcher(maxBatch, (cidr, batch) => this.drainRelease(cidr, batch));
  }

  async releaseByHandle(handle: string): Promise<string[]> {
    checkName('handle', handle);
    const h = await this.tx.readHandle(handle);
    if (!h) return [];
    const released: string[] = [];
    for (const cidr of Object.keys(h.value.blocks)) {
      released.push(
        ...(await new Promise<string[]>((resolve, reject) => {
          this.batches.push(cidr, { handle, resolve, reject });
        })),
      );
    }
    this.tx.log.debug({ handle, released }, 'released by handle');
    return released;
  }

  /** Releases the batch's handles from one block: one transaction (block + every handle). */
  private async drainRelease(cidr: string, batch: ReleaseRequest[]): Promise<void> {
    try {
      const ids = [...new Set(batch.map((r) => r.handle))];
      const out = await this.tx.retrying(`release in ${cidr}`, async (attempt) => {
        const [blk, ...hs] = await Promise.all([
          attempt === 0 ? this.tx.readBlockCached(cidr) : this.tx.readBlock(cidr),
          ...ids.map((id) => this.tx.readHandle(id)),
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
        if (writes.length) await this.tx.commit(conds, writes);
        return ips;
      });
      for (const r of batch) r.resolve(out.get(r.handle) ?? []);
    } catch (err) {
      for (const r of batch) r.reject(err);
    }
  }

  async releaseIps(ips: string[]): Promise<string[]> {
    const pools = await this.tx.readPools();
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
  releaseInBlock(cidr: string, ips: string[], expectSeq: Map<number, number> | undefined): Promise<string[]> {
    return this.tx.retrying(`release in ${cidr}`, async () => {
      const blk = await this.tx.readBlock(cidr);
      if (!blk) return [];
      const ords = ips.map((ip) => ipToOrdinal(blk.value, ip)).filter((o) => o >= 0);
      const r = releaseOrdinals(blk.value, ords, expectSeq);
      if (r.released.length === 0) return [];
      const perHandle = new Map<string, number>();
      for (const x of r.released) perHandle.set(x.handle, (perHandle.get(x.handle) ?? 0) + 1);
      const handles = await Promise.all(
        [...perHandle.keys()].map(async (id) => [id, await this.tx.readHandle(id)] as const),
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
      await this.tx.commit(conds, writes);
      return r.released.map((x) => ordinalToIp(blk.value, x.ordinal));
    });
  }

  /** The addresses a handle holds now (empty when none). */
  async ipsByHandle(handle: string): Promise<Assignment[]> {
    checkName('handle', handle);
    const [h, pools] = await Promise.all([this.tx.readHandle(handle), this.tx.readPools()]);
    if (!h) return [];
    const out: Assignment[] = [];
    for (const cidr of Object.keys(h.value.blocks)) {
      const blk = await this.tx.readBlock(cidr);
      const pool = poolOf(pools, cidr);
      if (!blk || !pool) continue;
      for (const o of ordinalsOf(blk.value, handle)) out.push(toAssignment(ordinalToIp(blk.value, o), cidr, pool));
    }
    return out;
  }
}

/** After a release: bump the sequence; an emptied block with no affinity is deleted (null). */
function afterRelease(b: Block): Block | null {
  return isEmpty(b) && b.affinity === null ? null : bumpSequence(b);
}
