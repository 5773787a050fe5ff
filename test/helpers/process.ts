/** Start and stop child processes by PID, and wait for conditions, for integration tests. */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';

export interface Daemon {
  readonly pid: number;
  readonly proc: ChildProcess;
  /** Output collected so far (stdout + stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  exited(): boolean;
}

const live = new Set<Daemon>();

export function startDaemon(cmd: string, args: string[], opts: SpawnOptions = {}): Daemon {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  let done = false;
  const exit = new Promise<void>((resolve) => {
    proc.on('exit', () => {
      done = true;
      resolve();
    });
    proc.on('error', (err) => {
      out += `\nspawn error: ${String(err)}`;
      done = true;
      resolve();
    });
  });
  if (proc.pid === undefined) throw new Error(`could not start ${cmd}`);
  const d: Daemon = {
    pid: proc.pid,
    proc,
    output: () => out,
    exited: () => done,
    async stop(graceMs = 5000) {
      live.delete(d);
      if (done) return;
      proc.kill('SIGTERM');
      const t = delay(graceMs).then(() => {
        if (!done) proc.kill('SIGKILL');
      });
      await Promise.race([exit, t]);
      await exit;
    },
  };
  live.add(d);
  return d;
}

/** Kill whatever a crashed test left running (called from process exit hooks). */
export function killAllDaemons(): void {
  for (const d of live) {
    try {
      d.proc.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}
process.on('exit', killAllDaemons);

export { waitFor } from '../../agent/lab/sh.js';
