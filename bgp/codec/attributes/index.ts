/**
 * The attribute table and the path-attribute list codec (RFC 4271 §4.3/§5, RFC 7606).
 *
 * Decoding walks the list once. Per attribute: framing (header and length must fit, else the
 * list is malformed), duplicates (RFC 7606 §3(g): keep the first, discard the rest; duplicate
 * MP_(UN)REACH -> 3/1 session reset), O/T flags (RFC 7606 §3(c) -> the attribute's action,
 * 3/4), then the value codec. Errors are collected; the caller picks the strongest action.
 */
import type { CodecContext } from '../context.js';
import { BgpError, EncodeError, ErrorCode, UpdateSubcode } from '../errors.js';
import { ATTR_HEADER } from '../layouts.js';
import type { Writer } from '../writer.js';
import { aggregatorAttr, as4AggregatorAttr, atomicAggregateAttr } from './aggregator.js';
import { as4PathAttr, asPathAttr, needsAs4 } from './as-path.js';
import { communitiesAttr, largeCommunitiesAttr } from './communities.js';
import { mpReachAttr, mpUnreachAttr } from './mp-reach.js';
import { nextHopAttr } from './next-hop.js';
import { clusterListAttr, localPrefAttr, medAttr, originatorIdAttr } from './numeric.js';
import { originAttr } from './origin.js';
import { type AttrDesc, AttrFlag, AttrType, type PathAttributes, type UnknownAttribute } from './types.js';
import { classifyUnknown, keepUnknown } from './unknown.js';

export { mergeAs4Path } from './as-path.js';
export { community, formatCommunity, WellKnownCommunity } from './communities.js';
export * from './types.js';

/** Attribute descriptors by type code (BIRD `bgp_attr_table`). */
export const ATTRIBUTES: ReadonlyMap<number, AttrDesc> = new Map(
  [
    originAttr,
    asPathAttr,
    nextHopAttr,
    medAttr,
    localPrefAttr,
    atomicAggregateAttr,
    aggregatorAttr,
    communitiesAttr,
    originatorIdAttr,
    clusterListAttr,
    mpReachAttr,
    mpUnreachAttr,
    as4PathAttr,
    as4AggregatorAttr,
    largeCommunitiesAttr,
  ].map((d) => [d.typeCode, d]),
);

export interface DecodedAttributes {
  attrs: PathAttributes;
  /** seen[type] = 1 for every attribute present on the wire (even if malformed or discarded). */
  seen: Uint8Array;
  /** The list itself could not be walked to its end (RFC 7606 §4). */
  framingError: boolean;
}

/** Decodes the attribute list b[start, end); problems are appended to `errors`. */
export function decodeAttributes(
  b: Buffer,
  start: number,
  end: number,
  ctx: CodecContext,
  errors: BgpError[],
): DecodedAttributes {
  const attrs: PathAttributes = {};
  const seen = new Uint8Array(256);
  let p = start;
  while (p < end) {
    if (end - p < 3 || (((b[p] as number) & AttrFlag.ExtendedLength) !== 0 && end - p < 4)) {
      errors.push(malformedList('attribute header truncated'));
      return { attrs, seen, framingError: true };
    }
    const h = ATTR_HEADER.decode(b, p);
    const vs = p + h.headerLen;
    const ve = vs + h.length;
    if (ve > end) {
      errors.push(malformedList(`attribute ${h.typeCode} overruns the attribute list`));
      return { attrs, seen, framingError: true };
    }
    const attrStart = p;
    const whole = () => new Uint8Array(b.subarray(attrStart, ve));
    const type = h.typeCode;
    p = ve;
    if (seen[type] === 1) {
      const isMp = type === AttrType.MpReachNlri || type === AttrType.MpUnreachNlri;
      errors.push(
        new BgpError(
          ErrorCode.UpdateMessage,
          UpdateSubcode.MalformedAttributeList,
          `duplicate attribute ${type}`,
          undefined,
          isMp ? 'session-reset' : 'attribute-discard',
        ),
      );
      continue;
    }
    seen[type] = 1;
    const desc = ATTRIBUTES.get(type);
    if (desc === undefined) {
      const verdict = classifyUnknown(h.flags);
      if (verdict === 'unrecognized-well-known') {
        errors.push(
          new BgpError(
            ErrorCode.UpdateMessage,
            UpdateSubcode.UnrecognizedWellKnownAttribute,
            `unrecognized well-known attribute ${type}`,
            whole(),
          ),
        );
      } else if (verdict === 'keep') {
        const kept = keepUnknown(h.flags, type, new Uint8Array(b.subarray(vs, ve)));
        if (attrs.unknown === undefined) attrs.unknown = [kept];
        else attrs.unknown.push(kept);
      }
      continue;
    }
    if ((h.flags & (AttrFlag.Optional | AttrFlag.Transitive)) !== desc.flags) {
      errors.push(
        new BgpError(
          ErrorCode.UpdateMessage,
          UpdateSubcode.AttributeFlagsError,
          `${desc.name} flags 0x${h.flags.toString(16)}`,
          whole(),
          desc.action,
        ),
      );
      continue;
    }
    if (ctx.as4 && (type === AttrType.As4Path || type === AttrType.As4Aggregator)) continue; // RFC 6793 §4.1: NEW-NEW sessions ignore them
    const problem = desc.decode(b, vs, ve, attrs, ctx);
    if (problem !== undefined) {
      errors.push(
        new BgpError(
          ErrorCode.UpdateMessage,
          problem.subcode,
          problem.message,
          problem.data ?? whole(),
          problem.action ?? desc.action,
        ),
      );
    }
  }
  // Canonical order (the encoder writes attributes by type code), so decode(encode(m)) equals m.
  if (attrs.unknown !== undefined && attrs.unknown.length > 1) attrs.unknown.sort((x, y) => x.typeCode - y.typeCode);
  return { attrs, seen, framingError: false };
}

function malformedList(message: string): BgpError {
  // RFC 7606 §4: the caller decides between treat-as-withdraw and session reset.
  return new BgpError(ErrorCode.UpdateMessage, UpdateSubcode.MalformedAttributeList, message);
}

interface Entry {
  typeCode: number;
  flags: number;
  write: () => void;
}

/**
 * Writes the attribute list in type-code order. On a 2-octet session (RFC 6793 §4.2.2) ASNs
 * above 65535 go out as AS_TRANS and AS4_PATH / AS4_AGGREGATOR are added when the caller did
 * not supply them; on a 4-octet session AS4_* are never sent (RFC 6793 §3).
 */
export function encodeAttributes(attrs: PathAttributes, w: Writer, ctx: CodecContext): void {
  const entries: Entry[] = [];
  for (const desc of ATTRIBUTES.values()) {
    if (!desc.has(attrs)) continue;
    if (ctx.as4 && (desc.typeCode === AttrType.As4Path || desc.typeCode === AttrType.As4Aggregator)) continue;
    entries.push({ typeCode: desc.typeCode, flags: desc.flags, write: () => desc.encode(attrs, w, ctx) });
  }
  if (!ctx.as4) {
    if (attrs.asPath !== undefined && attrs.as4Path === undefined && needsAs4(attrs.asPath)) {
      const as4Path = attrs.asPath.filter((s) => s.type === 'set' || s.type === 'sequence');
      entries.push({
        typeCode: AttrType.As4Path,
        flags: as4PathAttr.flags,
        write: () => as4PathAttr.encode({ as4Path }, w, ctx),
      });
    }
    if (attrs.aggregator !== undefined && attrs.as4Aggregator === undefined && attrs.aggregator.asn > 0xffff) {
      const as4Aggregator = attrs.aggregator;
      entries.push({
        typeCode: AttrType.As4Aggregator,
        flags: as4AggregatorAttr.flags,
        write: () => as4AggregatorAttr.encode({ as4Aggregator }, w, ctx),
      });
    }
  }
  for (const u of attrs.unknown ?? []) entries.push(unknownEntry(u, w));
  entries.sort((a, b) => a.typeCode - b.typeCode);
  for (const e of entries) writeAttr(e, w);
}

function unknownEntry(u: UnknownAttribute, w: Writer): Entry {
  if (ATTRIBUTES.has(u.typeCode)) throw new EncodeError(`unknown attribute uses known type ${u.typeCode}`);
  return { typeCode: u.typeCode, flags: u.flags & 0xe0, write: () => w.bytes(u.value) };
}

/** Header + value; the E bit is set only when the value exceeds 255 bytes. */
function writeAttr(e: Entry, w: Writer): void {
  const at = w.pos;
  w.ensure(4);
  w.pos += 4;
  e.write();
  const len = w.pos - at - 4;
  if (len > 0xffff) throw new EncodeError(`attribute ${e.typeCode} longer than 65535 bytes`);
  if (len <= 255) {
    w.buf.copyWithin(at + 3, at + 4, w.pos);
    w.pos -= 1;
  }
  ATTR_HEADER.encode({ flags: e.flags, typeCode: e.typeCode, length: len, headerLen: 0 }, w.buf, at);
}
