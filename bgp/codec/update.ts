/**
 * UPDATE (RFC 4271 §4.3, §6.3) with RFC 7606 revised error handling. IPv4 unicast travels in the
 * classic withdrawn/NLRI fields (BIRD 1.6, which Calico uses, ignores MP-encoded IPv4); other
 * families in MP_REACH_NLRI / MP_UNREACH_NLRI.
 */
import { type DecodedAttributes, decodeAttributes, encodeAttributes } from './attributes/index.js';
import { AttrType, type MpUnreach, type PathAttributes } from './attributes/types.js';
import { type CodecContext, receivesPathId, sendsPathId } from './context.js';
import { BgpError, type Decoded, ErrorCode, strongestError, UpdateSubcode } from './errors.js';
import { NlriStatus, nlriImpl } from './nlri.js';
import type { Prefix } from './types.js';
import type { Writer } from './writer.js';

export interface UpdateMessage {
  type: 'update';
  /** IPv4 unicast withdrawals (classic field). */
  withdrawn: Prefix[];
  attrs: PathAttributes;
  /** IPv4 unicast reachable prefixes (classic field); they share `attrs` and `attrs.nextHop`. */
  nlri: Prefix[];
}

function sessionReset(subcode: number, message: string): Decoded<UpdateMessage> {
  return { ok: false, error: new BgpError(ErrorCode.UpdateMessage, subcode, message) };
}

/** Decodes an UPDATE body b[start, end). */
export function decodeUpdate(b: Buffer, start: number, end: number, ctx: CodecContext): Decoded<UpdateMessage> {
  if (end - start < 4) return sessionReset(UpdateSubcode.MalformedAttributeList, 'UPDATE too short');
  const wLen = b.readUInt16BE(start);
  const wEnd = start + 2 + wLen;
  // RFC 4271 §6.3 / RFC 7606 §4: lengths that overrun the message -> 3/1, session reset.
  if (wEnd + 2 > end)
    return sessionReset(UpdateSubcode.MalformedAttributeList, 'withdrawn routes length overruns UPDATE');
  const aLen = b.readUInt16BE(wEnd);
  const aStart = wEnd + 2;
  const aEnd = aStart + aLen;
  if (aEnd > end)
    return sessionReset(UpdateSubcode.MalformedAttributeList, 'total path attribute length overruns UPDATE');

  const v4AddPath = receivesPathId(ctx, 'ipv4-unicast');
  const withdrawn: Prefix[] = [];
  // RFC 7606 §5.3: a malformed withdrawn/NLRI field cannot be treated as withdraw -> session reset, 3/10.
  let st = nlriImpl.decode(b, start + 2, wEnd, 32, v4AddPath, withdrawn);
  if (st !== NlriStatus.Ok)
    return sessionReset(UpdateSubcode.InvalidNetworkField, `withdrawn routes: ${nlriReason(st)}`);
  const nlri: Prefix[] = [];
  st = nlriImpl.decode(b, aEnd, end, 32, v4AddPath, nlri);
  if (st !== NlriStatus.Ok) return sessionReset(UpdateSubcode.InvalidNetworkField, `NLRI: ${nlriReason(st)}`);

  const errors: BgpError[] = [];
  let d: DecodedAttributes;
  if (aLen === 0) d = { attrs: {}, seen: NONE_SEEN, framingError: false };
  else d = decodeAttributes(b, aStart, aEnd, ctx, errors);
  const { attrs, seen } = d;

  if (d.framingError) {
    // RFC 7606 §4 + §5.2: treat-as-withdraw if there is NLRI to withdraw, else the session must reset.
    const hasNlri =
      nlri.length > 0 || withdrawn.length > 0 || attrs.mpReach !== undefined || attrs.mpUnreach !== undefined;
    const last = errors.pop() as BgpError;
    errors.push(
      new BgpError(last.code, last.subcode, last.message, last.data, hasNlri ? 'treat-as-withdraw' : 'session-reset'),
    );
  } else if (nlri.length > 0 || attrs.mpReach !== undefined) {
    // RFC 4271 §6.3 + RFC 7606 §3(d): missing well-known mandatory -> 3/3 (data: the type code), treat-as-withdraw.
    // NEXT_HOP is mandatory only with classic NLRI (RFC 4760 §3).
    const required = nlri.length > 0 ? MANDATORY_CLASSIC : MANDATORY_MP;
    for (const t of required) {
      if (seen[t] !== 1) {
        errors.push(
          new BgpError(
            ErrorCode.UpdateMessage,
            UpdateSubcode.MissingWellKnownAttribute,
            `missing attribute ${t}`,
            Uint8Array.of(t),
            'treat-as-withdraw',
          ),
        );
      }
    }
  }
  const worst = strongestError(errors);
  if (worst !== undefined && worst.action === 'session-reset') return { ok: false, error: worst };
  return { ok: true, msg: { type: 'update', withdrawn, attrs, nlri }, attrErrors: errors };
}

const NONE_SEEN = new Uint8Array(256);
const MANDATORY_CLASSIC = [AttrType.Origin, AttrType.AsPath, AttrType.NextHop];
const MANDATORY_MP = [AttrType.Origin, AttrType.AsPath];

function nlriReason(st: NlriStatus): string {
  return st === NlriStatus.LengthTooLong ? 'prefix length too long' : 'truncated prefix';
}

/** Encodes an UPDATE body. Throws EncodeError when it does not fit (see `packUpdates`). */
export function encodeUpdate(msg: UpdateMessage, w: Writer, ctx: CodecContext): void {
  const v4AddPath = sendsPathId(ctx, 'ipv4-unicast');
  const wAt = w.reserveU16();
  w.pos = nlriImpl.write(msg.withdrawn, 32, v4AddPath, w.buf, w.pos, w.limit);
  w.patchU16(wAt, w.pos - wAt - 2);
  const aAt = w.reserveU16();
  encodeAttributes(msg.attrs, w, ctx);
  w.patchU16(aAt, w.pos - aAt - 2);
  w.pos = nlriImpl.write(msg.nlri, 32, v4AddPath, w.buf, w.pos, w.limit);
}

/**
 * End-of-RIB marker (RFC 4724 §2): IPv4 unicast is the empty UPDATE; any other family is an
 * UPDATE whose only attribute is an empty MP_UNREACH_NLRI for it.
 */
export function endOfRib(afi = 1, safi = 1): UpdateMessage {
  if (afi === 1 && safi === 1) return { type: 'update', withdrawn: [], attrs: {}, nlri: [] };
  return { type: 'update', withdrawn: [], attrs: { mpUnreach: { afi, safi, withdrawn: [] } }, nlri: [] };
}

/** The family an End-of-RIB UPDATE marks, or undefined if `msg` is not one. */
export function isEndOfRib(msg: UpdateMessage): { afi: number; safi: number } | undefined {
  if (msg.withdrawn.length > 0 || msg.nlri.length > 0) return undefined;
  const keys = Object.keys(msg.attrs);
  if (keys.length === 0) return { afi: 1, safi: 1 };
  const u = msg.attrs.mpUnreach;
  if (keys.length === 1 && u !== undefined && u.withdrawn.length === 0) return { afi: u.afi, safi: u.safi };
  return undefined;
}

/**
 * RFC 7606 §2 treat-as-withdraw: every prefix the UPDATE announced becomes a withdrawal
 * (classic NLRI -> withdrawn, MP_REACH NLRI -> MP_UNREACH), and the attributes are dropped.
 */
export function treatAsWithdraw(msg: UpdateMessage): UpdateMessage {
  const attrs: PathAttributes = {};
  const reach = msg.attrs.mpReach;
  const unreach = msg.attrs.mpUnreach;
  if (reach !== undefined || unreach !== undefined) {
    // One MP_UNREACH per UPDATE: if the families differ, keep the reach family's withdrawals.
    const afi = reach?.afi ?? (unreach as MpUnreach).afi;
    const safi = reach?.safi ?? (unreach as MpUnreach).safi;
    const same = unreach !== undefined && unreach.afi === afi && unreach.safi === safi;
    attrs.mpUnreach = { afi, safi, withdrawn: [...(same ? unreach.withdrawn : []), ...(reach?.nlri ?? [])] };
  }
  return { type: 'update', withdrawn: [...msg.withdrawn, ...msg.nlri], attrs, nlri: [] };
}
