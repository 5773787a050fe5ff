/**
 * Packing many prefixes that share one attribute set into as few UPDATEs as fit the session's
 * maximum length (BIRD buckets, GoBGP `CreateUpdateMsgFromPaths`). Withdrawals go first, in
 * attribute-less UPDATEs; then the reachable prefixes, each UPDATE repeating the attributes.
 */
import type { MpReach, MpUnreach, PathAttributes } from './attributes/types.js';
import { type CodecContext, maxMessageLen, sendsPathId } from './context.js';
import { EncodeError } from './errors.js';
import { encodeMessage } from './message.js';
import { prefixSize } from './nlri.js';
import { familyName, type Prefix } from './types.js';
import type { UpdateMessage } from './update.js';

/** Splits `list` into chunks whose encoded size stays within `budget` bytes. */
function chunk(list: readonly Prefix[], budget: number, addPath: boolean): Prefix[][] {
  const out: Prefix[][] = [];
  let cur: Prefix[] = [];
  let used = 0;
  for (const p of list) {
    const n = prefixSize(p, addPath);
    if (n > budget) throw new EncodeError('a single prefix does not fit the message');
    if (used + n > budget) {
      out.push(cur);
      cur = [];
      used = 0;
    }
    cur.push(p);
    used += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

const FIXED = 19 + 2 + 2; // header + withdrawn length + attribute length
const MP_ATTR_SLACK = 4 + 1; // header may grow to 4 bytes (E bit) and the estimate includes one extra byte

/**
 * Encodes `msg` as one or more UPDATEs, none longer than the context's maximum. The union of
 * what they announce and withdraw equals `msg`'s.
 */
export function packUpdates(msg: UpdateMessage, ctx: CodecContext): Buffer[] {
  const max = maxMessageLen(ctx);
  const v4ap = sendsPathId(ctx, 'ipv4-unicast');
  const out: Buffer[] = [];
  const { mpReach, mpUnreach, ...rest } = msg.attrs;

  for (const w of chunk(msg.withdrawn, max - FIXED, v4ap))
    out.push(encodeMessage({ type: 'update', withdrawn: w, attrs: {}, nlri: [] }, ctx));
  if (mpUnreach !== undefined && mpUnreach.withdrawn.length > 0) {
    const ap = sendsPathId(ctx, familyName(mpUnreach.afi, mpUnreach.safi) ?? 'ipv4-unicast');
    for (const w of chunk(mpUnreach.withdrawn, max - FIXED - 3 - MP_ATTR_SLACK, ap)) {
      const u: MpUnreach = { afi: mpUnreach.afi, safi: mpUnreach.safi, withdrawn: w };
      out.push(encodeMessage({ type: 'update', withdrawn: [], attrs: { mpUnreach: u }, nlri: [] }, ctx));
    }
  }
  const attrBytes = (a: PathAttributes) =>
    encodeMessage({ type: 'update', withdrawn: [], attrs: a, nlri: [] }, ctx).length - FIXED;
  if (msg.nlri.length > 0) {
    const base = attrBytes(rest);
    for (const n of chunk(msg.nlri, max - FIXED - base, v4ap)) {
      out.push(encodeMessage({ type: 'update', withdrawn: [], attrs: rest, nlri: n }, ctx));
    }
  }
  if (mpReach !== undefined && mpReach.nlri.length > 0) {
    const ap = sendsPathId(ctx, familyName(mpReach.afi, mpReach.safi) ?? 'ipv4-unicast');
    // NEXT_HOP belongs to classic NLRI only (RFC 4760 §3).
    const { nextHop: _classicNextHop, ...mpRest } = rest;
    const empty: MpReach = { ...mpReach, nlri: [] };
    const base = attrBytes({ ...mpRest, mpReach: empty }) + MP_ATTR_SLACK;
    for (const n of chunk(mpReach.nlri, max - FIXED - base, ap)) {
      const attrs: PathAttributes = { ...mpRest, mpReach: { ...mpReach, nlri: n } };
      out.push(encodeMessage({ type: 'update', withdrawn: [], attrs, nlri: [] }, ctx));
    }
  }
  if (out.length === 0) out.push(encodeMessage(msg, ctx));
  return out;
}
