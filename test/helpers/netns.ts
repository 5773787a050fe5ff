/**
 * Network namespace helpers for privileged integration tests: unique names
 * (`petrel-t-<pid>-<n>`), creation with loopback up, a veth between two namespaces, commands inside
 * a namespace (by name, or by path via nsenter), TCP echo servers and clients, and cleanup of
 * everything created (call `deleteAllNetns()` from an after() hook; it also runs at exit).
 * Nothing here touches the root namespace: every link and address lives in namespaces made here.
 */
import { execFileSync } from 'node:child_process';
import {
  type ExecOptions,
  type ExecResult,
  type Netns as LabNetns,
  netns as labNetns,
  run,
  runOk,
} from '../../agent/lab/sh.js';
import { type Daemon, startDaemon, waitFor } from './process.js';

export { type ExecOptions, type ExecResult, run, runOk } from '../../agent/lab/sh.js';

/** The lab's namespace handle (agent/lab/sh.ts) plus a process started inside, stopped by PID. */
export interface Netns extends LabNetns {
  /** Starts a long-running process inside (stop it by PID via the Daemon). */
  spawn(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Daemon;
}

let counter = 0;
const created = new Set<string>();

/** `<prefix>-<pid>-<n>[-tag]`: `petrel-t` for tests, `petrel-b` for benchmarks. */
export function uniqueName(tag = '', prefix = 'petrel-t'): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}${tag ? `-${tag}` : ''}`.slice(0, 40);
}

/** A handle on the namespace NAME (made here or elsewhere). */
export function netnsHandle(name: string): Netns {
  return {
    ...labNetns(name),
    spawn: (cmd, args, env) => startDaemon('ip', ['netns', 'exec', name, cmd, ...args], { env: env ?? process.env }),
    delete: () => deleteNetns(name),
  };
}

/** Creates a namespace with a unique name (see uniqueName) and loopback up. */
export async function createNetns(tag = '', prefix = 'petrel-t'): Promise<Netns> {
  const name = uniqueName(tag, prefix);
  await runOk('ip', ['netns', 'add', name]);
  created.add(name);
  await runOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return netnsHandle(name);
}

export async function deleteNetns(name: string): Promise<void> {
  created.delete(name);
  await run('ip', ['netns', 'del', name]);
}

/** Deletes every namespace this process created and has not deleted yet. */
export async function deleteAllNetns(): Promise<void> {
  for (const n of [...created]) await deleteNetns(n);
}

process.on('exit', () => {
  for (const n of created) {
    try {
      execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
});

export interface VethOptions {
  /** Interface names (≤ 15 chars) in a and b. */
  aName: string;
  bName: string;
  /** Addresses with prefix, e.g. 192.168.50.1/24. */
  aAddr?: string;
  bAddr?: string;
}

/** A veth pair between two namespaces, both ends up, optional addresses. */
export async function vethBetween(a: Netns, b: Netns, o: VethOptions): Promise<void> {
  await a.ip('link', 'add', o.aName, 'type', 'veth', 'peer', 'name', o.bName, 'netns', b.name);
  if (o.aAddr) await a.ip('addr', 'add', o.aAddr, 'dev', o.aName);
  if (o.bAddr) await b.ip('addr', 'add', o.bAddr, 'dev', o.bName);
  await a.ip('link', 'set', o.aName, 'up');
  await b.ip('link', 'set', o.bName, 'up');
}

/** Runs a command inside the netns at `path` (e.g. a runtime's /var/run/netns/cni-…). */
export function execInPath(path: string, cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult> {
  return run('nsenter', [`--net=${path}`, cmd, ...args], opts);
}

const ECHO_SERVER = `
const net = require('net');
const [host, port, tag] = process.argv.slice(1);
const srv = net.createServer((s) => { s.on('error', () => {}); s.end(tag + ' ' + s.remoteAddress + '\\n'); });
srv.listen(Number(port), host, () => process.stdout.write('listening\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * A TCP server inside a namespace (by name, or by path via nsenter) that answers each
 * connection with "<tag> <client address>" and closes. Stop it with `.stop()`.
 */
export async function startEchoServer(
  where: { name: string } | { path: string },
  host: string,
  port: number,
  tag: string,
): Promise<Daemon> {
  const args = ['-e', ECHO_SERVER, host, String(port), tag];
  const d =
    'name' in where
      ? startDaemon('ip', ['netns', 'exec', where.name, process.execPath, ...args])
      : startDaemon('nsenter', [`--net=${where.path}`, process.execPath, ...args]);
  await waitFor(`echo server ${tag}`, () => {
    if (d.exited()) throw new Error(`echo server exited: ${d.output()}`);
    return d.output().includes('listening');
  });
  return d;
}

const CLIENT = `
const net = require('net');
const [host, port, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let out = '';
s.setTimeout(Number(ms), () => { process.stderr.write('timeout'); process.exit(3); });
s.on('data', (d) => { out += d; });
s.on('end', () => { process.stdout.write(out); process.exit(0); });
s.on('error', (e) => { process.stderr.write(e.code || e.message); process.exit(2); });
`;

/** Connects from inside a namespace; resolves with what the server said (rejects on failure). */
export async function tcpRequest(
  from: { name: string } | { path: string },
  host: string,
  port: number,
  timeoutMs = 3000,
): Promise<string> {
  const args = ['-e', CLIENT, host, String(port), String(timeoutMs)];
  const r =
    'name' in from
      ? await run('ip', ['netns', 'exec', from.name, process.execPath, ...args])
      : await run('nsenter', [`--net=${from.path}`, process.execPath, ...args]);
  if (r.code !== 0) throw new Error(`TCP ${host}:${port} from ${'name' in from ? from.name : from.path}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Names of the links in a namespace. */
export async function linkNames(ns: Netns): Promise<string[]> {
  return (await ns.ipJson<{ ifname: string }[]>('link', 'show')).map((l) => l.ifname);
}

/** Quick existence check without spawning from async code paths (sync, for cleanup asserts). */
export function netnsExists(name: string): boolean {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.split(' ')[0] === name);
  } catch {
    return false;
  }
}
