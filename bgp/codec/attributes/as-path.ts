/**
 * AS_PATH (RFC 4271 §5.1.2) and AS4_PATH (RFC 6793 §3). The ASN width of AS_PATH comes from the
 * session context (4 octets when both sides advertised capability 65, else 2). AS4_PATH is
 * always 4 octets.
 *
 * RFC 7606 §7.2: a malformed AS_PATH (unknown segment type, zero-length segment, overrun or a
 * one-octet underrun) -> treat-as-withdraw, 3/11. RFC 6793 §6: a malformed AS4_PATH (including
 * confederation segments) is discarded.
 */
import type { CodecContext } from '../context.js';
import { EncodeError, UpdateSubcode } from '../errors.js';
import { AS_TRANS } from '../open.js';
import type { Writer } from '../writer.js';
import {
  type AsPathSegment,
  type AsPathSegmentType,
  type AttrDesc,
  type AttrProblem,
  AttrType,
  OPTIONAL_TRANSITIVE,
  WELL_KNOWN,
} from './types.js';

const SEGMENT_TYPES: Record<number, AsPathSegmentType> = {
  1: 'set',
  2: 'sequence',
  3: 'confed-sequence',
  4: 'confed-set',
};
const SEGMENT_CODES: Record<AsPathSegmentType, number> = { set: 1, sequence: 2, 'confed-sequence': 3, 'confed-set': 4 };

/** Decodes segments in b[s, e) with `width`-byte ASNs; a string describes the malformation. */
export function decodeSegments(b: Buffer, s: number, e: number, width: 2 | 4): AsPathSegment[] | string {
  const out: AsPathSegment[] = [];
  let p = s;
  while (p < e) {
    if (e - p < 2) return 'one-octet underrun after the last segment';
    const type = SEGMENT_TYPES[b[p] as number];
    if (type === undefined) return `unknown segment type ${b[p]}`;
    const count = b[p + 1] as number;
    if (count === 0) return 'zero-length segment';
    const end = p + 2 + count * width;
    if (end > e) return 'segment overruns the attribute';
    const asns = new Array<number>(count);
    for (let i = 0; i < count; i++)
      asns[i] = width === 4 ? b.readUInt32BE(p + 2 + 4 * i) : b.readUInt16BE(p + 2 + 2 * i);
    out.push({ type, asns });
    p = end;
  }
  return out;
}

/** Writes segments with `width`-byte ASNs; 2-byte writes put AS_TRANS for ASNs above 65535 (RFC 6793 §4.2.2). */
export function encodeSegments(segs: readonly AsPathSegment[], w: Writer, width: 2 | 4): void {
  for (const seg of segs) {
    const code = SEGMENT_CODES[seg.type];
    if (code === undefined) throw new EncodeError(`unknown AS_PATH segment type ${seg.type}`);
    if (seg.asns.length === 0) throw new EncodeError('empty AS_PATH segment');
    // RFC 4271 §5.1.2: a segment holds at most 255 ASNs; longer ones are split.
    for (let i = 0; i < seg.asns.length; i += 255) {
      const chunk = seg.asns.slice(i, i + 255);
      w.u8(code);
      w.u8(chunk.length);
      for (const asn of chunk) {
        if (!Number.isInteger(asn) || asn < 0 || asn > 0xffffffff) throw new EncodeError(`invalid ASN ${asn}`);
        if (width === 4) w.u32(asn);
        else w.u16(asn > 0xffff ? AS_TRANS : asn);
      }
    }
  }
}

export const asPathAttr: AttrDesc = {
  typeCode: AttrType.AsPath,
  name: 'AS_PATH',
  flags: WELL_KNOWN,
  action: 'treat-as-withdraw',
  decode(b, s, e, attrs, ctx: CodecContext): AttrProblem | undefined {
    const r = decodeSegments(b, s, e, ctx.as4 ? 4 : 2);
    if (typeof r === 'string') return { subcode: UpdateSubcode.MalformedAsPath, message: `AS_PATH: ${r}` };
    attrs.asPath = r;
    return undefined;
  },
  has: (a) => a.asPath !== undefined,
  encode: (a, w, ctx) => encodeSegments(a.asPath as AsPathSegment[], w, ctx.as4 ? 4 : 2),
};

export const as4PathAttr: AttrDesc = {
  typeCode: AttrType.As4Path,
  name: 'AS4_PATH',
  flags: OPTIONAL_TRANSITIVE,
  action: 'attribute-discard',
  decode(b, s, e, attrs) {
    const r = decodeSegments(b, s, e, 4);
    if (typeof r === 'string') return { subcode: UpdateSubcode.OptionalAttributeError, message: `AS4_PATH: ${r}` };
    if (r.some((seg) => seg.type === 'confed-sequence' || seg.type === 'confed-set')) {
      return { subcode: UpdateSubcode.OptionalAttributeError, message: 'AS4_PATH with confederation segments' };
    }
    attrs.as4Path = r;
    return undefined;
  },
  has: (a) => a.as4Path !== undefined,
  encode: (a, w) => encodeSegments(a.as4Path as AsPathSegment[], w, 4),
};

/** True when a path needs 4 octets somewhere (so a 2-octet session must also carry AS4_PATH). */
export function needsAs4(segs: readonly AsPathSegment[]): boolean {
  return segs.some((s) => s.asns.some((a) => a > 0xffff));
}

/** RFC 6793 §4.2.3 path length: a set counts as one, confederation segments as zero. */
function pathLength(segs: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of segs) n += s.type === 'sequence' ? s.asns.length : s.type === 'set' ? 1 : 0;
  return n;
}

/**
 * Reconstructs the 4-octet path from a 2-octet session's AS_PATH and AS4_PATH (RFC 6793 §4.2.3):
 * keep the leading (len(AS_PATH) - len(AS4_PATH)) ASNs of AS_PATH, then append AS4_PATH. If
 * AS4_PATH is longer than AS_PATH it is ignored.
 */
export function mergeAs4Path(
  asPath: readonly AsPathSegment[],
  as4Path: readonly AsPathSegment[] | undefined,
): AsPathSegment[] {
  if (as4Path === undefined) return asPath.map((s) => ({ type: s.type, asns: [...s.asns] }));
  let keep = pathLength(asPath) - pathLength(as4Path);
  if (keep < 0) return asPath.map((s) => ({ type: s.type, asns: [...s.asns] }));
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (keep <= 0 && s.type !== 'confed-sequence' && s.type !== 'confed-set') break;
    if (s.type === 'sequence') {
      const take = s.asns.slice(0, keep);
      keep -= take.length;
      if (take.length > 0) out.push({ type: 'sequence', asns: take });
    } else if (s.type === 'set') {
      out.push({ type: 'set', asns: [...s.asns] });
      keep -= 1;
    } else out.push({ type: s.type, asns: [...s.asns] });
  }
  for (const s of as4Path) out.push({ type: s.type, asns: [...s.asns] });
  return out;
}
