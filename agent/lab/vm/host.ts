/** Shell edge: running host commands for the harness (never through a shell; argv only). */
import { execFileSync, spawn } from 'node:child_process';
import { VmError, VmErrorCode } from './errors.js';

export interface HostResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args`, resolves with its exit code and output (never rejects on a non-zero exit). */
export function hostRun(cmd: string, args: readonly string[], input?: Buffer | string): Promise<HostResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => out.push(b));
    p.stderr.on('data', (b: Buffer) => err.push(b));
    p.on('error', (e) => reject(new VmError(VmErrorCode.HostCommand, `${cmd}: ${e.message}`, { cause: e })));
    p.on('close', (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

/** Like hostRun, but rejects with a VmError naming the command unless it exits 0. */
export async function hostOk(cmd: string, args: readonly string[], input?: Buffer | string): Promise<string> {
  const r = await hostRun(cmd, args, input);
  if (r.code !== 0) {
    throw new VmError(VmErrorCode.HostCommand, `${cmd} ${args.join(' ')} -> ${r.code}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Synchronous best-effort command for exit-time clean-up (errors ignored). */
export function hostRunSync(cmd: string, args: readonly string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
  } catch {
    /* best effort: already gone */
  }
}
