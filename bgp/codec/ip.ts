/**
 * Address text <-> bytes without node:net (the codec is pure). IPv6 output is RFC 5952 canonical
 * (lower case, longest run of two or more zero groups compressed, leftmost on ties).
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

/** Parses IPv6 text (with '::' and an optional dotted-quad tail) into 16 bytes at `off`. */
export function parseIpv6Into(s: string, out: Uint8Array, off: number): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return false;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const words: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i] as string;
      if (i === items.length - 1 && it.includes('.')) {
        const v4 = parseIpv4(it);
        if (v4 === undefined) return undefined;
        words.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        words.push(Number.parseInt(it, 16));
      }
    }
    return words;
  };
  let words: number[];
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return false;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(s);
    if (all === undefined || all.length !== 8) return false;
    words = all;
  }
  for (let i = 0; i < 8; i++) {
    const w = words[i] as number;
    out[off + 2 * i] = w >>> 8;
    out[off + 2 * i + 1] = w & 0xff;
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
