/** Message header (RFC 4271 §4.1, §6.1) and the per-type length rules. */
import { MAX_MESSAGE_LEN } from './context.js';
import { BgpError, ErrorCode, HeaderSubcode, RouteRefreshSubcode, u16Data } from './errors.js';
import { HEADER_LEN } from './layouts.js';

export { HEADER_LEN };

export const MsgType = { Open: 1, Update: 2, Notification: 3, Keepalive: 4, RouteRefresh: 5 } as const;
export type MsgType = (typeof MsgType)[keyof typeof MsgType];

/**
 * Checks the marker bytes available in b[off, off+n) (n <= 16). RFC 4271 §6.1: the marker must
 * be all ones -> 1/1. The framer calls this on partial headers, so a bad stream fails at once.
 */
export function checkMarker(b: Uint8Array, off: number, n: number): BgpError | undefined {
  for (let i = 0; i < n && i < 16; i++) {
    if (b[off + i] !== 0xff) {
      return new BgpError(ErrorCode.MessageHeader, HeaderSubcode.ConnectionNotSynchronized, 'marker is not all ones');
    }
  }
  return undefined;
}

/** RFC 4271 §6.1: length outside 19..max -> 1/2 with the erroneous length as data. */
export function checkLength(length: number, maxLen: number): BgpError | undefined {
  if (length < HEADER_LEN || length > maxLen) {
    return new BgpError(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageLength,
      `message length ${length}`,
      u16Data(length),
    );
  }
  return undefined;
}

/** Per-type length rules (RFC 4271 §6.1, RFC 8654 §4, RFC 7313 §5); unknown type -> 1/3. */
export function checkTypeLength(type: number, length: number): BgpError | undefined {
  const bad = () =>
    new BgpError(
      ErrorCode.MessageHeader,
      HeaderSubcode.BadMessageLength,
      `length ${length} for type ${type}`,
      u16Data(length),
    );
  switch (type) {
    case MsgType.Open:
      // OPEN stays within 4096 even with extended messages (RFC 8654 §4).
      return length < 29 || length > MAX_MESSAGE_LEN ? bad() : undefined;
    case MsgType.Update:
      return length < 23 ? bad() : undefined;
    case MsgType.Notification:
      return length < 21 ? bad() : undefined;
    case MsgType.Keepalive:
      return length !== 19 ? bad() : undefined;
    case MsgType.RouteRefresh:
      // RFC 7313 §5: 7/1 Invalid Message Length; data is the whole message (filled by the caller).
      return length !== 23
        ? new BgpError(
            ErrorCode.RouteRefresh,
            RouteRefreshSubcode.InvalidMessageLength,
            `ROUTE-REFRESH length ${length}`,
          )
        : undefined;
    default:
      return new BgpError(
        ErrorCode.MessageHeader,
        HeaderSubcode.BadMessageType,
        `message type ${type}`,
        Uint8Array.of(type & 0xff),
      );
  }
}
