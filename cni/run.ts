/**
 * The process edge shared by bin/petrel and bin/petrel-ipam: read stdin, wire the real shells,
 * dispatch, print the one JSON document on stdout, exit. Logs go to stderr
 * or to `logFile` (cni/log.ts); stdout carries only the result or the error (SPEC, cni.md §0).
 * Start-up is the plugin's per-pod cost: import nothing here that VERSION does not need.
 */
import { readFileSync } from 'node:fs';
import { exit, writeOut } from '../agent/common/output.js';
import { dispatch, type PluginCommands, type PluginDeps } from './dispatch.js';
import { CniCode, toErrorJson } from './errors.js';
import { createPluginLogger } from './log.js';
import { flushTrace, mark } from './trace.js';
import { LATEST_VERSION } from './version.js';

type Shells = Pick<PluginDeps, 'netns' | 'runner' | 'makeIpam'>;

/** The real shells (child_process, node:net: ~8 ms of start-up under Bun), loaded when needed. */
async function realShells(): Promise<Shells> {
  const [{ Iproute2Netns }, { ExecPluginRunner }, { AgentClient }, { systemClock }] = await Promise.all([
    import('./netns.js'),
    import('./delegate.js'),
    import('./agent-client.js'),
    import('../agent/common/clock.js'),
  ]);
  return {
    netns: new Iproute2Netns(),
    runner: new ExecPluginRunner(),
    makeIpam: (conf) => new AgentClient(conf.agentSocket, conf.agentTimeoutMs, systemClock),
  };
}

const unused = (what: string) => {
  throw new Error(`${what} used by CNI_COMMAND=VERSION`);
};
/** VERSION answers from the config alone: nothing else is loaded. */
const versionShells: Shells = {
  netns: new Proxy({} as PluginDeps['netns'], { get: () => unused('netns') }),
  runner: new Proxy({} as PluginDeps['runner'], { get: () => unused('runner') }),
  makeIpam: () => unused('ipam'),
};

function readStdin(): string {
  // CNI SPEC: the whole config arrives on stdin; VERSION may get an empty one.
  return readFileSync(0, 'utf8');
}

export async function runPlugin(cmds: PluginCommands): Promise<number> {
  let stdin: string;
  try {
    stdin = readStdin();
    mark('stdin');
  } catch (err) {
    const out = toErrorJson(err, LATEST_VERSION);
    out.code = CniCode.IoFailure;
    out.msg = 'cannot read the network configuration from stdin';
    writeOut(`${JSON.stringify(out)}\n`);
    return 1;
  }
  const shells = process.env.CNI_COMMAND === 'VERSION' ? versionShells : await realShells();
  mark('shells');
  const out = await dispatch({ env: process.env, stdin }, cmds, {
    ...shells,
    makeLogger: (conf) =>
      createPluginLogger({
        level: conf?.logLevel ?? 'info',
        file: conf?.logFile,
        base: { component: cmds.component },
      }),
  });
  if (out.stdout) writeOut(`${out.stdout}\n`);
  mark('written');
  flushTrace();
  return out.exitCode;
}

/** Runs the plugin and exits (its output is written synchronously: nothing is pending). */
export function main(cmds: PluginCommands): void {
  runPlugin(cmds).then(exit, (err: unknown) => {
    writeOut(`${JSON.stringify(toErrorJson(err, LATEST_VERSION))}\n`);
    exit(1);
  });
}
