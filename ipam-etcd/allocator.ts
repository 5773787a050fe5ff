/**
 * The IPAM allocator: read → pure block mutation → compare-and-swap commit → retry on conflict.
 * `Ipam` is the public face; each job lives in its own file around one transaction context:
 *
 *   txn.ts      versioned cached reads, the commit, bounded conflict retry (IpamTxn)
 *   assign.ts   autoAssign (affine blocks, group commit, two-phase block claims, borrowing), assignIp
 *   release.ts  release by handle (group commit) and by address, guarded release, ipsByHandle
 *   admin.ts    pools, IPAM config, node labels
 *   gc.ts       leaked allocations and empty blocks (pure classification + apply)
 *
 * Invariants every part keeps:
 *  - Many writers: every agent, every `petrelctl`, and the GC write the same keys. Every write is
 *    one etcd transaction guarded by the mod revisions of every record it read (block + handle,
 *    or block + affinity), so a lost race writes nothing and is retried from a fresh read
 *    (bounded, with jittered exponential backoff). Block and handle change in the same transaction,
 *    so the handle index can never disagree with the blocks after a crash or a lost race.
 *  - Two nodes never own one block (two-phase claim, assign.ts); multi-address requests are
 *    all-or-nothing; release of a free address or unknown handle is a no-op.
 *  - Corruption: a record that does not parse is IpamError('corrupt') and is never overwritten.
 */
import type { Clock } from '../agent/common/clock.js';
import type { Logger } from '../agent/common/logger.js';
import { Admin } from './admin.js';
import { Assigner } from './assign.js';
import { countsByHandle, freeCount, inUseCount } from './block.js';
import { Gc, type GcOptions, type GcReport, type LeakedAddress } from './gc.js';
import type { PoolInput } from './pools.js';
import { Releaser } from './release.js';
import type { IpamStore } from './store.js';
import { type AffinityEntry, IpamTxn, type Versioned } from './txn.js';
import type { AssignArgs, Assignment, AutoAssignArgs, Block, IpamApi, IpamConfig, Pool } from './types.js';

export { DEFAULT_MAX_BLOCKS_PER_HOST } from './assign.js';
export { poolOf, usablePools } from './pools.js';

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

export class Ipam implements IpamApi {
  private readonly tx: IpamTxn;
  private readonly assigner: Assigner;
  private readonly releaser: Releaser;
  private readonly admin: Admin;
  private readonly collector: Gc;

  constructor(
    readonly store: IpamStore,
    opts: IpamOptions,
  ) {
    const maxBatch = opts.maxBatch ?? 32;
    this.tx = new IpamTxn(store, {
      clock: opts.clock,
      log: opts.log,
      maxRetries: opts.maxRetries ?? 40,
      cacheTtlMs: opts.cacheTtlMs ?? 1000,
    });
    this.releaser = new Releaser(this.tx, maxBatch);
    this.assigner = new Assigner(this.tx, this.releaser, maxBatch);
    this.admin = new Admin(this.tx);
    this.collector = new Gc(this.tx, this.releaser);
  }

  // ---------------------------------------------------------------- reads

  readPools(): Promise<Pool[]> {
    return this.tx.readPools();
  }

  listPools(): Promise<Pool[]> {
    return this.tx.readPools();
  }

  readConfig(): Promise<IpamConfig> {
    return this.tx.readConfig();
  }

  readNodeLabels(node: string): Promise<Record<string, string>> {
    return this.tx.readNodeLabels(node);
  }

  /** Reads a block from etcd (and refreshes this process's cached copy). */
  readBlock(cidr: string): Promise<Versioned<Block> | null> {
    return this.tx.readBlock(cidr);
  }

  /** The node's affinities (all states), sorted by block CIDR key. */
  nodeAffinities(node: string): Promise<AffinityEntry[]> {
    return this.tx.nodeAffinities(node);
  }

  // ---------------------------------------------------------------- assignment

  autoAssign(args: AutoAssignArgs): Promise<Assignment[]> {
    return this.assigner.autoAssign(args);
  }

  assignIp(args: AssignArgs): Promise<Assignment> {
    return this.assigner.assignIp(args);
  }

  /**
   * Two-phase claim of a block for a node. Returns true when the block is now the node's (claimed
   * here or found already claimed by it), false when another node won it.
   */
  claimBlock(cidr: string, node: string): Promise<boolean> {
    return this.assigner.claimBlock(cidr, node);
  }

  // ---------------------------------------------------------------- release

  releaseByHandle(handle: string): Promise<string[]> {
    return this.releaser.releaseByHandle(handle);
  }

  releaseIps(ips: string[]): Promise<string[]> {
    return this.releaser.releaseIps(ips);
  }

  ipsByHandle(handle: string): Promise<Assignment[]> {
    return this.releaser.ipsByHandle(handle);
  }

  // ---------------------------------------------------------------- pools, config, nodes

  addPool(input: PoolInput): Promise<Pool> {
    return this.admin.addPool(input);
  }

  /** Changes the mutable fields of a pool (disabled, natOutgoing, modes, nodeSelector). */
  updatePool(name: string, change: Partial<Omit<PoolInput, 'name' | 'cidr' | 'blockSize'>>): Promise<Pool> {
    return this.admin.updatePool(name, change);
  }

  /** Removes a pool; refused while any address in it is assigned. Its empty blocks go with it. */
  removePool(name: string): Promise<void> {
    return this.admin.removePool(name);
  }

  setConfig(cfg: Partial<IpamConfig>): Promise<IpamConfig> {
    return this.admin.setConfig(cfg);
  }

  /** Creates or replaces a node record's labels (used by pool nodeSelectors). */
  setNodeLabels(node: string, labels: Record<string, string>): Promise<void> {
    return this.admin.setNodeLabels(node, labels);
  }

  // ---------------------------------------------------------------- garbage collection

  /**
   * Releases allocations whose owner is gone. An allocation is leaked when it names a pod
   * (`namespace/pod`) not in `livePods`, or a node not in `liveNodes` (when given), and is older
   * than `graceMs`. Release is all-or-none per handle, and guarded by allocation sequence numbers
   * so an address re-assigned since the scan is never freed. Then empty blocks are released.
   */
  gc(opts: GcOptions): Promise<GcReport> {
    return this.collector.gc(opts);
  }

  /**
   * Releases addresses a garbage collector found leaked, each guarded by the allocation sequence
   * number it saw (an address re-assigned since the scan is kept). Returns those released.
   */
  releaseLeaked(addresses: readonly Pick<LeakedAddress, 'ip' | 'block' | 'ordinal' | 'seq'>[]): Promise<string[]> {
    return this.collector.releaseGuarded(addresses);
  }

  /**
   * Releases empty blocks affine to `node` (or to every node), always keeping each node's last
   * block, and removes pending affinities whose block is not the node's (crashed claims).
   * Returns the released block CIDRs.
   */
  releaseEmptyBlocks(opts: { node?: string; dryRun?: boolean } = {}): Promise<string[]> {
    return this.collector.releaseEmptyBlocks(opts);
  }
}

export { countsByHandle, freeCount, inUseCount };
