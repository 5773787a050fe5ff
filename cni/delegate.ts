/**
 * Delegated plugins (SPEC "Delegated plugins (IPAM)"): run `<CNI_PATH>/<type>` with the same
 * stdin and environment, CNI_COMMAND set to the operation. A delegate's CNI error is passed on
 * unchanged (its code, msg, details); a delegate we cannot find is an invalid configuration.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { CniCode, CniError } from './errors.js';
import type { CniCommand } from './types.js';

export interface PluginRunner {
  /**
   * Runs plugin `type` found in `path` with `stdin` and `env` (+ CNI_COMMAND = command).
   * Resolves with the parsed stdout (undefined when empty); rejects with CniError.
   */
  exec(type: string, command: CniCommand, stdin: string, env: Record<string, string>, path: string[]): Promise<unknown>;
}

export function findPlugin(type: string, path: string[]): string | undefined {
  if (type.includes('/')) return undefined;
  for (const dir of path) {
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export class ExecPluginRunner implements PluginRunner {
  async exec(
    type: string,
    command: CniCommand,
    stdin: string,
    env: Record<string, string>,
    path: string[],
  ): Promise<unknown> {
    if (path.length === 0) {
      throw new CniError(CniCode.InvalidEnvironment, 'required env variables [CNI_PATH] missing', `to run ${type}`);
    }
    const bin = findPlugin(type, path);
    if (!bin) {
      throw new CniError(
        CniCode.InvalidNetworkConfig,
        `failed to find plugin "${type}" in path`,
        `[${path.join(' ')}]`,
      );
    }
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const p = spawn(bin, [], {
        env: { ...process.env, ...env, CNI_COMMAND: command },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.setEncoding('utf8').on('data', (d: string) => {
        stdout += d;
      });
      p.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
      });
      p.on('error', (err) => reject(new CniError(CniCode.IoFailure, `cannot run ${bin}`, err.message, { cause: err })));
      p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
      p.stdin.on('error', () => {});
      p.stdin.end(stdin);
    });
    let parsed: unknown;
    if (r.stdout.trim() !== '') {
      try {
        parsed = JSON.parse(r.stdout);
      } catch {
        throw new CniError(
          CniCode.DecodingFailure,
          `${type} ${command} printed something that is not JSON`,
          r.stdout.slice(0, 500) || r.stderr.slice(0, 500),
        );
      }
    }
    if (r.code !== 0) {
      const e = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
      if (e && typeof e.code === 'number' && typeof e.msg === 'string') {
        throw new CniError(e.code as CniCode, e.msg, typeof e.details === 'string' ? e.details : '');
      }
      throw new CniError(CniCode.Internal, `${type} ${command} failed (exit ${r.code})`, r.stderr.slice(0, 500));
    }
    return parsed;
  }
}
