/**
 * CNI errors (SPEC "Error"): every failure the plugins report carries a spec code. main.ts prints
 * `{ cniVersion, code, msg, details }` on stdout and exits 1; any other thrown value becomes 999
 * (libcni's ErrInternal) with its message in `details`.
 */

/** Spec error codes (0–99 reserved by the spec; 100+ are plugin specific). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  PluginNotAvailableLimitedConnectivity: 51,
  /** Petrel: no free address in the usable pools. */
  PoolExhausted: 100,
  /** Petrel: CHECK found the kernel or IPAM different from prevResult. */
  CheckFailed: 101,
  /**
   * Petrel: a child process (`ip -batch`, `nsenter`, a delegated plugin) did not finish within its
   * deadline (netconf `ipTimeoutMs` / `delegateTimeoutMs`); it was killed and ADD rolled back.
   */
  PluginTimeout: 102,
  /** libcni ErrInternal: an error we did not classify. */
  Internal: 999,
} as const;
export type CniCode = (typeof CniCode)[keyof typeof CniCode];

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: CniCode,
    /** Short, actionable: what is wrong. */
    readonly msg: string,
    /** Optional specifics: the offending value, the socket path, the kernel's words. */
    readonly details = '',
    options?: ErrorOptions,
  ) {
    super(details ? `${msg}: ${details}` : msg, options);
  }
}

/** The spec's error object. `cniVersion` is the request's version when it could be read. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

/** Maps anything thrown to the spec error object (unknown errors become 999 with their message). */
export function toErrorJson(err: unknown, cniVersion: string): CniErrorJson {
  if (err instanceof CniError) {
    const out: CniErrorJson = { cniVersion, code: err.code, msg: err.msg };
    if (err.details) out.details = err.details;
    return out;
  }
  const details = err instanceof Error ? err.message : String(err);
  return { cniVersion, code: CniCode.Internal, msg: 'internal error', details };
}
