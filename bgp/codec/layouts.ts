/**
 * buffer-layout definitions for BGP's fixed-size structures, plus the custom Layouts BGP needs
 * where the library's element-counted `seq` does not fit (byte-length-delimited lists).
 *
 * Library limits we work around (reference/bgp.md §3.2): `Blob.decode` does not bounds-check (it
 * silently clamps), `encode` never grows the buffer, and `union` cannot express the attribute
 * header whose length width depends on a flag bit. So every caller checks the declared length
 * against the bytes available *before* decoding a structure, and the custom layouts below throw
 * `LayoutError`, which the message decoders map to a NOTIFICATION (it never leaves the codec).
 */
import { bits, blob, Layout, struct, u8, u16be, u32be } from 'buffer-layout';
import { formatIpv4U32, formatIpv6, parseIpv4Into, parseIpv6Into } from './ip.js';
import type { Prefix } from './types.js';

/** RFC 4271 §4.1 header: 16-byte marker, u16 length, u8 type (19 bytes). */
export interface HeaderFields {
  marker: Buffer;
  length: number;
  type: number;
}
export const HeaderLayout = struct<HeaderFields>([blob(16, 'marker'), u16be('length'), u8('type')]);
export const HEADER_LEN = 19;

/** RFC 4271 §4.2 fixed part of OPEN (10 bytes). */
export interface OpenFixedFields {
  version: number;
  myAs: number;
  holdTimeSec: number;
  bgpId: number;
  optParamLen: number;
}
export const OpenFixedLayout = struct<OpenFixedFields>([
  u8('version'),
  u16be('myAs'),
  u16be('holdTimeSec'),
  u32be('bgpId'),
  u8('optParamLen'),
]);

/** A {u8 code, u8 length} TLV head: OPEN optional parameters and capabilities (RFC 5492 §4). */
export const Tlv8HeadLayout = struct<{ code: number; len: number }>([u8('code'), u8('len')]);

/** RFC 4760 §8 multiprotocol capability value. */
export const MpCapLayout = struct<{ afi: number; reserved: number; safi: number }>([
  u16be('afi'),
  u8('reserved'),
  u8('safi'),
]);

/** RFC 4724 §3 graceful restart header: R, N (RFC 8538), 2 reserved bits, 12-bit restart time. */
export const GrHeadLayout = bits<{
  restarting: boolean;
  notification: boolean;
  reserved: number;
  restartTimeSec: number;
}>(u16be(), true);
GrHeadLayout.addBoolean('restarting');
GrHeadLayout.addBoolean('notification');
GrHeadLayout.addField(2, 'reserved');
GrHeadLayout.addField(12, 'restartTimeSec');

/** {afi u16, safi u8, u8 flags-or-mode}: GR per-family tuples and ADD-PATH tuples (RFC 4724, RFC 7911 §4). */
export const AfiSafiByteLayout = struct<{ afi: number; safi: number; value: number }>([
  u16be('afi'),
  u8('safi'),
  u8('value'),
]);

/** MP_REACH_NLRI head up to the next-hop length (RFC 4760 §3). */
export const MpReachHeadLayout = struct<{ afi: number; safi: number; nhLen: number }>([
  u16be('afi'),
  u8('safi'),
  u8('nhLen'),
]);
/** MP_UNREACH_NLRI head (RFC 4760 §4). */
export const MpUnreachHeadLayout = struct<{ afi: number; safi: number }>([u16be('afi'), u8('safi')]);

/** AGGREGATOR with 2- or 4-octet AS (RFC 4271 §5.1.7, RFC 6793 §3). */
export const Aggregator2Layout = struct<{ asn: number; address: number }>([u16be('asn'), u32be('address')]);
export const Aggregator4Layout = struct<{ asn: number; address: number }>([u32be('asn'), u32be('address')]);

/** RFC 8092 large community. */
export const LargeCommunityLayout = struct<{ globalAdmin: number; localData1: number; localData2: number }>([
  u32be('globalAdmin'),
  u32be('localData1'),
  u32be('localData2'),
]);

/** ROUTE-REFRESH body (RFC 2918 §3, RFC 7313 §3.2). */
export const RouteRefreshLayout = struct<{ afi: number; subtype: number; safi: number }>([
  u16be('afi'),
  u8('subtype'),
  u8('safi'),
]);

/** NOTIFICATION fixed part (RFC 4271 §4.5). */
export const NotificationHeadLayout = struct<{ code: number; subcode: number }>([u8('code'), u8('subcode')]);

/** Thrown by the custom layouts below; caught and mapped to a BgpError by the caller. */
export class LayoutError extends Error {
  override readonly name = 'LayoutError';
  constructor(
    readonly reason: 'length-too-long' | 'truncated' | 'overrun',
    message: string,
  ) {
    super(message);
  }
}

/** Path attribute header (RFC 4271 §4.3): flags, type, u8 length or u16 when E (0x10) is set. */
export interface AttrHeader {
  flags: number;
  typeCode: number;
  length: number;
  /** 3 or 4 bytes. */
  headerLen: number;
}
export class AttrHeaderLayout extends Layout<AttrHeader> {
  constructor(property?: string) {
    super(-1, property);
  }
  override getSpan(b: Buffer, offset = 0): number {
    return ((b[offset] as number) & 0x10) !== 0 ? 4 : 3;
  }
  override decode(b: Buffer, offset = 0): AttrHeader {
    const flags = U8.decode(b, offset);
    const typeCode = U8.decode(b, offset + 1);
    const ext = (flags & 0x10) !== 0;
    const length = ext ? U16.decode(b, offset + 2) : U8.decode(b, offset + 2);
    return { flags, typeCode, length, headerLen: ext ? 4 : 3 };
  }
  override encode(src: AttrHeader, b: Buffer, offset = 0): number {
    const ext = src.length > 255;
    U8.encode((src.flags & ~0x10) | (ext ? 0x10 : 0), b, offset);
    U8.encode(src.typeCode, b, offset + 1);
    if (ext) U16.encode(src.length, b, offset + 2);
    else U8.encode(src.length, b, offset + 2);
    return ext ? 4 : 3;
  }
}
export const ATTR_HEADER = new AttrHeaderLayout();

const U8 = u8();
const U16 = u16be();
const U32 = u32be();
/** Pre-built fixed blobs for 0..16 address bytes. */
const BLOBS = Array.from({ length: 17 }, (_, i) => blob(i));

/**
 * One prefix {[pathId u32], len u8, ceil(len/8) bytes} built from buffer-layout primitives. This
 * is the "with buffer-layout" path measured by bench/codec.ts; the codec itself uses nlri.ts.
 */
export class PrefixLayout extends Layout<Prefix> {
  constructor(
    readonly bitsPerAddr: 32 | 128,
    readonly addPath: boolean,
    property?: string,
  ) {
    super(-1, property);
  }
  override getSpan(b: Buffer, offset = 0): number {
    const h = this.addPath ? 4 : 0;
    return h + 1 + ((U8.decode(b, offset + h) + 7) >> 3);
  }
  override decode(b: Buffer, offset = 0): Prefix {
    const h = this.addPath ? 4 : 0;
    if (offset + h + 1 > b.length) throw new LayoutError('truncated', 'prefix header truncated');
    const pathId = this.addPath ? U32.decode(b, offset) : 0;
    const len = U8.decode(b, offset + h);
    if (len > this.bitsPerAddr) throw new LayoutError('length-too-long', `prefix length ${len}`);
    const n = (len + 7) >> 3;
    // Blob.decode clamps silently at the end of the buffer: check first.
    if (offset + h + 1 + n > b.length) throw new LayoutError('truncated', 'prefix bytes truncated');
    const bytes = (BLOBS[n] as Layout<Buffer>).decode(b, offset + h + 1);
    let prefix: string;
    if (this.bitsPerAddr === 32) {
      let v = 0;
      for (let i = 0; i < 4; i++) v = (v << 8) | (i < n ? (bytes[i] as number) : 0);
      v = len === 0 ? 0 : (v & (0xffffffff << (32 - len))) >>> 0;
      prefix = formatIpv4U32(v);
    } else {
      const a = new Uint8Array(16);
      a.set(bytes);
      if ((len & 7) !== 0) a[n - 1] = (a[n - 1] as number) & (0xff << (8 - (len & 7)));
      prefix = formatIpv6(a, 0, 16);
    }
    return this.addPath ? { prefix, len, pathId } : { prefix, len };
  }
  override encode(src: Prefix, b: Buffer, offset = 0): number {
    const h = this.addPath ? 4 : 0;
    const n = (src.len + 7) >> 3;
    const addr = Buffer.alloc(16);
    const ok = this.bitsPerAddr === 32 ? parseIpv4Into(src.prefix, addr, 0) : parseIpv6Into(src.prefix, addr, 0);
    if (!ok || src.len > this.bitsPerAddr) throw new LayoutError('length-too-long', `bad prefix ${src.prefix}`);
    if (offset + h + 1 + n > b.length) throw new LayoutError('overrun', 'encoding overruns buffer');
    if (this.addPath) U32.encode(src.pathId ?? 0, b, offset);
    U8.encode(src.len, b, offset + h);
    (BLOBS[n] as Layout<Buffer>).encode(addr.subarray(0, n), b, offset + h + 1);
    return h + 1 + n;
  }
}

/**
 * Elements packed back to back until exactly `byteLength` bytes are used: the shape of BGP's
 * withdrawn routes, NLRI, attribute lists and capability lists. buffer-layout's `seq` counts
 * elements, not bytes, hence this layout. An element running past the region is an error.
 */
export class ByteBoundedSeq<T> extends Layout<T[]> {
  constructor(
    readonly element: Layout<T>,
    property?: string,
  ) {
    super(-1, property);
  }
  /** Decodes b[start, end). */
  decodeRange(b: Buffer, start: number, end: number): T[] {
    if (end > b.length) throw new LayoutError('truncated', 'region past end of buffer');
    const region = b.subarray(0, end);
    const out: T[] = [];
    let p = start;
    while (p < end) {
      const span = this.element.getSpan(region, p);
      if (p + span > end) throw new LayoutError('overrun', 'element overruns its region');
      out.push(this.element.decode(region, p));
      p += span;
    }
    return out;
  }
  override decode(b: Buffer, offset = 0): T[] {
    return this.decodeRange(b, offset, b.length);
  }
  override encode(src: T[], b: Buffer, offset = 0): number {
    let p = offset;
    for (const e of src) p += this.element.encode(e, b, p);
    return p - offset;
  }
}

/** Parse a u32 big-endian BGP identifier / IPv4 address as text (helper shared by OPEN and attributes). */
export function ipv4FromU32(v: number): string {
  return formatIpv4U32(v);
}
