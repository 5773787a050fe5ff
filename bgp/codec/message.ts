/**
 * Whole-message decode and encode: header checks, dispatch by type, and the guarantee that
 * nothing thrown inside (Buffer RangeError, buffer-layout, a bug) escapes `decodeMessage`.
 */
import { type CodecContext, maxMessageLen } from './context.js';
import {
  BgpError,
  type Decoded,
  EncodeError,
  ErrorCode,
  fromUnexpected,
  HeaderSubcode,
  OpenSubcode,
  RouteRefreshSubcode,
  UpdateSubcode,
} from './errors.js';
import { checkLength, checkMarker, checkTypeLength, HEADER_LEN, MsgType } from './header.js';
import type { KeepaliveMessage } from './keepalive.js';
import { decodeNotification, encodeNotification, type NotificationMessage } from './notification.js';
import { decodeOpen, encodeOpen, type OpenMessage } from './open.js';
import { decodeRouteRefresh, encodeRouteRefresh, type RouteRefreshMessage } from './route-refresh.js';
import { decodeUpdate, encodeUpdate, type UpdateMessage } from './update.js';
import { Writer } from './writer.js';

export type BgpMessage = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

const KEEPALIVE_MSG: KeepaliveMessage = { type: 'keepalive' };

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Decodes one whole message (header included), e.g. a frame from `Framer`. Never throws.
 * The result's retained byte fields (unknown attributes, NOTIFICATION data) are copies, so the
 * input buffer may be reused.
 */
export function decodeMessage(frame: Uint8Array, ctx: CodecContext): Decoded<BgpMessage> {
  const b = asBuffer(frame);
  let type = 0;
  try {
    if (b.length < HEADER_LEN) {
      return fail(new BgpError(ErrorCode.MessageHeader, HeaderSubcode.BadMessageLength, `frame of ${b.length} bytes`));
    }
    const marker = checkMarker(b, 0, 16);
    if (marker) return fail(marker);
    const length = b.readUInt16BE(16);
    type = b[18] as number;
    const lenErr =
      checkLength(length, maxMessageLen(ctx)) ?? (length !== b.length ? lengthMismatch(length) : undefined);
    if (lenErr) return fail(lenErr);
    const typeErr = checkTypeLength(type, length);
    if (typeErr) {
      if (typeErr.code === ErrorCode.RouteRefresh) {
        // RFC 7313 §5: the data is the complete ROUTE-REFRESH message.
        return fail(
          new BgpError(typeErr.code, typeErr.subcode, typeErr.message, new Uint8Array(b.subarray(0, length))),
        );
      }
      return fail(typeErr);
    }
    switch (type) {
      case MsgType.Open:
        return decodeOpen(b, HEADER_LEN, length);
      case MsgType.Update:
        return decodeUpdate(b, HEADER_LEN, length, ctx);
      case MsgType.Notification:
        return ok(decodeNotification(b, HEADER_LEN, length));
      case MsgType.Keepalive:
        return ok(KEEPALIVE_MSG);
      default:
        return ok(decodeRouteRefresh(b, HEADER_LEN));
    }
  } catch (err) {
    // STYLE §4: RangeError/ERR_OUT_OF_RANGE never leaves the codec.
    if (type === MsgType.Update)
      return fail(fromUnexpected(err, ErrorCode.UpdateMessage, UpdateSubcode.MalformedAttributeList));
    if (type === MsgType.Open) return fail(fromUnexpected(err, ErrorCode.OpenMessage, OpenSubcode.Unspecific));
    if (type === MsgType.RouteRefresh)
      return fail(fromUnexpected(err, ErrorCode.RouteRefresh, RouteRefreshSubcode.InvalidMessageLength));
    return fail(fromUnexpected(err, ErrorCode.MessageHeader, HeaderSubcode.BadMessageLength));
  }
}

function lengthMismatch(length: number): BgpError {
  return new BgpError(
    ErrorCode.MessageHeader,
    HeaderSubcode.BadMessageLength,
    `length field ${length} disagrees with the frame`,
    Uint8Array.of(length >>> 8, length & 0xff),
  );
}

function ok<T>(msg: T): Decoded<T> {
  return { ok: true, msg, attrErrors: [] };
}
function fail<T>(error: BgpError): Decoded<T> {
  return { ok: false, error };
}

const TYPE_CODE: Record<BgpMessage['type'], number> = {
  open: MsgType.Open,
  update: MsgType.Update,
  notification: MsgType.Notification,
  keepalive: MsgType.Keepalive,
  'route-refresh': MsgType.RouteRefresh,
};

/**
 * Encodes one message (header included). Throws `EncodeError` when the message is invalid or
 * longer than the context allows (4096, or 65535 for UPDATE/NOTIFICATION/ROUTE-REFRESH with
 * extended messages; OPEN and KEEPALIVE always 4096, RFC 8654 §4). Returns a fresh Buffer.
 */
export function encodeMessage(msg: BgpMessage, ctx: CodecContext): Buffer {
  const typeCode = TYPE_CODE[msg.type];
  if (typeCode === undefined) throw new EncodeError(`unknown message type ${String((msg as { type: unknown }).type)}`);
  const limit = msg.type === 'open' || msg.type === 'keepalive' ? 4096 : maxMessageLen(ctx);
  const w = new Writer(undefined, limit);
  w.ensure(HEADER_LEN);
  w.buf.fill(0xff, 0, 16);
  w.pos = HEADER_LEN;
  switch (msg.type) {
    case 'open':
      encodeOpen(msg, w);
      break;
    case 'update':
      encodeUpdate(msg, w, ctx);
      break;
    case 'notification':
      encodeNotification(msg, w);
      break;
    case 'keepalive':
      break;
    case 'route-refresh':
      encodeRouteRefresh(msg, w);
      break;
  }
  w.buf.writeUInt16BE(w.pos, 16);
  w.buf[18] = typeCode;
  return w.copy(0);
}
