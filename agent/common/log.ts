/**
 * The root logger: pino, JSON, to stderr (fd 2, synchronous so nothing is lost at exit) or to a
 * file. Created once per executable in its main.ts; everything else receives a child logger.
 * No transports: they need worker-thread files that bundles do not carry (pino docs/bundling.md).
 */
import pino from 'pino';
import type { Logger, LogLevel } from './logger.js';

export { type Logger, type LogLevel, silentLogger } from './logger.js';

export interface LogOptions {
  level?: LogLevel | undefined;
  /** Append to this file instead of stderr. */
  file?: string | undefined;
  /** Bindings on every line, e.g. { component: 'petrelctl' }. */
  base?: Record<string, string> | undefined;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const dest = opts.file
    ? pino.destination({ dest: opts.file, sync: true, append: true, mkdir: true })
    : pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid, ...(opts.base ?? {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['*.password', '*.key', '*.etcdKey', 'etcd.tls.key', '*.md5Password'], censor: '[redacted]' },
    },
    dest,
  );
}
