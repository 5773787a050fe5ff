/**
 * OPEN capabilities (RFC 5492): multiprotocol (RFC 4760), route refresh (RFC 2918), enhanced route
 * refresh (RFC 7313), 4-octet AS (RFC 6793), graceful restart (RFC 4724 + RFC 8538 N bit),
 * extended message (RFC 8654), ADD-PATH (RFC 7911), FQDN (draft-walton-bgp-hostname-capability).
 * Anything else is kept raw (`type: 'unknown'`) and re-encoded byte for byte.
 */
import { BgpError, EncodeError, ErrorCode, OpenSubcode } from './errors.js';
import { AfiSafiByteLayout, GrHeadLayout, MpCapLayout, Tlv8HeadLayout } from './layouts.js';
import type { Writer } from './writer.js';

export const CapabilityCode = {
  Multiprotocol: 1,
  RouteRefresh: 2,
  ExtendedNextHop: 5,
  ExtendedMessage: 6,
  GracefulRestart: 64,
  FourOctetAs: 65,
  AddPath: 69,
  EnhancedRouteRefresh: 70,
  LongLivedGracefulRestart: 71,
  Fqdn: 73,
  RouteRefreshCisco: 128,
} as const;
export type CapabilityCode = (typeof CapabilityCode)[keyof typeof CapabilityCode];

export interface GracefulRestartFamily {
  afi: number;
  safi: number;
  /** F bit: forwarding state was preserved across the restart. */
  forwardingPreserved: boolean;
}
export interface AddPathFamily {
  afi: number;
  safi: number;
  /** What the *sender of this OPEN* is willing to do (RFC 7911 §4: 1 receive, 2 send, 3 both). */
  mode: 'receive' | 'send' | 'both';
}

export type Capability =
  | { type: 'multiprotocol'; afi: number; safi: number }
  | { type: 'route-refresh' }
  | { type: 'enhanced-route-refresh' }
  | { type: 'extended-message' }
  | { type: 'four-octet-as'; asn: number }
  | {
      type: 'graceful-restart';
      /** R bit. */
      restarting: boolean;
      /** N bit (RFC 8538): NOTIFICATIONs are covered by graceful restart. */
      notification: boolean;
      /** 12-bit restart time, seconds. */
      restartTimeSec: number;
      families: GracefulRestartFamily[];
    }
  | { type: 'add-path'; families: AddPathFamily[] }
  | { type: 'fqdn'; hostname: string; domain: string }
  | { type: 'unknown'; code: number; value: Uint8Array };

const ADD_PATH_MODES = ['receive', 'send', 'both'] as const;

function malformed(what: string): BgpError {
  // RFC 5492 leaves malformed capabilities to the implementation; BIRD and FRR send 2/0.
  return new BgpError(ErrorCode.OpenMessage, OpenSubcode.Unspecific, `malformed capability: ${what}`);
}

/** Decodes the capabilities in b[start, end) (the value of one optional parameter of type 2). */
export function decodeCapabilities(b: Buffer, start: number, end: number, out: Capability[]): BgpError | undefined {
  let p = start;
  while (p < end) {
    if (end - p < 2) return malformed('truncated capability header');
    const { code, len } = Tlv8HeadLayout.decode(b, p);
    const vs = p + 2;
    const ve = vs + len;
    if (ve > end) return malformed(`capability ${code} overruns its parameter`);
    const r = decodeOne(b, code, vs, len);
    if (r instanceof BgpError) return r;
    out.push(r);
    p = ve;
  }
  return undefined;
}

function decodeOne(b: Buffer, code: number, vs: number, len: number): Capability | BgpError {
  switch (code) {
    case CapabilityCode.Multiprotocol: {
      if (len !== 4) return malformed('multiprotocol length');
      const { afi, safi } = MpCapLayout.decode(b, vs);
      return { type: 'multiprotocol', afi, safi };
    }
    case CapabilityCode.RouteRefresh:
      if (len !== 0) return malformed('route-refresh length');
      return { type: 'route-refresh' };
    case CapabilityCode.EnhancedRouteRefresh:
      if (len !== 0) return malformed('enhanced route-refresh length');
      return { type: 'enhanced-route-refresh' };
    case CapabilityCode.ExtendedMessage:
      if (len !== 0) return malformed('extended-message length');
      return { type: 'extended-message' };
    case CapabilityCode.FourOctetAs:
      if (len !== 4) return malformed('4-octet AS length');
      return { type: 'four-octet-as', asn: b.readUInt32BE(vs) };
    case CapabilityCode.GracefulRestart: {
      if (len < 2 || (len - 2) % 4 !== 0) return malformed('graceful-restart length');
      const h = GrHeadLayout.decode(b, vs);
      const families: GracefulRestartFamily[] = [];
      for (let p = vs + 2; p < vs + len; p += 4) {
        const t = AfiSafiByteLayout.decode(b, p);
        families.push({ afi: t.afi, safi: t.safi, forwardingPreserved: (t.value & 0x80) !== 0 });
      }
      return {
        type: 'graceful-restart',
        restarting: h.restarting,
        notification: h.notification,
        restartTimeSec: h.restartTimeSec,
        families,
      };
    }
    case CapabilityCode.AddPath: {
      if (len === 0 || len % 4 !== 0) return malformed('add-path length');
      const families: AddPathFamily[] = [];
      for (let p = vs; p < vs + len; p += 4) {
        const t = AfiSafiByteLayout.decode(b, p);
        const mode = ADD_PATH_MODES[t.value - 1];
        if (mode === undefined) return malformed(`add-path send/receive value ${t.value}`);
        families.push({ afi: t.afi, safi: t.safi, mode });
      }
      return { type: 'add-path', families };
    }
    case CapabilityCode.Fqdn: {
      if (len < 2) return malformed('fqdn length');
      const hl = b[vs] as number;
      if (1 + hl + 1 > len) return malformed('fqdn hostname overruns');
      const dl = b[vs + 1 + hl] as number;
      if (2 + hl + dl !== len) return malformed('fqdn domain length');
      return {
        type: 'fqdn',
        hostname: b.toString('utf8', vs + 1, vs + 1 + hl),
        domain: b.toString('utf8', vs + 2 + hl, vs + 2 + hl + dl),
      };
    }
    default:
      return { type: 'unknown', code, value: new Uint8Array(b.subarray(vs, vs + len)) };
  }
}

/** Encodes one capability TLV (code, length, value). */
export function encodeCapability(c: Capability, w: Writer): void {
  const tlv = (code: number, body: () => void) => {
    w.u8(code);
    const at = w.pos;
    w.u8(0);
    body();
    const len = w.pos - at - 1;
    if (len > 255) throw new EncodeError(`capability ${code} longer than 255 bytes`);
    w.patchU8(at, len);
  };
  switch (c.type) {
    case 'multiprotocol':
      tlv(CapabilityCode.Multiprotocol, () => w.layout(MpCapLayout, { afi: c.afi, reserved: 0, safi: c.safi }));
      return;
    case 'route-refresh':
      tlv(CapabilityCode.RouteRefresh, () => {});
      return;
    case 'enhanced-route-refresh':
      tlv(CapabilityCode.EnhancedRouteRefresh, () => {});
      return;
    case 'extended-message':
      tlv(CapabilityCode.ExtendedMessage, () => {});
      return;
    case 'four-octet-as':
      tlv(CapabilityCode.FourOctetAs, () => w.u32(c.asn));
      return;
    case 'graceful-restart':
      tlv(CapabilityCode.GracefulRestart, () => {
        w.ensure(2);
        // BitStructure.encode reads the word first: start from zero so reserved bits stay 0.
        w.buf.writeUInt16BE(0, w.pos);
        w.layout(GrHeadLayout, {
          restarting: c.restarting,
          notification: c.notification,
          reserved: 0,
          restartTimeSec: c.restartTimeSec & 0xfff,
        });
        for (const f of c.families)
          w.layout(AfiSafiByteLayout, { afi: f.afi, safi: f.safi, value: f.forwardingPreserved ? 0x80 : 0 });
      });
      return;
    case 'add-path':
      tlv(CapabilityCode.AddPath, () => {
        for (const f of c.families)
          w.layout(AfiSafiByteLayout, { afi: f.afi, safi: f.safi, value: ADD_PATH_MODES.indexOf(f.mode) + 1 });
      });
      return;
    case 'fqdn':
      tlv(CapabilityCode.Fqdn, () => {
        const h = Buffer.from(c.hostname, 'utf8');
        const d = Buffer.from(c.domain, 'utf8');
        w.u8(h.length);
        w.bytes(h);
        w.u8(d.length);
        w.bytes(d);
      });
      return;
    case 'unknown':
      tlv(c.code, () => w.bytes(c.value));
      return;
  }
}
