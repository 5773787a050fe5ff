/**
 * Pure IP/CIDR arithmetic for IPv4 and IPv6 (addresses as bigint), block enumeration and the
 * key encoding of a CIDR (`10.244.0.64/26` → `10.244.0.64-26`, like Calico's, so `/` never
 * appears inside a key segment).
 */
import { parseIpv4Into, parseIpv6Into } from '../agent/common/ip.js';
import { IpamError } from './errors.js';
import type { IpFamily } from './types.js';

export interface Cidr {
  family: IpFamily;
  /** Network address (masked). */
  addr: bigint;
  len: number;
}

export function bitsOf(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** Scratch bytes for parseIp (the parsers write into it; nothing else holds it across calls). */
const scratch = new Uint8Array(16);

/** Parses an IP address; throws IpamError('invalid') when it is not one (text rules: agent/common/ip.ts). */
export function parseIp(s: string): { family: IpFamily; addr: bigint } {
  const b = scratch;
  if (parseIpv4Into(s, b, 0)) {
    return { family: 4, addr: BigInt(((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) };
  }
  if (parseIpv6Into(s, b, 0)) {
    let addr = 0n;
    for (let i = 0; i < 16; i += 4) {
      addr = (addr << 32n) | BigInt(((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0);
    }
    return { family: 6, addr };
  }
  throw new IpamError('invalid', `not an IP address: ${JSON.stringify(s)}`);
}

export function formatIp(family: IpFamily, addr: bigint): string {
  if (family === 4) {
    const n = Number(addr);
    return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, leftmost on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Parses a CIDR; with `strict` the address must be the network address (no host bits). */
export function parseCidr(s: string, strict = true): Cidr {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (!m) throw new IpamError('invalid', `not a CIDR: ${JSON.stringify(s)}`);
  const { family, addr } = parseIp(m[1]!);
  const len = Number(m[2]);
  if (len > bitsOf(family)) throw new IpamError('invalid', `prefix length /${len} too long for IPv${family}: ${s}`);
  const masked = addr & maskOf(family, len);
  if (strict && masked !== addr) {
    throw new IpamError('invalid', `CIDR ${s} has host bits set (did you mean ${formatIp(family, masked)}/${len}?)`);
  }
  return { family, addr: masked, len };
}

export function maskOf(family: IpFamily, len: number): bigint {
  const bits = BigInt(bitsOf(family));
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(len))) & all;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.addr)}/${c.len}`;
}

export function size(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.family) - c.len);
}

export function contains(c: Cidr, family: IpFamily, addr: bigint): boolean {
  return c.family === family && (addr & maskOf(family, c.len)) === c.addr;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const m = maskOf(a.family, len);
  return (a.addr & m) === (b.addr & m);
}

/** The block (of prefix length `blockLen`) that contains `addr`. */
export function blockOf(family: IpFamily, addr: bigint, blockLen: number): Cidr {
  return { family, addr: addr & maskOf(family, blockLen), len: blockLen };
}

/** Number of blocks of length `blockLen` in `pool`. */
export function blockCount(pool: Cidr, blockLen: number): bigint {
  return 1n << BigInt(blockLen - pool.len);
}

/** The n-th block of length `blockLen` inside `pool` (0-based). */
export function nthBlock(pool: Cidr, blockLen: number, n: bigint): Cidr {
  return { family: pool.family, addr: pool.addr + (n << BigInt(bitsOf(pool.family) - blockLen)), len: blockLen };
}

/** `10.244.0.64/26` → `10.244.0.64-26` (key segment); the inverse is cidrFromKey. */
export function cidrToKey(cidr: string): string {
  return cidr.replace('/', '-');
}

export function cidrFromKey(seg: string): string {
  const i = seg.lastIndexOf('-');
  return `${seg.slice(0, i)}/${seg.slice(i + 1)}`;
}

/**
 * FNV-1a 32-bit hash of a string: a node's blocks start at a pool offset derived from its name,
 * so nodes claiming blocks at the same time rarely race for the same one (Calico does the same).
 */
export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The first host address of a CIDR (host bits ignored): "10.244.7.9/16" → "10.244.0.1". */
export function firstHost(cidr: string): string {
  const c = parseCidr(cidr, false);
  return formatIp(c.family, c.addr + 1n);
}
