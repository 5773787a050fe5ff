/**
 * Per-session codec context (the GoBGP `MarshallingOption` idea): what was negotiated in the OPEN
 * exchange decides AS number width, ADD-PATH path identifiers and the maximum message length.
 */
import type { Capability, OpenMessage } from './open.js';
import { AFI, type FamilyName, familyName, SAFI } from './types.js';

/**
 * ADD-PATH per family, from this speaker's point of view (RFC 7911 §4): `receive` = the peer
 * sends path IDs to us (decode expects them), `send` = we send path IDs (encode writes them).
 */
export type AddPathMode = 'receive' | 'send' | 'both';

export interface CodecContext {
  /** Both sides advertised the 4-octet AS capability (RFC 6793): AS_PATH/AGGREGATOR use 4-byte ASNs. */
  readonly as4: boolean;
  /** Both sides advertised extended messages (RFC 8654): UPDATE/NOTIFICATION/ROUTE-REFRESH up to 65535 bytes. */
  readonly extendedMessage: boolean;
  /** Negotiated ADD-PATH per family; absent = no path identifiers either way. */
  readonly addPath: Readonly<Partial<Record<FamilyName, AddPathMode>>>;
}

/** Before the OPEN exchange: 2-octet AS (the OPEN itself has no AS-width dependent fields), 4096 bytes, no ADD-PATH. */
export const DEFAULT_CONTEXT: CodecContext = Object.freeze({ as4: false, extendedMessage: false, addPath: {} });

/** Builds a context; unspecified fields take the modern defaults (as4 on). */
export function makeContext(opts: Partial<CodecContext> = {}): CodecContext {
  return { as4: opts.as4 ?? true, extendedMessage: opts.extendedMessage ?? false, addPath: opts.addPath ?? {} };
}

/** RFC 4271 §4.1 / RFC 8654 §4: 4096 for all messages, 65535 for UPDATE/NOTIFICATION/ROUTE-REFRESH with ext. messages. */
export const MAX_MESSAGE_LEN = 4096;
export const MAX_EXTENDED_MESSAGE_LEN = 65535;

export function maxMessageLen(ctx: CodecContext): number {
  return ctx.extendedMessage ? MAX_EXTENDED_MESSAGE_LEN : MAX_MESSAGE_LEN;
}

export function receivesPathId(ctx: CodecContext, family: FamilyName): boolean {
  const m = ctx.addPath[family];
  return m === 'receive' || m === 'both';
}

export function sendsPathId(ctx: CodecContext, family: FamilyName): boolean {
  const m = ctx.addPath[family];
  return m === 'send' || m === 'both';
}

function addPathModes(caps: readonly Capability[]): Map<FamilyName, number> {
  const out = new Map<FamilyName, number>();
  for (const c of caps) {
    if (c.type !== 'add-path') continue;
    for (const f of c.families) {
      const name = familyName(f.afi, f.safi);
      if (name !== undefined) out.set(name, f.mode === 'receive' ? 1 : f.mode === 'send' ? 2 : 3);
    }
  }
  return out;
}

/**
 * The context for a session, from the OPEN we sent and the OPEN we received (RFC 6793 §3,
 * RFC 8654 §3, RFC 7911 §4: a family receives path IDs when we advertised "receive" and the peer
 * advertised "send", and vice versa).
 */
export function negotiate(local: OpenMessage, remote: OpenMessage): CodecContext {
  const has = (o: OpenMessage, t: Capability['type']) => o.capabilities.some((c) => c.type === t);
  const localAp = addPathModes(local.capabilities);
  const remoteAp = addPathModes(remote.capabilities);
  const addPath: Partial<Record<FamilyName, AddPathMode>> = {};
  for (const [fam, lm] of localAp) {
    const rm = remoteAp.get(fam) ?? 0;
    const rx = (lm & 1) !== 0 && (rm & 2) !== 0;
    const tx = (lm & 2) !== 0 && (rm & 1) !== 0;
    if (rx || tx) addPath[fam] = rx && tx ? 'both' : rx ? 'receive' : 'send';
  }
  return {
    as4: has(local, 'four-octet-as') && has(remote, 'four-octet-as'),
    extendedMessage: has(local, 'extended-message') && has(remote, 'extended-message'),
    addPath,
  };
}

/** The context seen from the other end (swap send/receive), for decoding our own encodings in tests and oracles. */
export function mirrorContext(ctx: CodecContext): CodecContext {
  const addPath: Partial<Record<FamilyName, AddPathMode>> = {};
  for (const [k, v] of Object.entries(ctx.addPath) as [FamilyName, AddPathMode][]) {
    addPath[k] = v === 'both' ? 'both' : v === 'send' ? 'receive' : 'send';
  }
  return { ...ctx, addPath };
}

export { AFI, SAFI };
