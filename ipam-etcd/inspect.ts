/**
 * Read-only views of the whole IPAM state: `usage` (what `petrelctl ipam show` prints) and
 * `check` (consistency problems, what `petrelctl ipam check` prints). Both are pure functions of
 * one snapshot taken with a single prefix read, so they see one consistent etcd revision.
 */
import { countsByHandle, inUseCount, isEmpty, ordinalToIp, validateBlock } from './block.js';
import { overlaps, parseCidr, size } from './cidr.js';
import { IpamError } from './errors.js';
import { IPAM, keys, parseAffinityKey } from './keys.js';
import { overlappingPools } from './pools.js';
import { parseAffinity, parseBlock, parseHandle, parsePool } from './records.js';
import type { IpamStore } from './store.js';
import type { Affinity, AllocationAttrs, Block, Handle, Pool } from './types.js';

export interface Snapshot {
  pools: Pool[];
  blocks: Block[];
  affinities: { node: string; cidr: string; affinity: Affinity }[];
  handles: Map<string, Handle>;
  /** Keys whose values did not parse (reported by check, skipped by usage). */
  corrupt: { key: string; message: string }[];
}

export async function takeSnapshot(store: IpamStore): Promise<Snapshot> {
  const kvs = await store.list(IPAM);
  const snap: Snapshot = { pools: [], blocks: [], affinities: [], handles: new Map(), corrupt: [] };
  for (const kv of kvs) {
    try {
      if (kv.key.startsWith(keys.pools)) snap.pools.push(parsePool(kv.key, kv.value));
      else if (kv.key.startsWith(keys.blocks)) snap.blocks.push(parseBlock(kv.key, kv.value));
      else if (kv.key.startsWith(keys.handles)) {
        snap.handles.set(kv.key.slice(keys.handles.length), parseHandle(kv.key, kv.value));
      } else if (kv.key.startsWith(keys.affinities)) {
        const k = parseAffinityKey(kv.key);
        if (!k) throw new IpamError('corrupt', `unexpected affinity key ${kv.key}`);
        snap.affinities.push({ ...k, affinity: parseAffinity(kv.key, kv.value) });
      }
    } catch (err) {
      if (!(err instanceof IpamError)) throw err;
      snap.corrupt.push({ key: kv.key, message: err.message });
    }
  }
  return snap;
}

// ------------------------------------------------------------------ usage

export interface AllocationView {
  ip: string;
  handle: string;
  owner: AllocationAttrs;
}

export interface BlockUsage {
  cidr: string;
  /** Owner node (from `host:<node>`), or null when not affine. */
  node: string | null;
  size: number;
  inUse: number;
  free: number;
  allocations: AllocationView[];
}

export interface PoolUsage {
  name: string;
  cidr: string;
  blockSize: number;
  disabled: boolean;
  ipipMode: string;
  vxlanMode: string;
  natOutgoing: boolean;
  nodeSelector: string;
  /** Addresses in the pool (a decimal string: IPv6 pools exceed 2^53). */
  size: string;
  inUse: number;
  blocks: BlockUsage[];
}

/** The stable JSON of `petrelctl ipam show --json` (documented in the README). */
export interface Usage {
  pools: PoolUsage[];
  /** Blocks in no current pool (should not happen; `ipam check` reports them). */
  orphanBlocks: BlockUsage[];
}

function blockUsage(b: Block): BlockUsage {
  const allocations: AllocationView[] = [];
  b.allocations.forEach((idx, o) => {
    if (idx === null) return;
    const a = b.attributes[idx];
    allocations.push({ ip: ordinalToIp(b, o), handle: a?.handle ?? '', owner: a?.owner ?? {} });
  });
  const inUse = inUseCount(b);
  return {
    cidr: b.cidr,
    node: b.affinity?.startsWith('host:') ? b.affinity.slice(5) : null,
    size: b.allocations.length,
    inUse,
    free: b.allocations.length - inUse,
    allocations,
  };
}

export function usage(snap: Snapshot): Usage {
  const pools: PoolUsage[] = snap.pools.map((p) => ({
    name: p.name,
    cidr: p.cidr,
    blockSize: p.blockSize,
    disabled: p.disabled,
    ipipMode: p.ipipMode,
    vxlanMode: p.vxlanMode,
    natOutgoing: p.natOutgoing,
    nodeSelector: p.nodeSelector,
    size: size(parseCidr(p.cidr)).toString(),
    inUse: 0,
    blocks: [],
  }));
  const orphanBlocks: BlockUsage[] = [];
  for (const b of snap.blocks) {
    const bc = parseCidr(b.cidr);
    const bu = blockUsage(b);
    const pu = pools.find((p) => overlaps(parseCidr(p.cidr), bc));
    if (pu) {
      pu.blocks.push(bu);
      pu.inUse += bu.inUse;
    } else orphanBlocks.push(bu);
  }
  return { pools, orphanBlocks };
}

// ------------------------------------------------------------------ check

export type ProblemKind =
  | 'corrupt-value'
  | 'invalid-block'
  | 'allocation-without-handle'
  | 'handle-count-mismatch'
  | 'handle-points-at-nothing'
  | 'affinity-without-block'
  | 'block-affinity-mismatch'
  | 'overlapping-pools'
  | 'block-outside-pools';

export interface Problem {
  kind: ProblemKind;
  /** The etcd key to look at. */
  key: string;
  message: string;
}

export function check(snap: Snapshot): Problem[] {
  const out: Problem[] = [];
  for (const c of snap.corrupt) out.push({ kind: 'corrupt-value', key: c.key, message: c.message });

  for (const [a, b] of overlappingPools(snap.pools)) {
    out.push({
      kind: 'overlapping-pools',
      key: keys.pool(b.name),
      message: `pool ${b.name} (${b.cidr}) overlaps pool ${a.name} (${a.cidr})`,
    });
  }

  // Counts per handle per block, from the blocks (the truth) and from the handle index.
  const fromBlocks = new Map<string, Map<string, number>>();
  for (const b of snap.blocks) {
    for (const p of validateBlock(b))
      out.push({ kind: 'invalid-block', key: keys.block(b.cidr), message: `${b.cidr}: ${p}` });
    const inPool = snap.pools.some((p) => {
      const pc = parseCidr(p.cidr);
      const bc = parseCidr(b.cidr);
      return overlaps(pc, bc) && bc.len === p.blockSize && pc.len <= bc.len;
    });
    if (!inPool && !isEmpty(b)) {
      out.push({ kind: 'block-outside-pools', key: keys.block(b.cidr), message: `block ${b.cidr} is in no pool` });
    }
    for (const [h, n] of countsByHandle(b)) {
      const m = fromBlocks.get(h) ?? new Map<string, number>();
      m.set(b.cidr, n);
      fromBlocks.set(h, m);
    }
    // Block affinity must be backed by a confirmed affinity record of that node.
    if (b.affinity?.startsWith('host:')) {
      const node = b.affinity.slice(5);
      const aff = snap.affinities.find((a) => a.node === node && a.cidr === b.cidr);
      if (aff?.affinity.state !== 'confirmed') {
        out.push({
          kind: 'block-affinity-mismatch',
          key: keys.block(b.cidr),
          message: `block ${b.cidr} says host:${node} but ${keys.affinity(node, b.cidr)} is ${aff ? aff.affinity.state : 'missing'}`,
        });
      }
    }
  }

  for (const [h, m] of fromBlocks) {
    const idx = snap.handles.get(h);
    for (const [cidr, n] of m) {
      if (!h) {
        out.push({
          kind: 'allocation-without-handle',
          key: keys.block(cidr),
          message: `${n} address(es) in ${cidr} have no handle`,
        });
      } else if (!idx) {
        out.push({
          kind: 'allocation-without-handle',
          key: keys.handle(h),
          message: `${n} address(es) in ${cidr} are held by handle ${h}, which has no record`,
        });
      } else if (idx.blocks[cidr] !== n) {
        out.push({
          kind: 'handle-count-mismatch',
          key: keys.handle(h),
          message: `handle ${h} records ${idx.blocks[cidr] ?? 0} address(es) in ${cidr}, the block has ${n}`,
        });
      }
    }
  }
  for (const [h, idx] of snap.handles) {
    for (const [cidr, n] of Object.entries(idx.blocks)) {
      if (!fromBlocks.get(h)?.has(cidr)) {
        out.push({
          kind: 'handle-points-at-nothing',
          key: keys.handle(h),
          message: `handle ${h} records ${n} address(es) in ${cidr}, which holds none for it`,
        });
      }
    }
  }

  for (const a of snap.affinities) {
    const b = snap.blocks.find((x) => x.cidr === a.cidr);
    if (!b) {
      out.push({
        kind: 'affinity-without-block',
        key: keys.affinity(a.node, a.cidr),
        message: `${a.affinity.state} affinity of ${a.node} for ${a.cidr}, which has no block`,
      });
    } else if (a.affinity.state === 'confirmed' && b.affinity !== `host:${a.node}`) {
      out.push({
        kind: 'block-affinity-mismatch',
        key: keys.affinity(a.node, a.cidr),
        message: `${a.node} has a confirmed affinity for ${a.cidr}, but the block says ${b.affinity ?? 'no affinity'}`,
      });
    }
  }
  return out;
}
