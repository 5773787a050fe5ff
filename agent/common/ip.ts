/**
 * Address text <-> bytes without node:net: the one address parser of the pure cores (BGP codec,
 * IPAM CIDR arithmetic, CNI config checks). A leaf: no imports, no I/O. IPv6 output is RFC 5952
 * canonical (lower case, longest run of two or more zero groups compressed, leftmost on ties).
 * Accepted text: dotted quads without leading zeros; RFC 4291 §2.2 IPv6 forms (at most one "::",
 * optional dotted-quad tail); no zone IDs ("%eth0"), no prefix lengths.
 */

/** '0'..'255', so formatting a dotted quad is four table lookups. */
const OCTET: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));

/** Dotted quad from 4 bytes at `off` (bytes past `n` are taken as zero). */
export function formatIpv4(b: Uint8Array, off: number, n = 4): string {
  const a0 = n > 0 ? (b[off] as number) : 0;
  const a1 = n > 1 ? (b[off + 1] as number) : 0;
  const a2 = n > 2 ? (b[off + 2] as number) : 0;
  const a3 = n > 3 ? (b[off + 3] as number) : 0;
  return `${OCTET[a0]}.${OCTET[a1]}.${OCTET[a2]}.${OCTET[a3]}`;
}

export function formatIpv4U32(v: number): string {
  return `${OCTET[(v >>> 24) & 0xff]}.${OCTET[(v >>> 16) & 0xff]}.${OCTET[(v >>> 8) & 0xff]}.${OCTET[v & 0xff]}`;
}

/**
 * Parses a dotted quad into `out` at `off` (4 bytes). Returns false on anything else (no leading
 * '+', no octal, each part 0..255). Hand-rolled: it runs once per prefix on the encode hot path.
 */
export function parseIpv4Into(s: string, out: Uint8Array, off: number): boolean {
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part === 3) return false;
      out[off + part] = val;
      part++;
      val = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && val === 0) return false; // RFC 6943: no leading zeros (would be octal elsewhere)
      val = val * 10 + (c - 48);
      if (val > 255 || ++digits > 3) return false;
    } else return false;
  }
  if (part !== 3 || digits === 0) return false;
  out[off + 3] = val;
  return true;
}

export function parseIpv4(s: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  return parseIpv4Into(s, out, 0) ? out : undefined;
}

export function ipv4ToU32(s: string): number | undefined {
  const b = parseIpv4(s);
  if (b === undefined) return undefined;
  return ((b[0] as number) * 0x1000000 + (((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number))) >>> 0;
}

/** RFC 5952 text for 16 bytes at `off` (bytes past `n` are zero). */
export function formatIpv6(b: Uint8Array, off: number, n = 16): string {
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++) {
    const hi = 2 * i < n ? (b[off + 2 * i] as number) : 0;
    const lo = 2 * i + 1 < n ? (b[off + 2 * i + 1] as number) : 0;
    g[i] = (hi << 8) | lo;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return g.map((x) => x.toString(16)).join(':');
  const head = g.slice(0, bestStart).map((x) => x.toString(16));
  const tail = g.slice(bestStart + bestLen).map((x) => x.toString(16));
  return `${head.join(':')}::${tail.join(':')}`;
}

const words8 = new Uint16Array(8);

/**
 * Parses IPv6 text (with '::' and an optional dotted-quad tail) into 16 bytes at `off`.
 * A single character loop: it runs once per prefix on the IPv6 encode path.
 */
export function parseIpv6Into(s: string, out: Uint8Array, off: number): boolean {
  const n = s.length;
  if (n < 2 || n > 45) return false;
  let count = 0; // groups written
  let gap = -1; // index in words8 where '::' sits
  let i = 0;
  if (s.charCodeAt(0) === 58) {
    if (s.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
    if (i === n) return fill(out, off, 0, gap);
  }
  while (i < n) {
    if (count === 8) return false;
    let v = 0;
    let digits = 0;
    const groupStart = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else break;
      v = (v << 4) | d;
      if (++digits > 4) return false;
      i++;
    }
    if (i < n && s.charCodeAt(i) === 46) {
      // dotted-quad tail (RFC 4291 §2.2 form 3)
      if (count > 6) return false;
      const v4 = parseIpv4(s.slice(groupStart));
      if (v4 === undefined) return false;
      words8[count++] = ((v4[0] as number) << 8) | (v4[1] as number);
      words8[count++] = ((v4[2] as number) << 8) | (v4[3] as number);
      i = n;
      break;
    }
    if (digits === 0) return false;
    words8[count++] = v;
    if (i === n) break;
    if (s.charCodeAt(i) !== 58) return false;
    i++;
    if (i < n && s.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = count;
      i++;
      if (i === n) break;
    } else if (i === n) return false; // trailing single ':'
  }
  return fill(out, off, count, gap);
}

function fill(out: Uint8Array, off: number, count: number, gap: number): boolean {
  if (gap < 0 ? count !== 8 : count > 7) return false;
  const zeros = 8 - count;
  let w = 0;
  for (let g = 0; g < 8; g++) {
    let v = 0;
    if (gap >= 0 && g >= gap && g < gap + zeros) v = 0;
    else v = words8[w++] as number;
    out[off + 2 * g] = v >>> 8;
    out[off + 2 * g + 1] = v & 0xff;
  }
  return true;
}

export function parseIpv6(s: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  return parseIpv6Into(s, out, 0) ? out : undefined;
}

/** fe80::/10 (RFC 4291 §2.5.6). */
export function isIpv6LinkLocal(b: Uint8Array, off = 0): boolean {
  return b[off] === 0xfe && ((b[off + 1] as number) & 0xc0) === 0x80;
}
