/**
 * Delegated plugins (SPEC "Delegated plugins (IPAM)"): run `<CNI_PATH>/<type>` with the same
 * stdin and environment, CNI_COMMAND set to the operation. A delegate's CNI error is passed on
 * unchanged (its code, msg, details); a delegate we cannot find is an invalid configuration.
 *
 * Each run has a deadline (netconf `delegateTimeoutMs`, default 30 s): a delegate that hangs (a
 * host-local store on a stuck disk, a DHCP daemon that never answers) is killed with its process
 * group and the call fails with code 102 (PluginTimeout), so ADD rolls back instead of hanging.
 */
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { runWithDeadline } from './child.js';
import { CniCode, CniError } from './errors.js';
import { DEFAULT_DELEGATE_TIMEOUT_MS } from './netconf.js';
import type { CniCommand } from './types.js';

export { DEFAULT_DELEGATE_TIMEOUT_MS };

export interface PluginRunner {
  /** The same runner with each run limited to `ms` (then killed: CniError 102). */
  withTimeout(ms: number): PluginRunner;
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
  constructor(
    /** Deadline of each run, ms. */
    readonly timeoutMs: number = DEFAULT_DELEGATE_TIMEOUT_MS,
  ) {}

  withTimeout(ms: number): ExecPluginRunner {
    return new ExecPluginRunner(ms);
  }

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
    const r = await runWithDeadline([bin], stdin, this.timeoutMs, {
      ...process.env,
      ...env,
      CNI_COMMAND: command,
    }).catch((err: Error) => {
      throw new CniError(CniCode.IoFailure, `cannot run ${bin}`, err.message, { cause: err });
    });
    if (r.timedOut) {
      throw new CniError(
        CniCode.PluginTimeout,
        `${type} ${command} did not finish within ${this.timeoutMs} ms (killed)`,
        r.stderr.slice(0, 500),
      );
    }
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
