/**
 * CNI_COMMAND -> command, for both plugins (petrel and petrel-ipam). Everything it touches is
 * injected (CniIo in, stdout text and exit code out), so unit tests drive whole invocations with
 * fakes. Order of checks follows the Go skel: CNI_COMMAND, then stdin (6/1/7), then the variables
 * that command requires (4).
 */
import type { IpamClient } from './agent-client.js';
import type { CommandContext } from './commands/context.js';
import { cmdVersion } from './commands/version.js';
import type { PluginRunner } from './delegate.js';
import { readCommand, readEnv } from './env.js';
import { CniError, toErrorJson } from './errors.js';
import type { PluginLogger as Logger } from './log.js';
import { type NetConf, parseNetConf, sniffVersion } from './netconf.js';
import type { NetnsExec } from './netns.js';
import type { CniResult } from './types.js';
import { formatResult, isSupported, LATEST_VERSION } from './version.js';

export interface CniIo {
  env: Readonly<Record<string, string | undefined>>;
  stdin: string;
}

export interface CniOutput {
  /** The result or error JSON (empty for a successful DEL/CHECK/STATUS/GC). */
  stdout: string;
  exitCode: 0 | 1;
}

export interface PluginDeps {
  netns: NetnsExec;
  runner: PluginRunner;
  makeIpam(conf: NetConf): IpamClient;
  /** The root logger for this run (stderr or conf.logFile at conf.logLevel). */
  makeLogger(conf: NetConf | undefined): Logger;
}

export interface PluginCommands {
  component: string;
  ADD(ctx: CommandContext): Promise<CniResult>;
  DEL(ctx: CommandContext): Promise<void>;
  CHECK(ctx: CommandContext): Promise<void>;
  STATUS(ctx: CommandContext): Promise<void>;
  GC(ctx: CommandContext): Promise<void>;
}

export async function dispatch(io: CniIo, cmds: PluginCommands, deps: PluginDeps): Promise<CniOutput> {
  let version: string = LATEST_VERSION;
  let conf: NetConf | undefined;
  let log: Logger | undefined;
  let client: IpamClient | undefined;
  let netns: NetnsExec | undefined;
  try {
    const sniffed = sniffVersion(io.stdin);
    if (sniffed !== undefined) version = sniffed;
    const command = readCommand(io.env);
    if (command === 'VERSION') return { stdout: JSON.stringify(cmdVersion(sniffed)), exitCode: 0 };
    conf = parseNetConf(io.stdin);
    const env = readEnv(io.env, command);
    const a = env.args;
    const bindings: Record<string, string> = { command };
    if (env.containerId) bindings.containerId = env.containerId;
    if (a.podNamespace && a.podName) bindings.pod = `${a.podNamespace}/${a.podName}`;
    if (env.ifName) bindings.ifName = env.ifName;
    log = deps.makeLogger(conf).child(bindings);
    const c = conf;
    netns = deps.netns.withTimeout(c.ipTimeoutMs);
    const ctx: CommandContext = {
      env,
      conf: c,
      stdin: io.stdin,
      // Every child gets its deadline from the plugin's budget (README "Deadlines").
      netns,
      ipam: () => {
        client ??= deps.makeIpam(c);
        return client;
      },
      runner: deps.runner.withTimeout(c.delegateTimeoutMs),
      log,
    };
    log.debug({ netns: env.netns }, 'request');
    if (command === 'ADD') {
      const result = await cmds.ADD(ctx);
      return { stdout: JSON.stringify(formatResult(result, c.cniVersion)), exitCode: 0 };
    }
    await cmds[command](ctx);
    return { stdout: '', exitCode: 0 };
  } catch (err) {
    const out = toErrorJson(err, conf?.cniVersion ?? (isSupported(version) ? version : version || LATEST_VERSION));
    const l = log ?? deps.makeLogger(conf);
    if (err instanceof CniError) l.warn({ code: out.code, cniMsg: out.msg, details: out.details }, 'failed');
    else l.error({ err }, 'internal error');
    return { stdout: JSON.stringify(out), exitCode: 1 };
  } finally {
    netns?.discard?.();
    client?.close();
  }
}
