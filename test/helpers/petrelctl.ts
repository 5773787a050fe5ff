/**
 * Runs the built bin/petrelctl (the bundle operators run) and captures its output.
 * PETREL_PETRELCTL names another build to test instead (e.g. dist-sea/petrelctl, the Bun executable).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const PETRELCTL = process.env.PETREL_PETRELCTL || `${ROOT}bin/petrelctl`;

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

export function petrelctl(endpoint: string, ...args: string[]): Promise<RunResult> {
  return run(PETRELCTL, ['--etcd-endpoints', endpoint, ...args]);
}

/** Node script path of a compiled test helper, e.g. helperScript('ipam-worker'). */
export function helperScript(name: string): string {
  return `${ROOT}dist/test/helpers/${name}.js`;
}

/**
 * The assertion message for a failed `petrelctl lab up|status`: the verdict and its reasons first
 * (a CI log that keeps only the head of a long message still says why), then the whole output.
 */
export function labFailure(r: RunResult): string {
  const at = r.stdout.lastIndexOf('NOT healthy');
  const why = at >= 0 ? r.stdout.slice(at) : `exit ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join('\n')}`;
  return `${why}\n--- whole output ---\n${r.stdout}\n${r.stderr}`;
}
