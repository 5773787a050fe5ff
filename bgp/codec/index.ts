/**
 * Petrel BGP wire codec: the import surface for the FSM, RIB and speaker.
 *
 * Pure: no sockets, timers or logging. Typical session use:
 *
 *   const framer = new Framer();                       // 4096-byte limit until negotiated
 *   let ctx = DEFAULT_CONTEXT;
 *   socket.on('data', (chunk) => {
 *     const { frames, error } = framer.push(chunk);
 *     for (const f of frames) {
 *       const r = decodeMessage(f, ctx);
 *       if (!r.ok) { send(encodeMessage(errorToNotification(r.error), ctx)); close(); return; }
 *       const worst = strongestError(r.attrErrors); // UPDATE only: RFC 7606 action to apply
 *       if (r.msg.type === 'update' && worst?.action === 'treat-as-withdraw') handle(treatAsWithdraw(r.msg));
 *       ...
 *     }
 *     if (error) { send(encodeMessage(errorToNotification(error), ctx)); close(); }
 *   });
 *   // after the OPEN exchange:
 *   ctx = negotiate(sentOpen, receivedOpen);
 *   framer.maxMessageLen = maxMessageLen(ctx);
 *
 * Representation (plain data, cheap on the hot path):
 * - Messages are `{ type: 'open' | 'update' | 'notification' | 'keepalive' | 'route-refresh', ... }`.
 * - Prefixes are `{ prefix: '10.244.1.0', len: 26 }` (plus `pathId` with ADD-PATH); address text is
 *   canonical (dotted quad / RFC 5952) with host bits cleared. `prefixToString` gives '10.244.1.0/26'.
 * - IPv4 unicast uses the classic `withdrawn` / `nlri` / `attrs.nextHop` fields; IPv6 uses
 *   `attrs.mpReach` / `attrs.mpUnreach` (with `linkLocalNextHop` for 32-byte next hops).
 * - AS_PATH holds ASNs exactly as on the wire: on a 2-octet session (ctx.as4 false) 4-octet ASNs
 *   appear as AS_TRANS and the real path is in `as4Path`; `mergeAs4Path` rebuilds it. Encoding on
 *   a 2-octet session does the reverse automatically (AS_TRANS + AS4_PATH/AS4_AGGREGATOR).
 * - Unknown optional transitive attributes are kept in `attrs.unknown` with the Partial bit set and
 *   re-encoded verbatim; unknown optional non-transitive ones are dropped on decode.
 *
 * Errors: `decodeMessage` never throws. `ok: false` = session reset with `errorToNotification`.
 * `encodeMessage` throws `EncodeError` for messages that are invalid or too long (use `packUpdates`).
 */
export {
  type Aggregator,
  type AsPathSegment,
  type AsPathSegmentType,
  AttrFlag,
  AttrType,
  community,
  formatCommunity,
  type LargeCommunity,
  type MpReach,
  type MpUnreach,
  mergeAs4Path,
  type Origin,
  type PathAttributes,
  type UnknownAttribute,
  WellKnownCommunity,
} from './attributes/index.js';
export {
  type AddPathFamily,
  type Capability,
  CapabilityCode,
  type GracefulRestartFamily,
} from './capabilities.js';
export {
  type AddPathMode,
  type CodecContext,
  DEFAULT_CONTEXT,
  MAX_EXTENDED_MESSAGE_LEN,
  MAX_MESSAGE_LEN,
  makeContext,
  maxMessageLen,
  mirrorContext,
  negotiate,
} from './context.js';
export {
  BgpError,
  CeaseSubcode,
  type Decoded,
  EncodeError,
  type ErrorAction,
  ErrorCode,
  FsmSubcode,
  HeaderSubcode,
  isStronger,
  OpenSubcode,
  RouteRefreshSubcode,
  strongestError,
  UpdateSubcode,
} from './errors.js';
export { Framer, type FramerResult } from './framer.js';
export { HEADER_LEN, MsgType } from './header.js';
export { KEEPALIVE, type KeepaliveMessage } from './keepalive.js';
export { type BgpMessage, decodeMessage, encodeMessage } from './message.js';
export {
  errorToNotification,
  MAX_SHUTDOWN_COMMUNICATION,
  type NotificationMessage,
  notifications,
  shutdownNotification,
} from './notification.js';
export {
  AS_TRANS,
  checkOpenAgainst,
  type OpenExpectations,
  type OpenMessage,
  openMyAs,
  peerAsOf,
  validateOpen,
} from './open.js';
export { packUpdates } from './pack.js';
export { type RouteRefreshMessage, RouteRefreshSubtype } from './route-refresh.js';
export { AFI, type FamilyName, familyName, type Prefix, prefixToString, SAFI } from './types.js';
export { endOfRib, isEndOfRib, treatAsWithdraw, type UpdateMessage } from './update.js';
