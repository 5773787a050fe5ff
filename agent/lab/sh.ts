/**
 * The lab's edge to the machine: commands (never rejecting on a non-zero exit), network namespace
 * handles (`ip -n NAME`, `ip netns exec NAME`), and long-running processes as detached process
 * groups whose output goes to a file, so that they outlive the process that started them
 * (`petrelctl lab up` exits; the agents keep running) and can be ended later by PID alone.
 *
 * `ip netns exec NS CMD` execs CMD in place, so a spawned PID is CMD's, and with `detached` (setsid)
 * it leads its own group: ending the group also ends what CMD forked (`ip -batch`, `ip monitor`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command; resolves with its exit code and output (never rejects on a non-zero exit). */
export function run(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = opts.timeoutMs ? setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs) : undefined;
    p.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    p.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    p.on('error', reject);
    p.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(opts.input ?? '');
  });
}

/** Like run() but rejects unless the exit code is 0; resolves with stdout. */
export async function runOk(cmd: string, args: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} -> ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export interface Netns {
  readonly name: string;
  /** /var/run/netns/<name> */
  readonly path: string;
  /** Runs a command inside (ip netns exec). */
  exec(cmd: string, args: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** `ip <args>` inside; rejects on failure; returns stdout. */
  ip(...args: string[]): Promise<string>;
  /** `ip -json <args>` inside, parsed. */
  ipJson<T = unknown>(...args: string[]): Promise<T>;
  /** Writes a sysctl inside, e.g. sysctl('net.ipv4.ip_forward', '1'). */
  sysctl(key: string, value: string): Promise<void>;
  /** Deletes the namespace (no error when it is gone). */
  delete(): Promise<void>;
}

/** A handle on the namespace NAME (which may or may not exist). */
export function netns(name: string): Netns {
  return {
    name,
    path: `/var/run/netns/${name}`,
    exec: (cmd, args, opts) => run('ip', ['netns', 'exec', name, cmd, ...args], opts),
    ip: (...args) => runOk('ip', ['-n', name, ...args]),
    ipJson: async <T>(...args: string[]) =>
      JSON.parse((await runOk('ip', ['-n', name, '-json', ...args])) || '[]') as T,
    sysctl: async (key, value) => {
      await runOk('ip', ['netns', 'exec', name, 'sysctl', '-q', '-w', `${key}=${value}`]);
    },
    delete: async () => {
      await run('ip', ['netns', 'del', name]);
    },
  };
}

/** Creates the namespace NAME with loopback up. */
export async function createNetns(name: string): Promise<Netns> {
  await runOk('ip', ['netns', 'add', name]);
  const ns = netns(name);
  await ns.ip('link', 'set', 'lo', 'up');
  return ns;
}

/** The namespaces that exist now (`ip netns list`). */
export function listNetns(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n !== '');
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------- process groups

/** A detached process group leader whose stdout and stderr go to `outFile`. */
export interface Proc {
  readonly pid: number;
  /** The child, when this process started it (undefined for one re-found by PID). */
  readonly proc: ChildProcess | undefined;
  readonly outFile: string;
  /** What this process has written so far (the tail of outFile from where it started; an earlier run's lines in an appended file are not in it). */
  output(): string;
  exited(): boolean;
}

/** Is PID a live process (not a zombie)? */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) STATE ...: comm may hold spaces and parentheses; the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The NUL-separated command line of PID, joined with spaces ('' when gone). */
export function pidCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** Does the process group led by PID still have a member? */
export function groupAlive(pid: number): boolean {
  return signalGroup(pid, 0);
}

/** The text of `file` from byte `from` on (the last 100 kB of it once it passes 200 kB). */
function readTail(file: string, from = 0): string {
  try {
    const s = readFileSync(file).subarray(from).toString('utf8');
    return s.length > 200_000 ? s.slice(-100_000) : s;
  } catch {
    return '';
  }
}

/**
 * Starts `cmd args` inside namespace NS (or in this namespace when NS is '') as the leader of a new
 * process group, output appended to outFile ('w': outFile truncated first). Unreferenced: this process may exit while it runs.
 */
export function spawnGroup(
  ns: string,
  cmd: string,
  args: string[],
  outFile: string,
  env?: NodeJS.ProcessEnv,
  flags: 'a' | 'w' = 'a',
): Proc {
  const fd = openSync(outFile, flags);
  // What an earlier process appended is not this one's output: a wait for "listening" must not
  // be satisfied by the line a previous server left.
  const start = fstatSync(fd).size;
  const [c, a] = ns ? ['ip', ['netns', 'exec', ns, cmd, ...args]] : [cmd, args];
  let child: ChildProcess;
  try {
    child = spawn(c as string, a as string[], { detached: true, stdio: ['ignore', fd, fd], env: env ?? process.env });
  } finally {
    closeSync(fd);
  }
  let done = false;
  child.on('exit', () => {
    done = true;
  });
  child.on('error', () => {
    done = true;
  });
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = child.pid;
  return { pid, proc: child, outFile, output: () => readTail(outFile, start), exited: () => done || !pidAlive(pid) };
}

/** A handle on a process group leader started earlier (by another `petrelctl lab` run). */
export function procOf(pid: number, outFile: string): Proc {
  return { pid, proc: undefined, outFile, output: () => readTail(outFile), exited: () => !pidAlive(pid) };
}

/**
 * Ends the group led by `p` (a Proc or a PID): `signal` (SIGTERM unless told) to the group, SIGKILL
 * after graceMs, and waits until no live member is left (and, for our own child, its exit event).
 * A PID whose command line does not contain `mustContain` (when given) is not ours any more (reused
 * after a reboot or a long time): it is left alone.
 */
export async function endGroup(
  p: Proc | number,
  opts: { signal?: NodeJS.Signals; graceMs?: number; mustContain?: string } = {},
): Promise<void> {
  const pid = typeof p === 'number' ? p : p.pid;
  const child = typeof p === 'number' ? undefined : p.proc;
  if (!Number.isInteger(pid) || pid <= 0) return;
  if (opts.mustContain && pidAlive(pid) && !pidCmdline(pid).includes(opts.mustContain)) return;
  const live = () => groupAlive(pid) && anyLiveMember(pid);
  signalGroup(pid, opts.signal ?? 'SIGTERM');
  const deadline = performance.now() + (opts.graceMs ?? 5000);
  while (live() && performance.now() < deadline) await delay(50);
  signalGroup(pid, 'SIGKILL');
  const gone = performance.now() + 5000;
  while (live() && performance.now() < gone) await delay(50);
  if (child && child.exitCode === null && child.signalCode === null) {
    await Promise.race([new Promise((r) => child.once('exit', r)), delay(5000)]);
  }
}

/** Is any non-zombie process in the group PGID? (a /proc scan: field 5 of stat is the group) */
function anyLiveMember(pgid: number): boolean {
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return false;
  }
  for (const e of entries) {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] !== 'Z' && Number(rest[2]) === pgid) return true;
    } catch {
      /* gone meanwhile */
    }
  }
  return false;
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes (a throwing check is retried). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastErr });
    await delay(everyMs);
  }
}
