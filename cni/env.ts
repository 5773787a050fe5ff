/**
 * The CNI_* environment (SPEC "Parameters"). libcni always sets all six variables, with empty
 * strings for those that do not apply, so "set but empty" means absent. Errors are code 4 and name
 * the variable.
 */
import { CniCode, CniError } from './errors.js';
import type { CniArgs, CniCommand, CniEnv } from './types.js';

const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'];
/** SPEC: container ID "must be non-empty" and match this (same rule as network names). */
export const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

type Env = Readonly<Record<string, string | undefined>>;

function bad(name: string, why: string): CniError {
  return new CniError(CniCode.InvalidEnvironment, `invalid environment variable ${name}`, why);
}

/** CNI_COMMAND alone (read first: it decides which other variables are required). */
export function readCommand(env: Env): CniCommand {
  const cmd = env.CNI_COMMAND ?? '';
  if (!cmd) throw new CniError(CniCode.InvalidEnvironment, 'required env variables [CNI_COMMAND] missing');
  if (!(COMMANDS as readonly string[]).includes(cmd)) throw bad('CNI_COMMAND', `unknown CNI_COMMAND: ${cmd}`);
  return cmd as CniCommand;
}

/** SPEC: interface names are at most 15 bytes, no '/', ':' or whitespace, not "." or "..". */
export function validIfName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

/** CONVENTIONS.md CNI_ARGS: `K=V;K=V`, any order; unknown keys fail unless IgnoreUnknown is set. */
export function parseCniArgs(raw: string): CniArgs {
  const out: CniArgs = { ignoreUnknown: false };
  const unknown: string[] = [];
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw bad('CNI_ARGS', `malformed pair "${pair}" (want KEY=VALUE)`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    switch (key) {
      case 'K8S_POD_NAMESPACE':
        out.podNamespace = value;
        break;
      case 'K8S_POD_NAME':
        out.podName = value;
        break;
      case 'K8S_POD_INFRA_CONTAINER_ID':
        out.infraContainerId = value;
        break;
      case 'K8S_POD_UID':
        out.podUid = value;
        break;
      case 'IP':
        out.ip = value;
        break;
      case 'IgnoreUnknown':
        out.ignoreUnknown = value === '1' || value.toLowerCase() === 'true';
        break;
      default:
        unknown.push(key);
    }
  }
  if (unknown.length > 0 && !out.ignoreUnknown) {
    throw bad('CNI_ARGS', `unknown keys [${unknown.join(' ')}] and no IgnoreUnknown=1`);
  }
  return out;
}

/** Reads and validates the environment for `command` (SPEC table of required variables). */
export function readEnv(env: Env, command: CniCommand): CniEnv {
  const get = (k: string) => env[k] ?? '';
  const out: CniEnv = {
    command,
    containerId: get('CNI_CONTAINERID'),
    netns: get('CNI_NETNS'),
    ifName: get('CNI_IFNAME'),
    path: get('CNI_PATH')
      .split(':')
      .filter((p) => p !== ''),
    args: { ignoreUnknown: false },
    rawArgs: get('CNI_ARGS'),
  };
  if (command === 'VERSION' || command === 'STATUS' || command === 'GC') return out;
  const missing: string[] = [];
  if (!out.containerId) missing.push('CNI_CONTAINERID');
  if (!out.ifName) missing.push('CNI_IFNAME');
  // CNI SPEC: CNI_NETNS is optional for DEL only.
  if (!out.netns && command !== 'DEL') missing.push('CNI_NETNS');
  if (missing.length > 0) {
    throw new CniError(CniCode.InvalidEnvironment, `required env variables [${missing.join(' ')}] missing`);
  }
  if (!ID_PATTERN.test(out.containerId))
    throw bad('CNI_CONTAINERID', `"${out.containerId}" is not a valid container ID`);
  if (!validIfName(out.ifName)) throw bad('CNI_IFNAME', `"${out.ifName}" is not a valid interface name`);
  if (out.netns && !out.netns.startsWith('/')) throw bad('CNI_NETNS', `"${out.netns}" is not an absolute path`);
  out.args = parseCniArgs(out.rawArgs);
  return out;
}
