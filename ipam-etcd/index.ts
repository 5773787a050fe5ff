/**
 * Petrel IPAM: the only import surface of ipam-etcd/ for code outside it.
 *
 *   const { ipam, close } = await openEtcdIpam({ endpoints: ['http://127.0.0.1:2379'], log });
 *   const [a] = await ipam.autoAssign({ handle: 'k8s-pod-network.<cid>', node: 'node-1', num4: 1 });
 *   await ipam.releaseByHandle('k8s-pod-network.<cid>');
 */
import { type Clock, systemClock } from '../agent/common/clock.js';
import type { Logger } from '../agent/common/logger.js';
import { Ipam } from './allocator.js';
import type { EtcdConfig } from './etcd-store.js';
import type { IpamStore } from './store.js';

export { DEFAULT_MAX_BLOCKS_PER_HOST, Ipam, type IpamOptions, poolOf, usablePools } from './allocator.js';
export { ordinalToIp } from './block.js';
export { firstHost, formatIp, parseCidr, parseIp } from './cidr.js';
export { ConflictError, IpamError, type IpamErrorKind, isIpamError } from './errors.js';
export type { EtcdConfig, EtcdTls } from './etcd-store.js';
export type { LeakedAddress, LeakedHandle } from './gc.js';
export {
  type AllocationView,
  type BlockUsage,
  check,
  type PoolUsage,
  type Problem,
  type ProblemKind,
  type Snapshot,
  takeSnapshot,
  type Usage,
  usage,
} from './inspect.js';
export { blockCidrFromKey, IPAM as IPAM_PREFIX, keys, parseAffinityKey } from './keys.js';
export { MemoryStore } from './memory-store.js';
export type { PoolInput } from './pools.js';
export { parseAffinity, parseBlock, parsePool } from './records.js';
export { type ReleasedNode, releaseNode } from './release-node.js';
export { parseSelector, type Selector } from './selector.js';
export type { Cond, IpamStore, KV, Write } from './store.js';
export type * from './types.js';

export interface OpenOptions extends EtcdConfig {
  log: Logger;
  clock?: Clock;
  maxRetries?: number;
}

/**
 * An IpamStore on etcd. The etcd client (etcd3 + gRPC + protobuf: ~250 ms and ~40 MB to load) is
 * imported only here, on first use, so commands and processes that never touch etcd (the BGP
 * speaker, `--help`) do not pay for it.
 */
export async function openEtcdStore(cfg: EtcdConfig): Promise<IpamStore> {
  const { EtcdStore } = await import('./etcd-store.js');
  return new EtcdStore(cfg);
}

/** Connects to etcd (lazily: the first request dials) and returns an allocator on it. */
export async function openEtcdIpam(opts: OpenOptions): Promise<{ ipam: Ipam; close(): Promise<void> }> {
  const store = await openEtcdStore(opts);
  const ipam = new Ipam(store, {
    clock: opts.clock ?? systemClock,
    log: opts.log.child({ component: 'ipam' }),
    ...(opts.maxRetries !== undefined ? { maxRetries: opts.maxRetries } : {}),
  });
  return { ipam, close: () => store.close() };
}
