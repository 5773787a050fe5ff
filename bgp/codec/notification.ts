/**
 * NOTIFICATION (RFC 4271 §4.5) with the shutdown communication of RFC 9003 (Cease 6/2
 * Administrative Shutdown and 6/4 Administrative Reset: data = length u8 + UTF-8 text, <= 255 bytes).
 */
import { type BgpError, CeaseSubcode, EMPTY, EncodeError, ErrorCode, u16Data } from './errors.js';
import { NotificationHeadLayout } from './layouts.js';
import type { Writer } from './writer.js';

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  /**
   * Data after code/subcode. When `communication` is set, `data` holds only what follows the
   * shutdown communication on the wire (normally empty).
   */
  data: Uint8Array;
  /** RFC 9003 shutdown communication (Cease 6/2, 6/4), decoded only when well-formed UTF-8. */
  communication?: string;
}

/** RFC 9003 §2: at most 255 octets of UTF-8. */
export const MAX_SHUTDOWN_COMMUNICATION = 255;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function carriesCommunication(code: number, subcode: number): boolean {
  return (
    code === ErrorCode.Cease &&
    (subcode === CeaseSubcode.AdministrativeShutdown || subcode === CeaseSubcode.AdministrativeReset)
  );
}

/** Decodes a NOTIFICATION body b[start, end) (length >= 2 is checked by the caller). */
export function decodeNotification(b: Buffer, start: number, end: number): NotificationMessage {
  const { code, subcode } = NotificationHeadLayout.decode(b, start);
  const data = new Uint8Array(b.subarray(start + 2, end));
  if (carriesCommunication(code, subcode) && data.length >= 1) {
    const n = data[0] as number;
    if (n <= data.length - 1) {
      try {
        const communication = utf8.decode(data.subarray(1, 1 + n));
        // RFC 9003 §2: a malformed communication is ignored, the NOTIFICATION is still processed.
        return { type: 'notification', code, subcode, data: data.slice(1 + n), communication };
      } catch {
        /* invalid UTF-8: keep raw data */
      }
    }
  }
  return { type: 'notification', code, subcode, data };
}

export function encodeNotification(msg: NotificationMessage, w: Writer): void {
  w.layout(NotificationHeadLayout, { code: msg.code, subcode: msg.subcode });
  if (msg.communication !== undefined) {
    const text = Buffer.from(msg.communication, 'utf8');
    if (text.length > MAX_SHUTDOWN_COMMUNICATION) throw new EncodeError('shutdown communication longer than 255 bytes');
    w.u8(text.length);
    w.bytes(text);
  }
  w.bytes(msg.data);
}

/** A NOTIFICATION from a codec error (data as the RFC requires, already in the error). */
export function errorToNotification(err: BgpError): NotificationMessage {
  return { type: 'notification', code: err.code, subcode: err.subcode, data: err.data };
}

/** Cease with an RFC 9003 communication, cut at 255 bytes on a UTF-8 character boundary. */
export function shutdownNotification(
  text: string,
  subcode: 2 | 4 = CeaseSubcode.AdministrativeShutdown,
): NotificationMessage {
  let bytes = Buffer.from(text, 'utf8');
  if (bytes.length > MAX_SHUTDOWN_COMMUNICATION) {
    let cut = MAX_SHUTDOWN_COMMUNICATION;
    while (cut > 0 && ((bytes[cut] as number) & 0xc0) === 0x80) cut--;
    bytes = bytes.subarray(0, cut);
  }
  return { type: 'notification', code: ErrorCode.Cease, subcode, data: EMPTY, communication: bytes.toString('utf8') };
}

/** Builders for NOTIFICATIONs whose data the RFCs prescribe. */
export const notifications = {
  /** 1/2: data = the erroneous length field (RFC 4271 §6.1). */
  badMessageLength: (len: number): NotificationMessage => ({
    type: 'notification',
    code: 1,
    subcode: 2,
    data: u16Data(len),
  }),
  /** 1/3: data = the erroneous type field. */
  badMessageType: (t: number): NotificationMessage => ({
    type: 'notification',
    code: 1,
    subcode: 3,
    data: Uint8Array.of(t),
  }),
  /** 2/1: data = largest supported version (4). */
  unsupportedVersion: (): NotificationMessage => ({ type: 'notification', code: 2, subcode: 1, data: u16Data(4) }),
  /** 2/7 (RFC 5492 §5): data = the capabilities (code, length, value) we require. */
  unsupportedCapability: (caps: Uint8Array): NotificationMessage => ({
    type: 'notification',
    code: 2,
    subcode: 7,
    data: caps,
  }),
  /** 4/0 hold timer expired. */
  holdTimerExpired: (): NotificationMessage => ({ type: 'notification', code: 4, subcode: 0, data: EMPTY }),
  /** 5/x (RFC 6608): the RFC defines no data; `msgType` optionally records the unexpected message type. */
  fsmError: (subcode: number, msgType?: number): NotificationMessage => ({
    type: 'notification',
    code: 5,
    subcode,
    data: msgType === undefined ? EMPTY : Uint8Array.of(msgType),
  }),
  /** 6/x Cease; 6/1 carries AFI u16, SAFI u8, prefix limit u32 (RFC 4486 §4). */
  cease: (subcode: number, data: Uint8Array = EMPTY): NotificationMessage => ({
    type: 'notification',
    code: 6,
    subcode,
    data,
  }),
  maxPrefixes: (afi: number, safi: number, limit: number): NotificationMessage => {
    const d = Buffer.alloc(7);
    d.writeUInt16BE(afi, 0);
    d.writeUInt8(safi, 2);
    d.writeUInt32BE(limit >>> 0, 3);
    return { type: 'notification', code: 6, subcode: 1, data: new Uint8Array(d) };
  },
  /** 8/0 send hold timer expired (RFC 9687). */
  sendHoldTimerExpired: (): NotificationMessage => ({ type: 'notification', code: 8, subcode: 0, data: EMPTY }),
};
