/**
 * Child processes of the plugins (`ip -batch`, `nsenter`, delegated plugins) with a deadline. A
 * wedged node can make any of them block forever, and with them the runtime's ADD; past the
 * deadline the child's whole process group is killed with SIGKILL and the result says so
 * (`timedOut`), so callers report a clear error and roll back.
 */
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** True when the deadline expired and the child's process group was killed. */
  timedOut: boolean;
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
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const p = spawn(cmd as string, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, ...(env ? { env } : {}) });
    let timedOut = false;
    let settled = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(p.pid);
      // The group is dead; do not wait for pipes a stray grandchild might still hold.
      finish(137);
    }, timeoutMs);
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (timedOut) {
        p.stdout.destroy();
        p.stderr.destroy();
      }
      resolve({ code, stdout, stderr, timedOut });
    };
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    p.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    p.on('close', (code) => finish(code ?? 1));
    p.stdin.on('error', () => {
      /* the process may exit before reading everything (failed batch) */
    });
    p.stdin.end(input);
  });
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
