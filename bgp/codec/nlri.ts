/**
 * Prefix lists (RFC 4271 §4.3 withdrawn/NLRI, RFC 4760 §5, RFC 7911 §3): the hot path.
 *
 * Why hand-written loops instead of the buffer-layout `PrefixLayout` in layouts.ts: a packed
 * UPDATE carries ~800 prefixes, and per-prefix Layout dispatch (getSpan + blob slice + object
 * building) costs several times the work of reading the bytes directly. `bench/codec.ts`
 * measures both; the layout version stays for structure-level use and as the reference the
 * direct loop is tested against.
 */
import { EncodeError } from './errors.js';
import { formatIpv4U32, formatIpv6, parseIpv4Into, parseIpv6Into } from './ip.js';
import { ByteBoundedSeq, LayoutError, PrefixLayout } from './layouts.js';
import type { Prefix } from './types.js';

/** Result of a prefix-list decode: 0 ok, otherwise why it failed (both map to 3/10 or an MP error). */
export const NlriStatus = { Ok: 0, LengthTooLong: 1, Truncated: 2 } as const;
export type NlriStatus = (typeof NlriStatus)[keyof typeof NlriStatus];

const scratch16 = new Uint8Array(16);

/**
 * Decodes prefixes in b[start, end) into `out`. `bits` is 32 (IPv4) or 128 (IPv6); `addPath`
 * means each prefix is preceded by a 4-byte path identifier. Host bits are cleared (as GoBGP and
 * BIRD do). On failure the prefixes decoded so far stay in `out`.
 */
export function decodePrefixes(
  b: Uint8Array,
  start: number,
  end: number,
  bits: 32 | 128,
  addPath: boolean,
  out: Prefix[],
): NlriStatus {
  return bits === 32 ? decodeV4(b, start, end, addPath, out) : decodeV6(b, start, end, addPath, out);
}

function decodeV4(b: Uint8Array, start: number, end: number, addPath: boolean, out: Prefix[]): NlriStatus {
  let p = start;
  while (p < end) {
    let pathId = 0;
    if (addPath) {
      if (end - p < 5) return NlriStatus.Truncated;
      pathId =
        ((b[p] as number) * 0x1000000 +
          (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number))) >>>
        0;
      p += 4;
    }
    const len = b[p] as number;
    if (len > 32) return NlriStatus.LengthTooLong;
    const n = (len + 7) >> 3;
    if (p + 1 + n > end) return NlriStatus.Truncated;
    let v = 0;
    if (n > 0) v = (b[p + 1] as number) << 24;
    if (n > 1) v |= (b[p + 2] as number) << 16;
    if (n > 2) v |= (b[p + 3] as number) << 8;
    if (n > 3) v |= b[p + 4] as number;
    // RFC 4271 §4.3: trailing bits are irrelevant; clear them so equal prefixes compare equal.
    v = len === 0 ? 0 : (v & (0xffffffff << (32 - len))) >>> 0;
    const prefix = formatIpv4U32(v);
    out.push(addPath ? { prefix, len, pathId } : { prefix, len });
    p += 1 + n;
  }
  return NlriStatus.Ok;
}

function decodeV6(b: Uint8Array, start: number, end: number, addPath: boolean, out: Prefix[]): NlriStatus {
  let p = start;
  while (p < end) {
    let pathId = 0;
    if (addPath) {
      if (end - p < 5) return NlriStatus.Truncated;
      pathId =
        ((b[p] as number) * 0x1000000 +
          (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number))) >>>
        0;
      p += 4;
    }
    const len = b[p] as number;
    if (len > 128) return NlriStatus.LengthTooLong;
    const n = (len + 7) >> 3;
    if (p + 1 + n > end) return NlriStatus.Truncated;
    for (let i = 0; i < n; i++) scratch16[i] = b[p + 1 + i] as number;
    if ((len & 7) !== 0) scratch16[n - 1] = (scratch16[n - 1] as number) & (0xff << (8 - (len & 7)));
    const prefix = formatIpv6(scratch16, 0, n);
    out.push(addPath ? { prefix, len, pathId } : { prefix, len });
    p += 1 + n;
  }
  return NlriStatus.Ok;
}

/** Encoded size of one prefix. */
export function prefixSize(p: Prefix, addPath: boolean): number {
  return (addPath ? 5 : 1) + ((p.len + 7) >> 3);
}

/**
 * Writes one prefix at `pos`; returns the new position, or -1 when it would pass `limit`
 * (nothing written). Throws EncodeError for an invalid prefix (bad text or length).
 */
export function writePrefix(
  p: Prefix,
  bits: 32 | 128,
  addPath: boolean,
  buf: Uint8Array,
  pos: number,
  limit: number,
): number {
  const len = p.len;
  if (!Number.isInteger(len) || len < 0 || len > bits) throw new EncodeError(`prefix length ${len} out of range`);
  const n = (len + 7) >> 3;
  const need = (addPath ? 5 : 1) + n;
  if (pos + need > limit) return -1;
  const a4 = p.addr4;
  if (bits === 32 && a4 !== undefined) {
    scratch16[0] = a4 >>> 24;
    scratch16[1] = (a4 >>> 16) & 0xff;
    scratch16[2] = (a4 >>> 8) & 0xff;
    scratch16[3] = a4 & 0xff;
  } else {
    const ok = bits === 32 ? parseIpv4Into(p.prefix, scratch16, 0) : parseIpv6Into(p.prefix, scratch16, 0);
    if (!ok) throw new EncodeError(`invalid ${bits === 32 ? 'IPv4' : 'IPv6'} prefix ${p.prefix}`);
  }
  if (addPath) {
    const id = p.pathId ?? 0;
    buf[pos++] = (id >>> 24) & 0xff;
    buf[pos++] = (id >>> 16) & 0xff;
    buf[pos++] = (id >>> 8) & 0xff;
    buf[pos++] = id & 0xff;
  }
  buf[pos++] = len;
  for (let i = 0; i < n; i++) buf[pos + i] = scratch16[i] as number;
  if ((len & 7) !== 0) buf[pos + n - 1] = (buf[pos + n - 1] as number) & (0xff << (8 - (len & 7)));
  return pos + n;
}

/** Writes all prefixes; throws EncodeError if they pass `limit`. Returns the new position. */
export function writePrefixes(
  list: readonly Prefix[],
  bits: 32 | 128,
  addPath: boolean,
  buf: Uint8Array,
  pos: number,
  limit: number,
): number {
  let p = pos;
  for (let i = 0; i < list.length; i++) {
    const next = writePrefix(list[i] as Prefix, bits, addPath, buf, p, limit);
    if (next < 0) throw new EncodeError('message too long for its prefixes');
    p = next;
  }
  return p;
}

// ---- buffer-layout variant and the implementation switch (for bench/codec.ts and tests) ----

const seqCache = new Map<string, ByteBoundedSeq<Prefix>>();
function seqFor(bits: 32 | 128, addPath: boolean): ByteBoundedSeq<Prefix> {
  const key = `${bits}/${addPath}`;
  let s = seqCache.get(key);
  if (s === undefined) {
    s = new ByteBoundedSeq(new PrefixLayout(bits, addPath));
    seqCache.set(key, s);
  }
  return s;
}

/** Same contract as `decodePrefixes`, built on `ByteBoundedSeq(PrefixLayout)`. */
export function decodePrefixesLayout(
  b: Uint8Array,
  start: number,
  end: number,
  bits: 32 | 128,
  addPath: boolean,
  out: Prefix[],
): NlriStatus {
  try {
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    for (const p of seqFor(bits, addPath).decodeRange(buf, start, end)) out.push(p);
    return NlriStatus.Ok;
  } catch (err) {
    if (err instanceof LayoutError)
      return err.reason === 'length-too-long' ? NlriStatus.LengthTooLong : NlriStatus.Truncated;
    throw err;
  }
}

/** Same contract as `writePrefixes`, built on `PrefixLayout.encode` (Blob.encode inside). */
export function writePrefixesLayout(
  list: readonly Prefix[],
  bits: 32 | 128,
  addPath: boolean,
  buf: Uint8Array,
  pos: number,
  limit: number,
): number {
  const view = Buffer.from(buf.buffer, buf.byteOffset, limit);
  for (const p of list)
    if (!Number.isInteger(p.len) || p.len < 0 || p.len > bits) throw new EncodeError(`prefix length ${p.len}`);
  try {
    return pos + seqFor(bits, addPath).encode(list as Prefix[], view, pos);
  } catch (err) {
    if (err instanceof LayoutError) throw new EncodeError(err.message, { cause: err });
    throw err;
  }
}

/**
 * The prefix-list implementation the message codecs call. Production uses the direct loops;
 * `bench/codec.ts` swaps in the buffer-layout variant to measure it, and a unit test runs the
 * fixtures through it. Not for use by the session.
 */
export const nlriImpl = { decode: decodePrefixes, write: writePrefixes };

export function useLayoutNlri(on: boolean): void {
  nlriImpl.decode = on ? decodePrefixesLayout : decodePrefixes;
  nlriImpl.write = on ? writePrefixesLayout : writePrefixes;
}
