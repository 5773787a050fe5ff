/**
 * The agent's end of petrel-netlink (netlink/main.ts): one long-lived helper process in the node's
 * namespace that writes route changes as rtnetlink requests. Same contract as BatchChannel
 * (kernel-iproute2.ts): run(lines) resolves with the error text of each failed line by index, and
 * rejects every batch in flight with a transient KernelError if the helper dies (the reconciler
 * retries; the next run starts a new helper). watch() also makes it watch the kernel's route
 * notifications: `M` lines (others' changes to routes of ours) and `L` lines (notifications lost)
 * come to the watcher, and the helper's death is a `lost` event.
 *
 * The helper is a Bun executable (`npm run package` makes dist-sea/petrel-netlink); findNetlinkHelper
 * looks for it beside the agent, in ../dist-sea, and on PATH. Without it the agent writes routes
 * through `ip -batch` as before.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/log.js';
import { KernelError } from './kernel.js';
import { parseRequestLine, type RequestLine } from './netlink/codec.js';

export const NETLINK_HELPER = 'petrel-netlink';

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The helper's path: beside `selfPath` (the agent's script), then ../dist-sea, then PATH. */
export function findNetlinkHelper(selfPath: string | undefined, pathEnv = process.env.PATH ?? ''): string | undefined {
  const dirs = selfPath ? [dirname(selfPath), join(dirname(selfPath), '..', 'dist-sea')] : [];
  for (const d of [...dirs, ...pathEnv.split(':').filter(Boolean)]) {
    const p = join(d, NETLINK_HELPER);
    if (executable(p)) return p;
  }
  return undefined;
}

/** What a watcher gets: a change to a route of ours made by someone else, or a loss of events. */
export type NetlinkWatchEvent =
  | { type: 'route'; line: RequestLine }
  /** `died`: the helper is gone (not just notifications dropped): rewatch() starts a new one. */
  | { type: 'lost'; reason: string; died: boolean };

interface Pending {
  errors: Map<number, string>;
  resolve: (errors: Map<number, string>) => void;
  reject: (e: Error) => void;
}

export class NetlinkChannel {
  private proc: ChildProcess | null = null;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private outBuf = '';
  /** True once the helper has answered a batch: it runs on this machine. */
  private answered = false;
  /**
   * True when the helper died before it ever answered (it cannot run here: e.g. SIGILL on a CPU
   * without the instructions the Bun runtime needs, or no netlink socket). The Kernel then falls
   * back to `ip -batch` when allowed (--route-writer auto).
   */
  unusable = false;
  /** The watcher (watch()): the helper is asked to watch routes each time it starts. */
  private watcher: ((e: NetlinkWatchEvent) => void) | undefined;

  /** `argv`: the helper's command line, e.g. nsenter --net=PATH petrel-netlink (kernel-iproute2.ts nsCommand). */
  constructor(
    private readonly argv: readonly [string, readonly string[]],
    private readonly log: Logger,
  ) {}

  pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the helper now (the agent's start), so the first batch does not wait for its start-up. */
  warm(): void {
    this.ensure();
  }

  private ensure(): ChildProcess {
    if (this.proc) return this.proc;
    const [c, a] = this.argv;
    const p = spawn(c, [...a], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    this.outBuf = '';
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (d: string) => this.onStdout(d));
    p.stderr!.setEncoding('utf8');
    p.stderr!.on('data', (d: string) => this.log.warn({ stderr: d.trim() }, 'petrel-netlink'));
    p.stdin!.on('error', () => {});
    if (this.watcher) p.stdin!.write('W\n');
    const gone = (why: string) => {
      if (this.proc !== p) return;
      this.proc = null;
      if (!this.answered) this.unusable = true;
      const q = [...this.pending.values()];
      this.pending.clear();
      for (const b of q) b.reject(new KernelError('add', 'transient', `${NETLINK_HELPER} ${why}`));
      // Whatever changed while no helper watched is unknown: the watcher resyncs (and restarts it).
      this.watcher?.({ type: 'lost', reason: `${NETLINK_HELPER} ${why}`, died: true });
    };
    p.on('exit', (code, sig) => gone(`exited (${sig ?? code})`));
    p.on('error', (e) => gone(`failed: ${e.message}`));
    return p;
  }

  private onStdout(d: string): void {
    this.outBuf += d;
    let start = 0;
    let i = this.outBuf.indexOf('\n');
    while (i >= 0) {
      this.onLine(this.outBuf.slice(start, i));
      start = i + 1;
      i = this.outBuf.indexOf('\n', start);
    }
    this.outBuf = this.outBuf.slice(start);
  }

  private onLine(line: string): void {
    const sp1 = line.indexOf(' ');
    const kind = line.slice(0, sp1);
    if (kind === 'F') {
      this.log.error({ msg: line.slice(2) }, 'petrel-netlink cannot work');
      return;
    }
    if (kind === 'M') {
      let l: RequestLine;
      try {
        l = parseRequestLine(line.slice(2));
      } catch {
        this.log.warn({ line }, 'petrel-netlink: unreadable route notification');
        return;
      }
      this.watcher?.({ type: 'route', line: l });
      return;
    }
    if (kind === 'L') {
      this.watcher?.({ type: 'lost', reason: line.slice(2), died: false });
      return;
    }
    const sp2 = line.indexOf(' ', sp1 + 1);
    const id = Number(line.slice(sp1 + 1, sp2 < 0 ? undefined : sp2));
    const b = this.pending.get(id);
    if (!b) return;
    if (kind === 'D') {
      this.answered = true;
      this.pending.delete(id);
      b.resolve(b.errors);
    } else if (kind === 'E') {
      const sp3 = line.indexOf(' ', sp2 + 1);
      b.errors.set(Number(line.slice(sp2 + 1, sp3)), line.slice(sp3 + 1));
    }
  }

  /**
   * Watches the routes of ours (protocol 80, main table) that others change, through the helper
   * (started now if it is not running, and asked again whenever it is restarted). `onEvent` also
   * gets `lost` when the helper dropped notifications or died (then the caller should resync; the
   * next `run` or `rewatch` starts a new helper).
   */
  watch(onEvent: (e: NetlinkWatchEvent) => void): void {
    const fresh = this.watcher === undefined;
    this.watcher = onEvent;
    if (this.proc && fresh) this.proc.stdin!.write('W\n');
    else this.ensure();
  }

  /** Starts the helper again after it died, so that it watches (no-op while it runs). */
  rewatch(): void {
    if (this.watcher && !this.unusable) this.ensure();
  }

  unwatch(): void {
    this.watcher = undefined;
  }

  /** `lines` are codec.ts request lines; resolves with index → error text. */
  run(lines: readonly string[]): Promise<Map<number, string>> {
    for (const l of lines) if (l.includes('\n')) throw new KernelError('add', 'other', 'newline in a batch line');
    const p = this.ensure();
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { errors: new Map(), resolve, reject });
      p.stdin!.write(lines.length ? `B ${id} ${lines.length}\n${lines.join('\n')}\n` : `B ${id} 0\n`);
    });
  }

  async close(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    await new Promise<void>((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.stdin!.end();
      p.kill('SIGTERM');
    });
  }
}
