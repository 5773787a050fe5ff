/**
 * The CNI plugins' logger: pino's JSON line format ({"level":30,"time":"…","pid":…,
 * "component":"cni",…,"msg":"…"}, same level numbers, `err` serialised as type/message/stack,
 * secrets redacted) without pino. A plugin process lives ~10 ms and writes a line or two;
 * loading pino (150 KB of modules) cost more start-up than the whole ADD's own work. petrelctl
 * logs through it too, for the same reason.
 * Lines go to stderr through the shared output module (drained before exit) or are appended
 * synchronously to `file`.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LogLevel } from '../agent/common/logger.js';
import { writeErr } from '../agent/common/output.js';

type LogFn = {
  (obj: object, msg?: string): void;
  (msg: string): void;
};

/** What the plugin code logs through; pino's Logger fits it too (tests may pass one). */
export interface PluginLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: Record<string, unknown>): PluginLogger;
}

/** createPluginLogger's loggers have every level: they are also agent/common/logger.ts's Logger (petrelctl uses them). */
export interface LightLogger extends PluginLogger {
  fatal: LogFn;
  trace: LogFn;
  child(bindings: Record<string, unknown>): LightLogger;
}

export const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;

const SECRET_KEYS = new Set(['password', 'key', 'etcdKey', 'md5Password']);

export interface PluginLogOptions {
  level?: LogLevel | undefined;
  file?: string | undefined;
  base?: Record<string, unknown> | undefined;
}

function serialiseErr(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const out: Record<string, unknown> = { type: e.name, message: e.message, stack: e.stack };
  for (const [k, v] of Object.entries(e)) if (!(k in out)) out[k] = v;
  if (e.cause !== undefined) out.cause = serialiseErr(e.cause);
  return out;
}

/** One level deep, like pino's `*.password` paths: `{ conf: { password } }` -> '[redacted]'. */
function redact(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  const secrets = Object.keys(v).filter((k) => SECRET_KEYS.has(k));
  if (secrets.length === 0) return v;
  const copy: Record<string, unknown> = { ...(v as Record<string, unknown>) };
  for (const k of secrets) copy[k] = '[redacted]';
  return copy;
}

function stringify(line: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(line, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v !== null && typeof v === 'object') {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return v;
  });
}

export function createPluginLogger(opts: PluginLogOptions = {}): LightLogger {
  const min = LEVELS[opts.level ?? 'info'];
  const sink = opts.file
    ? (() => {
        const file = opts.file;
        let made = false;
        return (text: string) => {
          if (!made) {
            mkdirSync(dirname(file), { recursive: true });
            made = true;
          }
          appendFileSync(file, text);
        };
      })()
    : writeErr;
  const make = (bindings: Record<string, unknown>): LightLogger => {
    const at =
      (level: number): LogFn =>
      (a: object | string, msg?: string) => {
        if (level < min) return;
        const line: Record<string, unknown> = { level, time: new Date().toISOString(), pid: process.pid, ...bindings };
        if (typeof a === 'string') line.msg = a;
        else {
          for (const [k, v] of Object.entries(a)) line[k] = k === 'err' ? serialiseErr(v) : redact(v);
          if (msg !== undefined) line.msg = msg;
        }
        sink(`${stringify(line)}\n`);
      };
    return {
      fatal: at(LEVELS.fatal),
      trace: at(LEVELS.trace),
      debug: at(LEVELS.debug),
      info: at(LEVELS.info),
      warn: at(LEVELS.warn),
      error: at(LEVELS.error),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({ ...(opts.base ?? {}) });
}
