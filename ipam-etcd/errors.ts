/**
 * IPAM errors. Each carries a `kind` that callers branch on (never on message text):
 *  - conflict:          a compare-and-swap lost (retried internally; surfaces only as retries-exhausted)
 *  - not-found:         the named pool/handle/block does not exist
 *  - exhausted:         no free address in the usable pools (or the per-node block limit was hit)
 *  - invalid:           bad input: CIDR, overlapping pool, IP outside every pool, bad selector...
 *  - in-use:            the requested address (or pool being removed) is in use
 *  - unavailable:       etcd unreachable or timed out (CNI maps this to code 11 "try again later")
 *  - corrupt:           a value in etcd does not parse or violates the schema (never overwritten)
 *  - retries-exhausted: too many concurrent writers on the same record
 */
export type IpamErrorKind =
  | 'conflict'
  | 'not-found'
  | 'exhausted'
  | 'invalid'
  | 'in-use'
  | 'unavailable'
  | 'corrupt'
  | 'retries-exhausted';

export class IpamError extends Error {
  override readonly name: string = 'IpamError';
  constructor(
    readonly kind: IpamErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A compare-and-swap write lost: the record changed (or appeared/disappeared) since it was read. */
export class ConflictError extends IpamError {
  override readonly name = 'ConflictError';
  constructor(
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super('conflict', `concurrent update of ${key}`, options);
  }
}

/**
 * An assignment asked for a new handle (`fresh`) found the handle already holding addresses: a
 * repeated request for the same pod. Nothing was written; the caller reads what the handle holds.
 */
export class HandleExistsError extends IpamError {
  override readonly name = 'HandleExistsError';
  constructor(readonly handle: string) {
    super('conflict', `handle ${handle} already holds addresses`);
  }
}

export function isIpamError(err: unknown, kind?: IpamErrorKind): err is IpamError {
  return err instanceof IpamError && (kind === undefined || err.kind === kind);
}
