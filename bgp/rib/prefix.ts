/** Prefix text helpers for the RIB (pure; no node:net). */
import type { FamilyName, Prefix } from '../codec/index.js';

const keyChars = new Uint8Array(48);

/**
 * The RIB's key for a decoded prefix ('10.244.1.0/26'), as one flat string. Texts built by
 * concatenation are V8 rope strings (a tree of parts, ~100 bytes for a /32); this is one
 * sequential string of ~32 bytes, and there are a million of them in a full table.
 */
export function prefixKey(p: Prefix): string {
  const a = p.prefix;
  let n = a.length;
  for (let i = 0; i < n; i++) keyChars[i] = a.charCodeAt(i);
  keyChars[n++] = 0x2f; // '/'
  const len = p.len;
  if (len >= 100) keyChars[n++] = 0x30 + Math.floor(len / 100);
  if (len >= 10) keyChars[n++] = 0x30 + (Math.floor(len / 10) % 10);
  keyChars[n++] = 0x30 + (len % 10);
  return String.fromCharCode.apply(null, keyChars.subarray(0, n) as unknown as number[]);
}

export interface ParsedPrefix {
  family: 'ipv4-unicast' | 'ipv6-unicast';
  /** 4 or 16 bytes, host bits cleared. */
  bytes: Uint8Array;
  len: number;
}

export function parseIpv4(s: string): Uint8Array | undefined {
  const p = s.split('.');
  if (p.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const t = p[i] as string;
    if (!/^\d{1,3}$/.test(t)) return undefined;
    const n = Number(t);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

export function parseIpv6(s: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return undefined;
  const groups = (t: string): number[] | undefined => {
    if (t === '') return [];
    const out: number[] = [];
    const parts = t.split(':');
    for (let i = 0; i < parts.length; i++) {
      const x = parts[i] as string;
      if (i === parts.length - 1 && x.includes('.')) {
        const v4 = parseIpv4(x);
        if (!v4) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(x)) return undefined;
      out.push(Number.parseInt(x, 16));
    }
    return out;
  };
  let words: number[];
  if (dbl >= 0) {
    const head = groups(s.slice(0, dbl));
    const tail = groups(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = groups(s);
    if (all?.length !== 8) return undefined;
    words = all;
  }
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

export function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text. */
export function formatIpv6(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(((b[2 * i] as number) << 8) | (b[2 * i + 1] as number));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

/** Parses 'a.b.c.d/n' or 'x::/n', clearing host bits; undefined when invalid. */
export function parsePrefix(text: string): ParsedPrefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  const v6 = addr.includes(':');
  const bytes = v6 ? parseIpv6(addr) : parseIpv4(addr);
  if (!bytes || len > bytes.length * 8) return undefined;
  for (let bit = len; bit < bytes.length * 8; bit++)
    bytes[bit >> 3] = (bytes[bit >> 3] as number) & ~(0x80 >> (bit & 7));
  return { family: v6 ? 'ipv6-unicast' : 'ipv4-unicast', bytes, len };
}

/** Canonical text of a parsed prefix ('10.244.1.0/26', 'fd00:10:244:1::/122'). */
export function formatPrefix(p: ParsedPrefix): string {
  return `${p.family === 'ipv6-unicast' ? formatIpv6(p.bytes) : formatIpv4(p.bytes)}/${p.len}`;
}

/** Canonical form of a prefix string, or undefined when invalid. */
export function canonicalPrefix(text: string): string | undefined {
  const p = parsePrefix(text);
  return p ? formatPrefix(p) : undefined;
}

/** True when `inner` lies within `outer` (same family, at least as long, leading bits equal). */
export function prefixWithin(inner: ParsedPrefix, outer: ParsedPrefix): boolean {
  if (inner.family !== outer.family || inner.len < outer.len) return false;
  const full = outer.len >> 3;
  for (let i = 0; i < full; i++) if (inner.bytes[i] !== outer.bytes[i]) return false;
  const rem = outer.len & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((inner.bytes[full] as number) & mask) === ((outer.bytes[full] as number) & mask);
}

export function familyOfPrefix(text: string): FamilyName {
  return text.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast';
}

/** Compares two addresses of the same family numerically (IPv4 before IPv6). */
export function compareAddresses(a: string, b: string): number {
  const pa = a.includes(':') ? parseIpv6(a) : parseIpv4(a);
  const pb = b.includes(':') ? parseIpv6(b) : parseIpv4(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  if (pa.length !== pb.length) return pa.length - pb.length;
  for (let i = 0; i < pa.length; i++) if (pa[i] !== pb[i]) return (pa[i] as number) - (pb[i] as number);
  return 0;
}
