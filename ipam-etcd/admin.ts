/**
 * Operator changes: pools, the IPAM config and node labels. Each is one compare-and-swap
 * transaction, retried from a fresh read on conflict, and drops the allocator's cached copy.
 *
 * Complicating factors:
 *  - Pools must not overlap, but each pool is its own key: every create and removal also bumps
 *    the pools epoch key, so two concurrent adds of overlapping pools cannot both commit.
 *  - A pool is removed only while none of its addresses is assigned; its empty blocks and their
 *    affinities go in the same transaction.
 */
import { inUseCount, isEmpty } from './block.js';
import { IpamError } from './errors.js';
import { blockCidrFromKey, checkName, keys } from './keys.js';
import { overlappingPools, type PoolInput, poolOf, validatePool } from './pools.js';
import { DEFAULT_CONFIG, parseBlock, parseConfig, parseNode, parsePool, serialize } from './records.js';
import type { Cond, Write } from './store.js';
import type { IpamTxn } from './txn.js';
import type { IpamConfig, Pool } from './types.js';

export class Admin {
  constructor(private readonly tx: IpamTxn) {}

  async addPool(input: PoolInput): Promise<Pool> {
    const pool = validatePool(input);
    const tx = this.tx;
    tx.invalidate('pools');
    return tx.retrying(`add pool ${pool.name}`, async () => {
      const [kvs, epoch] = await Promise.all([tx.store.list(keys.pools), tx.store.get(keys.poolsEpoch)]);
      const pools = kvs.map((kv) => parsePool(kv.key, kv.value));
      if (pools.some((p) => p.name === pool.name)) throw new IpamError('invalid', `pool ${pool.name} already exists`);
      const clash = overlappingPools([...pools, pool]).find(([, b]) => b === pool);
      if (clash) throw new IpamError('invalid', `pool ${pool.cidr} overlaps pool ${clash[0].name} (${clash[0].cidr})`);
      await tx.commit(
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
    const tx = this.tx;
    tx.invalidate('pools');
    return tx.retrying(`update pool ${name}`, async () => {
      const kv = await tx.store.get(keys.pool(name));
      if (!kv) throw new IpamError('not-found', `no pool named ${name}`);
      const cur = parsePool(kv.key, kv.value);
      const next = validatePool({ ...cur, ...stripUndefined(change) });
      await tx.commit(
        [{ key: kv.key, modRevision: kv.modRevision }],
        [{ key: kv.key, value: JSON.stringify(next, null, 1) }],
      );
      return next;
    });
  }

  /** Removes a pool; refused while any address in it is assigned. Its empty blocks go with it. */
  async removePool(name: string): Promise<void> {
    const tx = this.tx;
    tx.invalidate('pools');
    await tx.retrying(`remove pool ${name}`, async () => {
      const [kv, epoch] = await Promise.all([tx.store.get(keys.pool(name)), tx.store.get(keys.poolsEpoch)]);
      if (!kv) throw new IpamError('not-found', `no pool named ${name}`);
      const pool = parsePool(kv.key, kv.value);
      const blockKvs = (await tx.store.list(keys.blocks)).filter((b) => poolOf([pool], blockCidrFromKey(b.key)));
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
      await tx.commit(conds, writes);
    });
  }

  async setConfig(cfg: Partial<IpamConfig>): Promise<IpamConfig> {
    const tx = this.tx;
    tx.invalidate('config');
    return tx.retrying('set ipam config', async () => {
      const kv = await tx.store.get(keys.config);
      const cur = kv ? parseConfig(kv.key, kv.value) : { ...DEFAULT_CONFIG };
      const next: IpamConfig = { ...cur, ...stripUndefined(cfg) };
      if (!Number.isInteger(next.maxBlocksPerHost) || next.maxBlocksPerHost < 0) {
        throw new IpamError('invalid', 'maxBlocksPerHost must be a non-negative integer');
      }
      await tx.commit(
        [{ key: keys.config, modRevision: kv ? kv.modRevision : null }],
        [{ key: keys.config, value: serialize(next) }],
      );
      return next;
    });
  }

  /** Creates or replaces a node record's labels (used by pool nodeSelectors). */
  async setNodeLabels(node: string, labels: Record<string, string>): Promise<void> {
    checkName('node', node);
    const tx = this.tx;
    tx.invalidate(`labels/${node}`);
    await tx.retrying(`set labels of ${node}`, async () => {
      const kv = await tx.store.get(keys.node(node));
      const cur = kv ? parseNode(kv.key, kv.value) : { name: node, labels: {} };
      await tx.commit(
        [{ key: keys.node(node), modRevision: kv ? kv.modRevision : null }],
        [{ key: keys.node(node), value: serialize({ ...cur, labels }) }],
      );
    });
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
