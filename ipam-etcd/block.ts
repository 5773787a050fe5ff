/**
 * The allocation block, pure: every function takes a block and returns a new one (the input is
 * never mutated), so a failed compare-and-swap simply drops the copy and the caller re-reads.
 *
 * Ordinals: ordinal n is the n-th address of the block's CIDR. `unallocated` is FIFO: assignment
 * takes from the head, release appends to the tail, so the address free for longest is reused first
 * (a released pod IP is not handed straight to the next pod while stale state may still point at it).
 */
import { formatIp, parseCidr, parseIp, size } from './cidr.js';
import { IpamError } from './errors.js';
import type { AllocationAttrs, Block, BlockAttribute } from './types.js';

export function newBlock(cidr: string, affinity: string | null, seqStart: number): Block {
  const n = Number(size(parseCidr(cidr)));
  return {
    cidr,
    affinity,
    allocations: new Array<number | null>(n).fill(null),
    unallocated: Array.from({ length: n }, (_, i) => i),
    attributes: [],
    sequenceNumber: seqStart,
    sequenceNumberForAllocation: {},
  };
}

export function freeCount(b: Block): number {
  return b.unallocated.length;
}

export function inUseCount(b: Block): number {
  return b.allocations.length - b.unallocated.length;
}

export function isEmpty(b: Block): boolean {
  return b.unallocated.length === b.allocations.length;
}

export function ordinalToIp(b: Block, ord: number): string {
  const c = parseCidr(b.cidr);
  return formatIp(c.family, c.addr + BigInt(ord));
}

/** The ordinal of `ip` in the block, or -1 when the block does not contain it. */
export function ipToOrdinal(b: Block, ip: string): number {
  const c = parseCidr(b.cidr);
  const a = parseIp(ip);
  if (a.family !== c.family) return -1;
  const d = a.addr - c.addr;
  return d >= 0n && d < BigInt(b.allocations.length) ? Number(d) : -1;
}

function clone(b: Block): Block {
  return {
    ...b,
    allocations: b.allocations.slice(),
    unallocated: b.unallocated.slice(),
    attributes: b.attributes.map((a) => ({ ...a, owner: { ...a.owner } })),
    sequenceNumberForAllocation: { ...b.sequenceNumberForAllocation },
  };
}

/** Assigns up to `num` free ordinals (FIFO) to `handle`. Returns the new block and the ordinals taken. */
export function assign(
  b: Block,
  num: number,
  handle: string,
  owner: AllocationAttrs,
  assignedAt: number,
): { block: Block; ordinals: number[] } {
  const take = Math.min(num, b.unallocated.length);
  if (take <= 0) return { block: b, ordinals: [] };
  const next = clone(b);
  const attrIdx = next.attributes.length;
  next.attributes.push({ handle, owner: { ...owner }, assignedAt });
  const ordinals = next.unallocated.splice(0, take);
  for (const o of ordinals) {
    next.allocations[o] = attrIdx;
    next.sequenceNumberForAllocation[String(o)] = next.sequenceNumber;
  }
  return { block: next, ordinals };
}

/** Assigns one specific ordinal; throws IpamError('in-use') when it is taken. */
export function assignOrdinal(
  b: Block,
  ord: number,
  handle: string,
  owner: AllocationAttrs,
  assignedAt: number,
): Block {
  if (ord < 0 || ord >= b.allocations.length) throw new IpamError('invalid', `ordinal ${ord} outside ${b.cidr}`);
  if (b.allocations[ord] !== null) {
    const holder = b.attributes[b.allocations[ord] ?? -1]?.handle ?? '?';
    throw new IpamError('in-use', `${ordinalToIp(b, ord)} is already assigned (handle ${holder})`);
  }
  const next = clone(b);
  next.attributes.push({ handle, owner: { ...owner }, assignedAt });
  next.allocations[ord] = next.attributes.length - 1;
  next.unallocated = next.unallocated.filter((o) => o !== ord);
  next.sequenceNumberForAllocation[String(ord)] = next.sequenceNumber;
  return next;
}

export interface Released {
  block: Block;
  /** Released ordinals with the handle each was held by. */
  released: { ordinal: number; handle: string }[];
}

/**
 * Releases the given ordinals (already-free ones are skipped: release is idempotent). With
 * `expectSeq`, an ordinal is released only if its allocation sequence number still matches.
 */
export function releaseOrdinals(b: Block, ordinals: number[], expectSeq?: Map<number, number>): Released {
  const next = clone(b);
  const released: Released['released'] = [];
  for (const o of ordinals) {
    const idx = next.allocations[o];
    if (idx === null || idx === undefined) continue;
    if (expectSeq?.has(o) && next.sequenceNumberForAllocation[String(o)] !== expectSeq.get(o)) continue;
    released.push({ ordinal: o, handle: next.attributes[idx]?.handle ?? '' });
    next.allocations[o] = null;
    next.unallocated.push(o);
    delete next.sequenceNumberForAllocation[String(o)];
  }
  if (released.length === 0) return { block: b, released };
  return { block: compactAttributes(next), released };
}

/** Releases every ordinal held by `handle`. */
export function releaseHandle(b: Block, handle: string): Released {
  return releaseOrdinals(b, ordinalsOf(b, handle));
}

export function ordinalsOf(b: Block, handle: string): number[] {
  const out: number[] = [];
  b.allocations.forEach((idx, o) => {
    if (idx !== null && b.attributes[idx]?.handle === handle) out.push(o);
  });
  return out;
}

/** handle → number of ordinals it holds in this block. */
export function countsByHandle(b: Block): Map<string, number> {
  const m = new Map<string, number>();
  for (const idx of b.allocations) {
    if (idx === null) continue;
    const h = b.attributes[idx]?.handle ?? '';
    m.set(h, (m.get(h) ?? 0) + 1);
  }
  return m;
}

/** Drops attribute entries no ordinal refers to and renumbers the rest. */
function compactAttributes(b: Block): Block {
  const used = new Set<number>();
  for (const idx of b.allocations) if (idx !== null) used.add(idx);
  if (used.size === b.attributes.length) return b;
  const remap = new Map<number, number>();
  const attributes: BlockAttribute[] = [];
  b.attributes.forEach((a, i) => {
    if (used.has(i)) {
      remap.set(i, attributes.length);
      attributes.push(a);
    }
  });
  return {
    ...b,
    attributes,
    allocations: b.allocations.map((idx) => (idx === null ? null : (remap.get(idx) ?? null))),
  };
}

/** Marks a write: every stored change to a block bumps its sequence number. */
export function bumpSequence(b: Block): Block {
  return { ...b, sequenceNumber: b.sequenceNumber + 1 };
}

/** Structural problems of a block (empty when sound). */
export function validateBlock(b: Block): string[] {
  const problems: string[] = [];
  let n: number;
  try {
    n = Number(size(parseCidr(b.cidr)));
  } catch {
    return [`block has an invalid cidr ${JSON.stringify(b.cidr)}`];
  }
  if (b.allocations.length !== n) problems.push(`has ${b.allocations.length} allocation slots, expected ${n}`);
  const seen = new Set<number>();
  for (const o of b.unallocated) {
    if (seen.has(o)) problems.push(`ordinal ${o} is listed twice in unallocated`);
    seen.add(o);
    if (b.allocations[o] !== null) problems.push(`ordinal ${o} is both allocated and unallocated`);
  }
  b.allocations.forEach((idx, o) => {
    if (idx === null) {
      if (!seen.has(o)) problems.push(`ordinal ${o} is free but missing from unallocated`);
    } else if (idx < 0 || idx >= b.attributes.length) {
      problems.push(`ordinal ${o} points at missing attribute ${idx}`);
    } else if (!b.attributes[idx]?.handle) {
      problems.push(`allocation ${ordinalToIp(b, o)} has no handle`);
    }
  });
  return problems;
}
