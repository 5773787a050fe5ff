/**
 * Petrel IPAM data model: what is stored in etcd (pools, blocks, affinities, handles, config)
 * and the operations the allocator offers. Modelled on Calico's libcalico-go IPAM (see README
 * "IPAM key layout"), under Petrel's own key prefix /petrel/ipam/v1/.
 */

export type IpFamily = 4 | 6;
export type EncapMode = 'Always' | 'CrossSubnet' | 'Never';

/** An IP pool: the operator's unit of address space. Stored at /petrel/ipam/v1/pools/<name>. */
export interface Pool {
  name: string;
  /** Masked CIDR, e.g. "10.244.0.0/16" or "fd00:10:244::/56". Immutable. */
  cidr: string;
  /** Prefix length of each block cut from the pool: IPv4 20..32 (default 26), IPv6 116..128 (default 122). */
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  /** No new assignments from this pool; existing allocations stay. */
  disabled: boolean;
  /** Label selector over node labels: `all()` (default), `!all()`, or `k == 'v' && k2 != 'v2' && has(k3)`. */
  nodeSelector: string;
}

/** Attributes recorded with an allocation. `node` is always set; `pod`/`namespace` for Kubernetes pods. */
export interface AllocationAttrs {
  node?: string;
  pod?: string;
  namespace?: string;
  containerId?: string;
  [key: string]: string | undefined;
}

/** One entry of a block's attribute table: several ordinals assigned in one call share one entry. */
export interface BlockAttribute {
  handle: string;
  owner: AllocationAttrs;
  /** Wall-clock ms of the assignment (grace period for garbage collection). */
  assignedAt: number;
}

/** An allocation block: stored at /petrel/ipam/v1/blocks/<a.b.c.d-len>. */
export interface Block {
  cidr: string;
  /** `host:<node>` or null when the block is affine to no node. */
  affinity: string | null;
  /** One entry per address: null = free, else index into `attributes`. */
  allocations: (number | null)[];
  /** Free ordinals in FIFO reuse order: assignment pops the head, release pushes the tail. */
  unallocated: number[];
  attributes: BlockAttribute[];
  /** Starts at creation wall time in ms × 1000, incremented on every write. */
  sequenceNumber: number;
  /** Ordinal (as string) → the block's sequenceNumber when it was assigned: lets GC release an
   * address only if it was not released and re-assigned since GC looked at it (ABA guard). */
  sequenceNumberForAllocation: Record<string, number>;
}

/** Affinity claim state: pending → confirmed (→ pendingDeletion → gone). */
export type AffinityState = 'pending' | 'confirmed' | 'pendingDeletion';

/** Stored at /petrel/ipam/v1/affinities/<node>/<a.b.c.d-len>. */
export interface Affinity {
  state: AffinityState;
}

/** Stored at /petrel/ipam/v1/handles/<handle>: block CIDR → number of addresses held there. */
export interface Handle {
  blocks: Record<string, number>;
}

/** Stored at /petrel/ipam/v1/config. Defaults apply when the key is missing. */
export interface IpamConfig {
  strictAffinity: boolean;
  /** 0 = the default cap of 20 blocks per node. */
  maxBlocksPerHost: number;
}

/** Stored at /petrel/nodes/<name>: node labels used by pool nodeSelectors. */
export interface NodeRecord {
  name: string;
  labels: Record<string, string>;
}

export interface AutoAssignArgs {
  handle: string;
  node: string;
  num4?: number;
  num6?: number;
  /** Restrict to these pool names (each must exist and be enabled). */
  pools?: string[];
  attrs?: AllocationAttrs;
  /**
   * The handle is a new one (a new pod's): if it already holds addresses, fail with
   * HandleExistsError and write nothing, instead of adding to it. Lets an idempotent caller skip
   * reading the handle first: the assignment's transaction already requires the handle to be absent.
   * A call that fails otherwise (no free address, etcd away) may not have got as far as finding the
   * handle: it says nothing about whether the handle is held, and the caller must not release by it.
   */
  fresh?: boolean;
}

export interface AssignArgs {
  ip: string;
  handle: string;
  node: string;
  attrs?: AllocationAttrs;
}

/** One assigned address and where it came from. */
export interface Assignment {
  ip: string;
  family: IpFamily;
  /** The block the address lives in, e.g. "10.244.0.64/26". */
  block: string;
  pool: string;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
}

/** The operations the allocator offers (implemented by `Ipam` in allocator.ts). */
export interface IpamApi {
  /** Assigns num4 IPv4 and num6 IPv6 addresses for a handle on a node (affine block → new block → borrow). */
  autoAssign(args: AutoAssignArgs): Promise<Assignment[]>;
  /** Assigns one specific address; fails with IpamError kind 'in-use' if taken, 'invalid' if outside every pool. */
  assignIp(args: AssignArgs): Promise<Assignment>;
  /** Releases every address held by a handle. Idempotent: an unknown handle releases nothing. */
  releaseByHandle(handle: string): Promise<string[]>;
  /** Releases addresses. Idempotent: free addresses are skipped. Returns those released. */
  releaseIps(ips: string[]): Promise<string[]>;
  /** The addresses a handle holds now (empty when none). */
  ipsByHandle(handle: string): Promise<Assignment[]>;
  listPools(): Promise<Pool[]>;
}
