/**
 * Typed BGP errors (RFC 4271 §6, RFC 7606). Decoders never throw: they return a `Decoded<T>`, whose
 * errors carry the NOTIFICATION code/subcode/data and, for UPDATE problems, the RFC 7606 action.
 */

/** NOTIFICATION error codes (RFC 4271 §4.5, RFC 6608, RFC 7313, RFC 9687). */
export const ErrorCode = {
  MessageHeader: 1,
  OpenMessage: 2,
  UpdateMessage: 3,
  HoldTimerExpired: 4,
  Fsm: 5,
  Cease: 6,
  RouteRefresh: 7,
  SendHoldTimerExpired: 8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Subcodes for code 1 (RFC 4271 §6.1). */
export const HeaderSubcode = { ConnectionNotSynchronized: 1, BadMessageLength: 2, BadMessageType: 3 } as const;
/** Subcodes for code 2 (RFC 4271 §6.2, RFC 5492, RFC 9234). 0 = unspecific (malformed option/capability). */
export const OpenSubcode = {
  Unspecific: 0,
  UnsupportedVersionNumber: 1,
  BadPeerAs: 2,
  BadBgpIdentifier: 3,
  UnsupportedOptionalParameter: 4,
  UnacceptableHoldTime: 6,
  UnsupportedCapability: 7,
  RoleMismatch: 11,
} as const;
/** Subcodes for code 3 (RFC 4271 §6.3). */
export const UpdateSubcode = {
  MalformedAttributeList: 1,
  UnrecognizedWellKnownAttribute: 2,
  MissingWellKnownAttribute: 3,
  AttributeFlagsError: 4,
  AttributeLengthError: 5,
  InvalidOriginAttribute: 6,
  InvalidNextHopAttribute: 8,
  OptionalAttributeError: 9,
  InvalidNetworkField: 10,
  MalformedAsPath: 11,
} as const;
/** Subcodes for code 5 (RFC 6608). */
export const FsmSubcode = { Unspecified: 0, OpenSent: 1, OpenConfirm: 2, Established: 3 } as const;
/** Subcodes for code 6 (RFC 4486, RFC 8538). */
export const CeaseSubcode = {
  MaximumPrefixesReached: 1,
  AdministrativeShutdown: 2,
  PeerDeconfigured: 3,
  AdministrativeReset: 4,
  ConnectionRejected: 5,
  OtherConfigurationChange: 6,
  ConnectionCollisionResolution: 7,
  OutOfResources: 8,
  HardReset: 9,
} as const;
/** Subcodes for code 7 (RFC 7313 §5). */
export const RouteRefreshSubcode = { InvalidMessageLength: 1 } as const;

/**
 * RFC 7606 §2 error-handling approaches, weakest first. `session-reset` sends the NOTIFICATION;
 * `afi-safi-disable` disables the family (the session maps it to a reset until families can be
 * disabled); `treat-as-withdraw` turns the UPDATE's NLRI into withdrawals; `attribute-discard`
 * drops the attribute (already dropped from the decoded message) and carries on.
 */
export type ErrorAction = 'attribute-discard' | 'treat-as-withdraw' | 'afi-safi-disable' | 'session-reset';

const RANK: Record<ErrorAction, number> = {
  'attribute-discard': 1,
  'treat-as-withdraw': 2,
  'afi-safi-disable': 3,
  'session-reset': 4,
};

export const EMPTY: Uint8Array = new Uint8Array(0);

/** A BGP protocol error: the NOTIFICATION triple plus the RFC 7606 action. */
export class BgpError extends Error {
  override readonly name = 'BgpError';
  constructor(
    readonly code: ErrorCode,
    readonly subcode: number,
    message: string,
    readonly data: Uint8Array = EMPTY,
    readonly action: ErrorAction = 'session-reset',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Thrown by the encoders for a message that cannot be put on the wire (programming error, not peer input). */
export class EncodeError extends Error {
  override readonly name = 'EncodeError';
}

/**
 * Result of decoding one message. `ok: false` means the session must be reset with
 * `errorToNotification(error)`. `ok: true` may still carry UPDATE attribute errors whose
 * strongest action (see `strongestError`) the receiver must apply: `treat-as-withdraw` means
 * "withdraw every prefix in this UPDATE" (`treatAsWithdraw` in update.ts does it).
 */
export type Decoded<T> = { ok: true; msg: T; attrErrors: BgpError[] } | { ok: false; error: BgpError };

/** True when action `a` is stronger than `b` (GoBGP `Stronger`). */
export function isStronger(a: ErrorAction, b: ErrorAction): boolean {
  return RANK[a] > RANK[b];
}

/** The error with the strongest action (first one wins ties), or undefined for none. */
export function strongestError(errors: readonly BgpError[]): BgpError | undefined {
  let best: BgpError | undefined;
  for (const e of errors) if (best === undefined || isStronger(e.action, best.action)) best = e;
  return best;
}

/** u16 big-endian as two bytes (data for 1/2 and 2/1). */
export function u16Data(v: number): Uint8Array {
  return Uint8Array.of((v >>> 8) & 0xff, v & 0xff);
}

/** Maps an unexpected exception from Buffer/buffer-layout (RangeError, ERR_OUT_OF_RANGE) to a BgpError. */
export function fromUnexpected(err: unknown, code: ErrorCode, subcode: number): BgpError {
  if (err instanceof BgpError) return err;
  return new BgpError(code, subcode, `malformed message: ${String(err)}`, EMPTY, 'session-reset', { cause: err });
}
