/**
 * The logging contract the cores (bgp/, ipam-etcd/, cni/) depend on, and a logger that drops
 * everything. A leaf: no imports, so a core that takes a `Logger` (STYLE §2, §7) does not load
 * pino. The pino root logger of an executable (agent/common/log.ts, created in its main.ts)
 * satisfies this interface structurally and is handed down as a child.
 */

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** One level's method: structured fields first (errors under `err`), then a short constant message. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/** The subset of pino's logger that Petrel code uses. */
export interface Logger {
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger that adds `bindings` to every line (e.g. { component: 'bgp', peer }). */
  child(bindings: Record<string, unknown>): Logger;
}

const drop: LogFn = () => {};

/** A logger that drops everything: for unit tests and library callers that pass none. */
export const silentLogger: Logger = {
  fatal: drop,
  error: drop,
  warn: drop,
  info: drop,
  debug: drop,
  trace: drop,
  child: () => silentLogger,
};
