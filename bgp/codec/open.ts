/** OPEN (RFC 4271 §4.2, §6.2) with capability optional parameters (RFC 5492). */
import { type Capability, decodeCapabilities, encodeCapability } from './capabilities.js';
import { BgpError, type Decoded, EncodeError, ErrorCode, HeaderSubcode, OpenSubcode, u16Data } from './errors.js';
import { ipv4ToU32 } from './ip.js';
import { ipv4FromU32, OpenFixedLayout, Tlv8HeadLayout } from './layouts.js';
import type { Writer } from './writer.js';

export type { Capability } from './capabilities.js';

/** RFC 6793 §9: the 2-octet stand-in for a 4-octet AS. */
export const AS_TRANS = 23456;
/** RFC 4271 §4.2 optional parameter type for capabilities (RFC 5492 §4). */
const PARAM_CAPABILITIES = 2;

export interface OpenMessage {
  type: 'open';
  /** Always 4 when encoding; a decoded OPEN with another version fails with 2/1. */
  version: number;
  /** 2-octet "My Autonomous System" field: AS_TRANS (23456) when the real AS needs 4 octets. */
  myAs: number;
  /** 0 or >= 3 (RFC 4271 §4.2). */
  holdTimeSec: number;
  /** BGP identifier as a dotted quad. */
  bgpId: string;
  /** All capabilities from all type-2 optional parameters, in wire order. */
  capabilities: Capability[];
}

/** The AS to put in `myAs` for a speaker whose AS is `asn` (RFC 6793 §4.1). */
export function openMyAs(asn: number): number {
  return asn > 0xffff ? AS_TRANS : asn;
}

/** The peer's real AS: the 4-octet AS capability when present, else `myAs` (RFC 6793 §4.1). */
export function peerAsOf(open: OpenMessage): number {
  for (const c of open.capabilities) if (c.type === 'four-octet-as') return c.asn;
  return open.myAs;
}

/** Decodes an OPEN body b[start, end) (after the header). */
export function decodeOpen(b: Buffer, start: number, end: number): Decoded<OpenMessage> {
  const fail = (error: BgpError): Decoded<OpenMessage> => ({ ok: false, error });
  if (end - start < 10) {
    return fail(
      new BgpError(
        ErrorCode.MessageHeader,
        HeaderSubcode.BadMessageLength,
        'OPEN too short',
        u16Data(end - start + 19),
      ),
    );
  }
  const f = OpenFixedLayout.decode(b, start);
  // RFC 4271 §6.2: data is the largest locally supported version.
  if (f.version !== 4) {
    return fail(
      new BgpError(ErrorCode.OpenMessage, OpenSubcode.UnsupportedVersionNumber, `version ${f.version}`, u16Data(4)),
    );
  }
  if (start + 10 + f.optParamLen !== end) {
    return fail(
      new BgpError(
        ErrorCode.OpenMessage,
        OpenSubcode.Unspecific,
        'optional parameters length disagrees with message length',
      ),
    );
  }
  const capabilities: Capability[] = [];
  let p = start + 10;
  while (p < end) {
    if (end - p < 2)
      return fail(new BgpError(ErrorCode.OpenMessage, OpenSubcode.Unspecific, 'truncated optional parameter'));
    const { code, len } = Tlv8HeadLayout.decode(b, p);
    if (p + 2 + len > end) {
      return fail(new BgpError(ErrorCode.OpenMessage, OpenSubcode.Unspecific, 'optional parameter overruns OPEN'));
    }
    if (code !== PARAM_CAPABILITIES) {
      // RFC 4271 §6.2 (RFC 9072 extended parameters, type 255, are not supported: GoBGP rejects them too).
      return fail(
        new BgpError(ErrorCode.OpenMessage, OpenSubcode.UnsupportedOptionalParameter, `optional parameter ${code}`),
      );
    }
    const err = decodeCapabilities(b, p + 2, p + 2 + len, capabilities);
    if (err) return fail(err);
    p += 2 + len;
  }
  const msg: OpenMessage = {
    type: 'open',
    version: f.version,
    myAs: f.myAs,
    holdTimeSec: f.holdTimeSec,
    bgpId: ipv4FromU32(f.bgpId),
    capabilities,
  };
  const err = validateOpen(msg);
  return err ? fail(err) : { ok: true, msg, attrErrors: [] };
}

/**
 * Checks that need no configuration (RFC 4271 §6.2, RFC 6286 §2.2, RFC 6793): hold time 1 or 2
 * -> 2/6, identifier 0 -> 2/3, AS 0 -> 2/2. `checkOpenAgainst` adds the configured expectations.
 */
export function validateOpen(msg: OpenMessage): BgpError | undefined {
  if (msg.holdTimeSec === 1 || msg.holdTimeSec === 2) {
    return new BgpError(ErrorCode.OpenMessage, OpenSubcode.UnacceptableHoldTime, `hold time ${msg.holdTimeSec}`);
  }
  if (msg.bgpId === '0.0.0.0') {
    return new BgpError(ErrorCode.OpenMessage, OpenSubcode.BadBgpIdentifier, 'BGP identifier 0.0.0.0');
  }
  if (msg.myAs === 0 || peerAsOf(msg) === 0) return new BgpError(ErrorCode.OpenMessage, OpenSubcode.BadPeerAs, 'AS 0');
  return undefined;
}

/** What the session expects of the peer's OPEN. */
export interface OpenExpectations {
  /** Configured peer AS; mismatch -> 2/2 (data: the 2-octet My AS field, RFC 4271 §6.2). */
  peerAs?: number;
  /** Our own identifier; an iBGP peer using it -> 2/3 (RFC 6286 §2.2). */
  localBgpId?: string;
  isIbgp?: boolean;
  /** Smallest hold time we accept (other than 0); below it -> 2/6. */
  minHoldTimeSec?: number;
}

export function checkOpenAgainst(msg: OpenMessage, exp: OpenExpectations): BgpError | undefined {
  const base = validateOpen(msg);
  if (base) return base;
  if (exp.peerAs !== undefined && peerAsOf(msg) !== exp.peerAs) {
    return new BgpError(ErrorCode.OpenMessage, OpenSubcode.BadPeerAs, `peer AS ${peerAsOf(msg)}`, u16Data(msg.myAs));
  }
  if (exp.isIbgp === true && exp.localBgpId !== undefined && exp.localBgpId === msg.bgpId) {
    return new BgpError(ErrorCode.OpenMessage, OpenSubcode.BadBgpIdentifier, 'peer uses our BGP identifier');
  }
  if (exp.minHoldTimeSec !== undefined && msg.holdTimeSec !== 0 && msg.holdTimeSec < exp.minHoldTimeSec) {
    return new BgpError(ErrorCode.OpenMessage, OpenSubcode.UnacceptableHoldTime, `hold time ${msg.holdTimeSec}`);
  }
  return undefined;
}

/**
 * Encodes the OPEN body. Capabilities go in one type-2 parameter (as BIRD does), split over
 * several when they exceed 255 bytes (RFC 5492 §4 allows either).
 */
export function encodeOpen(msg: OpenMessage, w: Writer): void {
  const bgpId = ipv4ToU32(msg.bgpId);
  if (bgpId === undefined) throw new EncodeError(`invalid BGP identifier ${msg.bgpId}`);
  if (msg.myAs < 0 || msg.myAs > 0xffff) throw new EncodeError(`myAs ${msg.myAs} does not fit 2 octets (use AS_TRANS)`);
  const fixedAt = w.pos;
  w.layout(OpenFixedLayout, {
    version: msg.version,
    myAs: msg.myAs,
    holdTimeSec: msg.holdTimeSec,
    bgpId,
    optParamLen: 0,
  });
  const paramsStart = w.pos;
  let paramAt = -1;
  for (const c of msg.capabilities) {
    const capStart = w.pos;
    encodeCapability(c, w);
    const capLen = w.pos - capStart;
    if (paramAt < 0 || w.pos - paramAt - 2 > 255) {
      // open a new parameter before this capability
      w.ensure(2);
      w.buf.copyWithin(capStart + 2, capStart, capStart + capLen);
      if (paramAt >= 0) w.patchU8(paramAt + 1, capStart - paramAt - 2);
      paramAt = capStart;
      w.buf[paramAt] = PARAM_CAPABILITIES;
      w.pos += 2;
    }
  }
  if (paramAt >= 0) w.patchU8(paramAt + 1, w.pos - paramAt - 2);
  const optLen = w.pos - paramsStart;
  if (optLen > 255) throw new EncodeError('optional parameters exceed 255 bytes');
  w.patchU8(fixedAt + 9, optLen);
}
