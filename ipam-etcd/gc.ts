/**
 * Garbage collection: addresses whose owner is gone, and empty blocks. The decisions are pure
 * functions over plain records (classifyLeaks, planEmptyBlockRelease) with table tests in
 * gc.test.ts; the Gc class reads the records, applies the decisions and logs.
 *
 * Complicating factors:
 *  - The scan and the release are not one transaction: an address freed and re-assigned between
 *    them must survive, so each release carries the allocation sequence number the scan saw.
 *  - A handle's addresses go all together or not at all: one live allocation keeps the handle.
 *  - A young allocation (within the grace period) is never a leak: the pod may not be visible
 *    in the API yet.
 *  - Each node keeps its last block even when empty (it is about to need one again); a pending
 *    affinity whose block is not the node's is a crashed claim and is removed; a confirmed
 *    affinity whose block names another node is a mismatch for `ipam check`, not guessed at here.
 */
import { isEmpty, ordinalToIp } from './block.js';
import { keys } from './keys.js';
import { parseBlock } from './records.js';
import type { Releaser } from './release.js';
import { hostAffinity, type IpamTxn, ignoreConflict, type Versioned } from './txn.js';
import type { AllocationAttrs, Block } from './types.js';

/** What makes an allocation leaked. */
export interface LeakCriteria {
  /** Live pods as `namespace/pod`. */
  livePods: ReadonlySet<string>;
  /** Live nodes; when undefined, node liveness is not judged. */
  liveNodes?: ReadonlySet<string> | undefined;
  /** Allocations younger than this are kept whatever their owner. */
  graceMs: number;
  /** Wall-clock now, ms since the epoch (allocations carry wall-clock `assignedAt`). */
  nowMs: number;
}

/** One leaked address, with what the guarded release needs. */
export interface LeakedAddress {
  ip: string;
  block: string;
  ordinal: number;
  /** The allocation's sequence number at scan time (-1 if the block has none for it). */
  seq: number;
  owner: AllocationAttrs;
}

export interface LeakedHandle {
  handle: string;
  addresses: LeakedAddress[];
}

/**
 * The handles whose every allocation is leaked: each allocation names a pod not in `livePods`
 * or a node not in `liveNodes`, and is at least `graceMs` old. Handles in first-seen order,
 * addresses in block then ordinal order.
 */
export function classifyLeaks(blocks: readonly Block[], c: LeakCriteria): LeakedHandle[] {
  const leaks = new Map<string, LeakedAddress[]>();
  const keep = new Set<string>();
  for (const b of blocks) {
    b.allocations.forEach((idx, o) => {
      if (idx === null) return;
      const a = b.attributes[idx];
      if (!a) return;
      const pod = a.owner.pod && a.owner.namespace ? `${a.owner.namespace}/${a.owner.pod}` : null;
      const nodeGone = c.liveNodes !== undefined && a.owner.node !== undefined && !c.liveNodes.has(a.owner.node);
      const podGone = pod !== null && !c.livePods.has(pod);
      const old = c.nowMs - a.assignedAt >= c.graceMs;
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
  const out: LeakedHandle[] = [];
  for (const [handle, addresses] of leaks) if (!keep.has(handle)) out.push({ handle, addresses }); // all-or-none
  return out;
}

/** One of a node's affinities with the block it names (null when there is no block record). */
export interface AffinityWithBlock {
  cidr: string;
  state: string;
  /** The affinity's mod revision. */
  rev: string;
  block: Versioned<Block> | null;
}

/** What to do about one affinity (each guarded by the revisions it was decided on). */
export type EmptyBlockAction =
  | { op: 'drop-affinity'; cidr: string; affinityRev: string }
  | { op: 'release-block'; cidr: string; blockRev: string; affinityRev: string };

/**
 * For one node's affinities (in key order): drop those whose block is not the node's unless they
 * are confirmed with a block (a mismatch for check), and release the node's empty blocks except
 * its last one when all of its blocks are empty (the first in key order stays).
 */
export function planEmptyBlockRelease(node: string, affs: readonly AffinityWithBlock[]): EmptyBlockAction[] {
  const mine = hostAffinity(node);
  const owned = affs.filter((a) => a.block?.value.affinity === mine);
  const keepOne = owned.every((a) => a.block && isEmpty(a.block.value));
  const out: EmptyBlockAction[] = [];
  for (const a of affs) {
    const blk = a.block;
    if (blk?.value.affinity !== mine) {
      if (a.state === 'confirmed' && blk) continue;
      out.push({ op: 'drop-affinity', cidr: a.cidr, affinityRev: a.rev });
      continue;
    }
    if (!isEmpty(blk.value)) continue;
    if (keepOne && owned[0]?.cidr === a.cidr) continue; // the node's last block stays
    out.push({ op: 'release-block', cidr: a.cidr, blockRev: blk.rev, affinityRev: a.rev });
  }
  return out;
}

export interface GcOptions {
  livePods: Set<string>;
  liveNodes?: Set<string> | undefined;
  graceMs: number;
  dryRun?: boolean;
}

export interface GcReport {
  released: { handle: string; ips: string[] }[];
  releasedBlocks: string[];
}

export class Gc {
  constructor(
    private readonly tx: IpamTxn,
    private readonly release: Releaser,
  ) {}

  /**
   * Releases allocations whose owner is gone (classifyLeaks), each handle's in one guarded
   * release per block, then releases empty blocks.
   */
  async gc(opts: GcOptions): Promise<GcReport> {
    const tx = this.tx;
    const nowMs = tx.clock.wallNow();
    const blocks = (await tx.store.list(keys.blocks)).map((kv) => parseBlock(kv.key, kv.value));
    const leaked = classifyLeaks(blocks, {
      livePods: opts.livePods,
      liveNodes: opts.liveNodes,
      graceMs: opts.graceMs,
      nowMs,
    });
    const released: { handle: string; ips: string[] }[] = [];
    for (const { handle, addresses: ls } of leaked) {
      if (!opts.dryRun) {
        released.push({ handle, ips: await this.releaseGuarded(ls) });
      } else {
        released.push({ handle, ips: ls.map((l) => l.ip) });
      }
      tx.log.info({ handle, ips: ls.map((l) => l.ip), owner: ls[0]?.owner, dryRun: opts.dryRun ?? false }, 'gc leak');
    }
    const releasedBlocks = await this.releaseEmptyBlocks({ dryRun: opts.dryRun ?? false });
    return { released, releasedBlocks };
  }

  /**
   * Releases the given addresses, one transaction per block, each guarded by the allocation
   * sequence number it was seen with: an address released and re-assigned since (ABA) is kept.
   * Returns the addresses released.
   */
  async releaseGuarded(
    addresses: readonly Pick<LeakedAddress, 'ip' | 'block' | 'ordinal' | 'seq'>[],
  ): Promise<string[]> {
    const ips: string[] = [];
    for (const block of new Set(addresses.map((l) => l.block))) {
      const mine = addresses.filter((l) => l.block === block);
      const seq = new Map(mine.map((l) => [l.ordinal, l.seq] as const));
      ips.push(
        ...(await this.release.releaseInBlock(
          block,
          mine.map((l) => l.ip),
          seq,
        )),
      );
    }
    return ips;
  }

  /**
   * Releases empty blocks affine to `node` (or to every node), always keeping each node's last
   * block, and removes pending affinities whose block is not the node's (crashed claims).
   * Returns the released block CIDRs.
   */
  async releaseEmptyBlocks(opts: { node?: string; dryRun?: boolean } = {}): Promise<string[]> {
    const tx = this.tx;
    const prefix = opts.node ? keys.nodeAffinities(opts.node) : keys.affinities;
    const byNode = new Map<string, { cidr: string; state: string; rev: string }[]>();
    for (const a of await tx.readAffinities(prefix)) {
      const list = byNode.get(a.node) ?? [];
      list.push({ cidr: a.cidr, state: a.state, rev: a.rev });
      byNode.set(a.node, list);
    }
    const released: string[] = [];
    for (const [node, affs] of byNode) {
      const blocks = await Promise.all(affs.map((a) => tx.readBlock(a.cidr)));
      const plan = planEmptyBlockRelease(
        node,
        affs.map((a, i) => ({ ...a, block: blocks[i] ?? null })),
      );
      for (const act of plan) {
        const affKey = keys.affinity(node, act.cidr);
        if (act.op === 'drop-affinity') {
          if (!opts.dryRun) {
            await tx
              .commit([{ key: affKey, modRevision: act.affinityRev }], [{ key: affKey, delete: true }])
              .catch(ignoreConflict);
          }
          continue;
        }
        if (!opts.dryRun) {
          try {
            await tx.commit(
              [
                { key: keys.block(act.cidr), modRevision: act.blockRev },
                { key: affKey, modRevision: act.affinityRev },
              ],
              [
                { key: keys.block(act.cidr), delete: true },
                { key: affKey, delete: true },
              ],
            );
          } catch (err) {
            ignoreConflict(err); // it changed (e.g. an address was just assigned): keep it
            continue;
          }
        }
        released.push(act.cidr);
        tx.invalidate(`affinities/${node}`);
        tx.log.info({ node, block: act.cidr, dryRun: opts.dryRun ?? false }, 'released empty block');
      }
    }
    return released;
  }
}
