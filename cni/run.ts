/**
 * The process edge shared by bin/petrel and bin/petrel-ipam: read stdin, wire the real shells,
 * dispatch, print the one JSON document on stdout, exit. Logs go to stderr (fd 2, synchronous) or
 * to `logFile`; stdout carries only the result or the error (SPEC, cni.md §0).
 */
import { readFileSync } from 'node:fs';
import { systemClock } from '../agent/common/clock.js';
import { createLogger } from '../agent/common/log.js';
import { AgentClient } from './agent-client.js';
import { ExecPluginRunner } from './delegate.js';
import { dispatch, type PluginCommands } from './dispatch.js';
import { CniCode, toErrorJson } from './errors.js';
import { Iproute2Netns } from './netns.js';
import { LATEST_VERSION } from './version.js';

function readStdin(): string {
  // CNI SPEC: the whole config arrives on stdin; VERSION may get an empty one.
  return readFileSync(0, 'utf8');
}

export async function runPlugin(cmds: PluginCommands): Promise<number> {
  let stdin: string;
  try {
    stdin = readStdin();
  } catch (err) {
    const out = toErrorJson(err, LATEST_VERSION);
    out.code = CniCode.IoFailure;
    out.msg = 'cannot read the network configuration from stdin';
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 1;
  }
  const out = await dispatch({ env: process.env, stdin }, cmds, {
    netns: new Iproute2Netns(),
    runner: new ExecPluginRunner(),
    makeIpam: (conf) => new AgentClient(conf.agentSocket, conf.agentTimeoutMs, systemClock),
    makeLogger: (conf) =>
      createLogger({
        level: conf?.logLevel ?? 'info',
        file: conf?.logFile,
        base: { component: cmds.component },
      }),
  });
  if (out.stdout) process.stdout.write(`${out.stdout}\n`);
  return out.exitCode;
}

/** Sets the exit code once stdout has drained (never process.exit() with output pending). */
export function main(cmds: PluginCommands): void {
  runPlugin(cmds).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify(toErrorJson(err, LATEST_VERSION))}\n`);
      process.exitCode = 1;
    },
  );
}
