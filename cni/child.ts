/**
 * Child processes of the plugins (`ip -batch`, `nsenter`, delegated plugins) with a deadline. A
 * wedged node can make any of them block forever, and with them the runtime's ADD; past the
 * deadline the child's whole process group is killed with SIGKILL and the result says so
 * (`timedOut`), so callers report a clear error and roll back.
 *
 * A child can be started before its input is known (`spawnWithDeadline`, then `run(input)`):
 * ADD starts its `ip -batch` processes while the agent assigns the addresses, so their start-up
 * is not on the critical path. The deadline counts from `run`, the moment the child has work.
 * Under Bun the native spawn is used (runtime.ts), under Node node:child_process.
 */
import { type BunSubprocess, bun } from './runtime.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** True when the deadline expired and the child's process group was killed. */
  timedOut: boolean;
}

/** A started child waiting for its input. */
export interface PendingChild {
  /** Writes `input`, closes stdin, starts the deadline; resolves when the child exits. */
  run(input: string): Promise<RunResult>;
  /** For a child that will not be needed: closes its stdin (an empty `ip -batch` exits 0). */
  cancel(): void;
}

/**
 * Runs argv with `input` on stdin, limited to `timeoutMs`. The child leads its own process group
 * (detached) so that the deadline kills it and anything it started (a plugin script's children
 * would otherwise keep our pipes open, and the call would still hang).
 */
export function runWithDeadline(
  argv: string[],
  input: string,
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<RunResult> {
  return spawnWithDeadline(argv, timeoutMs, env).run(input);
}

/** Starts argv now; its deadline of `timeoutMs` starts when `run` gives it its input. */
export function spawnWithDeadline(argv: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): PendingChild {
  return bun ? spawnBun(argv, timeoutMs, env) : spawnNode(argv, timeoutMs, env);
}

/** The deadline and settling shared by both runtimes. */
function deadline(
  timeoutMs: number,
  pid: () => number | undefined,
  onTimeout: () => void,
  resolve: (r: RunResult) => void,
  out: () => { stdout: string; stderr: string },
) {
  let settled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const finish = (code: number, timedOut: boolean) => {
    if (settled) return;
    settled = true;
    if (timer) clearTimeout(timer);
    if (timedOut) onTimeout();
    resolve({ code, ...out(), timedOut });
  };
  return {
    start() {
      timer = setTimeout(() => {
        killGroup(pid());
        // The group is dead; do not wait for pipes a stray grandchild might still hold.
        finish(137, true);
      }, timeoutMs);
    },
    finish: (code: number) => finish(code, false),
    get settled() {
      return settled;
    },
    stop() {
      settled = true;
      if (timer) clearTimeout(timer);
    },
  };
}

function spawnNode(argv: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): PendingChild {
  const { spawn } = process.getBuiltinModule('node:child_process');
  const [cmd, ...args] = argv;
  const p = spawn(cmd as string, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...(env ? { env } : {}) });
  let stdout = '';
  let stderr = '';
  p.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  p.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  p.stdin.on('error', () => {
    /* the process may exit before reading everything (failed batch) */
  });
  let spawnError: Error | undefined;
  let exitCode: number | undefined;
  let onError: ((e: Error) => void) | undefined;
  let onClose: ((code: number) => void) | undefined;
  p.on('error', (err) => {
    spawnError ??= err;
    onError?.(err);
  });
  p.on('close', (code) => {
    exitCode = code ?? 1;
    onClose?.(exitCode);
  });
  return {
    run(input) {
      return new Promise((resolve, reject) => {
        const d = deadline(
          timeoutMs,
          () => p.pid,
          () => {
            p.stdout.destroy();
            p.stderr.destroy();
          },
          resolve,
          () => ({ stdout, stderr }),
        );
        if (spawnError) {
          reject(spawnError);
          return;
        }
        onError = (err) => {
          if (d.settled) return;
          d.stop();
          reject(err);
        };
        onClose = (code) => d.finish(code);
        d.start();
        if (exitCode !== undefined) d.finish(exitCode);
        else p.stdin.end(input);
      });
    },
    cancel() {
      p.stdin.end();
    },
  };
}

function spawnBun(argv: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): PendingChild {
  let p: BunSubprocess;
  try {
    p = (bun as NonNullable<typeof bun>).spawn({
      cmd: argv,
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      detached: true,
      ...(env ? { env } : {}),
    });
  } catch (err) {
    // Bun reports a missing or non-executable file synchronously (ENOENT, EACCES).
    const e = err as Error;
    return {
      run: () => Promise.reject(e),
      cancel: () => undefined,
    };
  }
  let stdout = '';
  let stderr = '';
  const read = async (s: ReadableStream<Uint8Array>, add: (t: string) => void) => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of s as unknown as AsyncIterable<Uint8Array>) add(dec.decode(chunk, { stream: true }));
      add(dec.decode());
    } catch {
      /* the stream was cancelled after a timeout */
    }
  };
  const outDone = read(p.stdout, (t) => {
    stdout += t;
  });
  const errDone = read(p.stderr, (t) => {
    stderr += t;
  });
  const exited = Promise.all([p.exited, outDone, errDone]).then(([code]) => code);
  const closeStdin = () => {
    try {
      Promise.resolve(p.stdin.end()).catch(() => undefined);
    } catch {
      /* the child is gone (EPIPE): its exit status says what happened */
    }
  };
  return {
    run(input) {
      return new Promise((resolve) => {
        const d = deadline(
          timeoutMs,
          () => p.pid,
          () => {
            p.stdout.cancel().catch(() => undefined);
            p.stderr.cancel().catch(() => undefined);
          },
          resolve,
          () => ({ stdout, stderr }),
        );
        d.start();
        exited.then(d.finish, () => d.finish(1));
        try {
          p.stdin.write(input);
        } catch {
          /* the process exited before reading everything (failed batch) */
        }
        closeStdin();
      });
    },
    cancel: closeStdin,
  };
}

/** SIGKILL to the process group led by `pid` (falls back to the process alone). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
