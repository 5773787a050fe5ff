/**
 * The real Kernel, through iproute2 (shell: child processes, no netlink binding needed).
 *
 * - Changes go through long-lived `ip -force -batch -` and `bridge -force -batch -` children fed
 *   on stdin: no process start per route. `-force` keeps going after a failed line and reports
 *   each failure on stderr as the kernel's words followed by `Command failed -:<line>`, with the
 *   line number counted over the whole input stream. After each batch we send a sentinel line
 *   that always fails (`link show dev a/b`: no interface name contains '/'); when its
 *   `Command failed` arrives, every earlier line has been executed and every error line of the
 *   batch has been seen (stderr is unbuffered and in order). So each change gets its own result.
 * - Reads: `ip -json route show proto 80` (+ `-6`), `ip -json neigh show nud permanent`,
 *   `bridge -json fdb show`: one short process per listing (listings are rare).
 * - Drift: with petrel-netlink writing routes, it also watches them (kernel-netlink.ts watch():
 *   only others' changes to routes of ours reach us; a dead helper is a `lost` event and a new one
 *   watches). Otherwise a long-lived `ip monitor route`; each line is parsed into a route event
 *   (ours = `proto 80`). If the monitor exits it is restarted and a `lost` event asks for a full resync.
 * - Namespaces: with `netnsPath` every command runs as `nsenter --net=PATH <cmd>` (nsenter execs
 *   the tool, so the PID we hold is the tool's); without, in the agent's own namespace.
 * - Errors are classified once here (classifyError) into KernelError kinds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { type Clock, systemClock, type TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { toolPath } from '../common/tool-path.js';
import {
  type Change,
  type ChangeResult,
  type Kernel,
  KernelError,
  type KernelErrorKind,
  type KernelEvent,
  type KernelOp,
} from './kernel.js';
import { NetlinkChannel, type NetlinkWatchEvent } from './kernel-netlink.js';
import { formatRequestLine } from './netlink/codec.js';
import { canonicalIp, canonicalPrefix } from './plan.js';
import { Devices, type Family, type FdbSpec, type NeighSpec, PETREL_ROUTE_PROTO, type RouteSpec } from './types.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `cmd args` inside the namespace at `netnsPath` (or here). */
export function nsCommand(netnsPath: string | undefined, cmd: string, args: readonly string[]): [string, string[]] {
  const tool = toolPath(cmd);
  return netnsPath ? [toolPath('nsenter'), [`--net=${netnsPath}`, tool, ...args]] : [tool, [...args]];
}

/** Runs a command to completion in the namespace; never rejects on a non-zero exit. */
export function execIn(
  netnsPath: string | undefined,
  cmd: string,
  args: readonly string[],
  input?: string,
): Promise<ExecResult> {
  const [c, a] = nsCommand(netnsPath, cmd, args);
  return new Promise((resolve, reject) => {
    const p = spawn(c, a, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) =>
      resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

/** The kernel's words → a KernelError kind (errno text from RTNETLINK/iproute2). */
export function classifyError(msg: string): KernelErrorKind {
  if (/No such process|No such file or directory|not found|does not exist in/i.test(msg)) return 'not-found';
  if (/File exists/i.test(msg)) return 'exists';
  if (/Cannot find device|Network is down|Nexthop has invalid gateway|Network is unreachable|No such device/i.test(msg))
    return 'iface-down';
  if (
    /No buffer space|Resource temporarily unavailable|Device or resource busy|Interrupted|Cannot allocate memory/i.test(
      msg,
    )
  )
    return 'transient';
  return 'other';
}

const SAFE_TOKEN = /^[A-Za-z0-9_.:/-]+$/;

function tok(s: string, what: string): string {
  if (!SAFE_TOKEN.test(s)) throw new KernelError('add', 'other', `refusing ${what} ${JSON.stringify(s)}`);
  return s;
}

/** The batch line for a change (`ip` or `bridge` syntax). Exported for tests. */
export function renderChange(c: Change): { tool: 'ip' | 'bridge'; line: string } {
  const o = c.obj;
  if (o.type === 'route') {
    const r = o.route;
    const verb = c.op === 'delete' ? 'del' : c.op;
    const parts = ['route', verb];
    if (r.type === 'blackhole') parts.push('blackhole');
    parts.push(tok(r.dst, 'destination'));
    if (c.op !== 'delete' && r.type === 'unicast') {
      if (r.gateway) parts.push('via', tok(r.gateway, 'gateway'));
      if (r.dev) parts.push('dev', tok(r.dev, 'device'));
      if (r.onlink) parts.push('onlink');
    }
    parts.push('proto', String(PETREL_ROUTE_PROTO));
    return { tool: 'ip', line: parts.join(' ') };
  }
  if (o.type === 'neigh') {
    const n = o.neigh;
    const line =
      c.op === 'delete'
        ? `neigh del ${tok(n.ip, 'address')} dev ${tok(n.dev, 'device')}`
        : `neigh replace ${tok(n.ip, 'address')} lladdr ${tok(n.mac, 'MAC')} dev ${tok(n.dev, 'device')} nud permanent`;
    return { tool: 'ip', line };
  }
  const f = o.fdb;
  const verb = c.op === 'delete' ? 'del' : 'replace';
  return {
    tool: 'bridge',
    line: `fdb ${verb} ${tok(f.mac, 'MAC')} dev ${tok(f.dev, 'device')} dst ${tok(f.dst, 'address')} self permanent`,
  };
}

/** A route change as a petrel-netlink request line (netlink/codec.ts), tokens checked as for `ip`. */
export function renderRouteRequest(op: Change['op'], r: RouteSpec): string {
  const del = op === 'delete';
  return formatRequestLine({
    op,
    family: r.family,
    type: r.type,
    dst: tok(r.dst, 'destination'),
    ...(!del && r.type === 'unicast' && r.gateway ? { gateway: tok(r.gateway, 'gateway') } : {}),
    ...(!del && r.type === 'unicast' && r.dev ? { dev: tok(r.dev, 'device') } : {}),
    onlink: !del && r.type === 'unicast' && r.onlink === true,
  });
}

interface PendingBatch {
  first: number;
  sentinel: number;
  errors: Map<number, string>;
  resolve: (errors: Map<number, string>) => void;
  reject: (e: Error) => void;
}

/**
 * One long-lived `<tool> -force -batch -` child. run(lines) resolves with the error text of each
 * failed line (by index in `lines`).
 */
export class BatchChannel {
  private proc: ChildProcess | null = null;
  private nextLine = 1;
  private queue: PendingBatch[] = [];
  private errBuf = '';
  private msgLines: string[] = [];
  private readonly sentinelCmd: string;

  constructor(
    private readonly tool: 'ip' | 'bridge',
    private readonly netnsPath: string | undefined,
    private readonly log: Logger,
  ) {
    this.sentinelCmd = tool === 'ip' ? 'link show dev a/b' : 'fdb show dev a/b';
  }

  pid(): number | undefined {
    return this.proc?.pid;
  }

  private ensure(): ChildProcess {
    if (this.proc) return this.proc;
    const [c, a] = nsCommand(this.netnsPath, this.tool, ['-force', '-batch', '-']);
    const p = spawn(c, a, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.proc = p;
    this.nextLine = 1;
    this.errBuf = '';
    this.msgLines = [];
    p.stderr!.setEncoding('utf8');
    p.stderr!.on('data', (d: string) => this.onStderr(d));
    p.stdin!.on('error', () => {});
    const gone = (why: string) => {
      if (this.proc !== p) return;
      this.proc = null;
      const q = this.queue;
      this.queue = [];
      for (const b of q) b.reject(new KernelError('add', 'transient', `${this.tool} -batch ${why}`));
    };
    p.on('exit', (code, sig) => gone(`exited (${sig ?? code})`));
    p.on('error', (e) => gone(`failed: ${e.message}`));
    return p;
  }

  private onStderr(d: string): void {
    this.errBuf += d;
    let i = this.errBuf.indexOf('\n');
    while (i >= 0) {
      const line = this.errBuf.slice(0, i);
      this.errBuf = this.errBuf.slice(i + 1);
      this.onLine(line);
      i = this.errBuf.indexOf('\n');
    }
  }

  private onLine(line: string): void {
    const m = /^Command failed -:(\d+)$/.exec(line);
    if (!m) {
      if (line.trim()) this.msgLines.push(line.trim());
      return;
    }
    const n = Number(m[1]);
    const msg = this.msgLines.join('; ') || 'failed';
    this.msgLines = [];
    const head = this.queue[0];
    if (!head) return;
    if (n === head.sentinel) {
      this.queue.shift();
      head.resolve(head.errors);
    } else if (n >= head.first && n < head.sentinel) {
      head.errors.set(n - head.first, msg);
    } else {
      this.log.warn({ line: n, msg }, 'batch error for an unknown line');
    }
  }

  run(lines: readonly string[]): Promise<Map<number, string>> {
    for (const l of lines) if (l.includes('\n')) throw new KernelError('add', 'other', 'newline in a batch line');
    const p = this.ensure();
    return new Promise((resolve, reject) => {
      const first = this.nextLine;
      const sentinel = first + lines.length;
      this.nextLine = sentinel + 1;
      this.queue.push({ first, sentinel, errors: new Map(), resolve, reject });
      const text = lines.length ? `${lines.join('\n')}\n${this.sentinelCmd}\n` : `${this.sentinelCmd}\n`;
      p.stdin!.write(text);
    });
  }

  async close(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.stdin!.end();
      p.kill('SIGTERM');
    });
  }
}

interface JsonRoute {
  dst?: string;
  type?: string;
  gateway?: string;
  dev?: string;
  flags?: string[];
}

/** One route of `ip -json route show` → RouteSpec (canonical), or null. */
export function routeFromJson(family: Family, j: JsonRoute): RouteSpec | null {
  const raw = !j.dst || j.dst === 'default' ? (family === 4 ? '0.0.0.0/0' : '::/0') : j.dst;
  const dst = canonicalPrefix(raw.includes('/') ? raw : `${raw}/${family === 4 ? 32 : 128}`);
  if (!dst) return null;
  const type = j.type === 'blackhole' ? 'blackhole' : 'unicast';
  const r: RouteSpec = { family, dst, type };
  if (type === 'unicast') {
    if (j.gateway) r.gateway = canonicalIp(j.gateway) ?? j.gateway;
    if (j.dev) r.dev = j.dev;
    if (j.flags?.includes('onlink')) r.onlink = true;
  }
  return r;
}

const ROUTE_TYPES = new Set([
  'unicast',
  'blackhole',
  'unreachable',
  'prohibit',
  'local',
  'broadcast',
  'throw',
  'nat',
  'anycast',
  'multicast',
]);
const VALUED = new Set([
  'via',
  'dev',
  'proto',
  'metric',
  'table',
  'scope',
  'src',
  'pref',
  'mtu',
  'advmss',
  'expires',
  'hoplimit',
  'realm',
  'realms',
  'nhid',
  'tos',
  'dsfield',
  'from',
  'rtt',
  'rttvar',
  'window',
  'cwnd',
  'initcwnd',
  'initrwnd',
  'quickack',
  'congctl',
  'features',
  'ssthresh',
  'reordering',
  'fastopen_no_cookie',
  'ttl-propagate',
  'encap',
  'id',
]);

/** The route monitor's receive buffer (bytes; `ip -rcvbuf`: the kernel caps it at net.core.rmem_max). */
const MONITOR_RCVBUF = 64 << 20;
/** After a monitor overflow, a full resync this much later (one for a burst of overflows). */
const OVERFLOW_RESYNC_MS = 1000;

/** Route changes per petrel-netlink batch. */
const NETLINK_CHUNK = 2048;

function chunked(lines: string[], idx: number[]): [string[], number[]][] {
  if (lines.length <= NETLINK_CHUNK) return [[lines, idx]];
  const out: [string[], number[]][] = [];
  for (let s = 0; s < lines.length; s += NETLINK_CHUNK)
    out.push([lines.slice(s, s + NETLINK_CHUNK), idx.slice(s, s + NETLINK_CHUNK)]);
  return out;
}

/** One `ip monitor route` line → event (null: not a main-table route line). Exported for tests. */
export function parseMonitorLine(line: string): Extract<KernelEvent, { type: 'route' }> | null {
  if (!line || /^\s/.test(line)) return null; // multipath continuation lines
  const t = line.trim().split(/\s+/);
  let deleted = false;
  if (t[0] === 'Deleted') {
    deleted = true;
    t.shift();
  }
  let type = 'unicast';
  if (t[0] && ROUTE_TYPES.has(t[0])) type = t.shift()!;
  const dstTok = t.shift();
  if (!dstTok) return null;
  const kv = new Map<string, string>();
  let onlink = false;
  for (let i = 0; i < t.length; i++) {
    const k = t[i]!;
    if (k === 'onlink') onlink = true;
    else if (VALUED.has(k)) {
      if (k === 'via' && (t[i + 1] === 'inet' || t[i + 1] === 'inet6')) i++;
      kv.set(k, t[i + 1] ?? '');
      i++;
    }
  }
  const table = kv.get('table');
  if (table && table !== 'main' && table !== '254') return null;
  if (type !== 'unicast' && type !== 'blackhole') return null;
  const family: Family = dstTok.includes(':') ? 6 : 4;
  const route = routeFromJson(family, {
    dst: dstTok,
    type,
    ...(kv.has('via') ? { gateway: kv.get('via')! } : {}),
    ...(kv.has('dev') ? { dev: kv.get('dev')! } : {}),
    flags: onlink ? ['onlink'] : [],
  });
  if (!route) return null;
  return { type: 'route', deleted, ours: kv.get('proto') === String(PETREL_ROUTE_PROTO), route };
}

export interface Iproute2KernelOptions {
  log: Logger;
  /** Work in the namespace at this path (tests, benchmarks); absent: the agent's own. */
  netnsPath?: string;
  clock?: Clock;
  /** Devices whose permanent neighbours / FDB entries are Petrel's (default: petrel.vxlan, petrel.vxlan6). */
  devices?: readonly string[];
  /** Delay before a died route monitor is restarted (default 500 ms). */
  monitorRestartMs?: number;
  /**
   * Write routes through this petrel-netlink executable (kernel-netlink.ts) instead of `ip -batch`;
   * neighbours and FDB entries still go through ip/bridge. Absent: everything through iproute2.
   */
  netlinkHelper?: string;
  /**
   * When the helper cannot run here (it dies before its first answer), write routes through
   * `ip -batch` from then on instead of failing (--route-writer auto). Default false.
   */
  netlinkFallback?: boolean;
}

export class Iproute2Kernel implements Kernel {
  private readonly log: Logger;
  private readonly netnsPath: string | undefined;
  private readonly clock: Clock;
  private readonly devices: ReadonlySet<string>;
  private readonly restartMs: number;
  private readonly ip: BatchChannel;
  private readonly bridge: BatchChannel;
  private netlink: NetlinkChannel | null;
  private readonly netlinkFallback: boolean;
  private monitor: ChildProcess | null = null;
  /** Routes are watched through petrel-netlink (its own changes dropped there) instead of `ip monitor`. */
  private watchingNetlink = false;
  private monitorTimer: TimerHandle | null = null;
  private overflowTimer: TimerHandle | null = null;
  private watchers = new Set<(e: KernelEvent) => void>();
  private closed = false;

  constructor(opts: Iproute2KernelOptions) {
    this.log = opts.log.child({ component: 'kernel' });
    this.netnsPath = opts.netnsPath;
    this.clock = opts.clock ?? systemClock;
    this.devices = new Set(opts.devices ?? [Devices.vxlan, Devices.vxlan6]);
    this.restartMs = opts.monitorRestartMs ?? 500;
    this.ip = new BatchChannel('ip', this.netnsPath, this.log);
    this.bridge = new BatchChannel('bridge', this.netnsPath, this.log);
    this.netlink = opts.netlinkHelper
      ? new NetlinkChannel(nsCommand(this.netnsPath, opts.netlinkHelper, []), this.log)
      : null;
    this.netlinkFallback = opts.netlinkFallback === true;
  }

  /** How routes are written: 'netlink' (petrel-netlink) or 'iproute2' (`ip -batch`). */
  get routeWriter(): 'netlink' | 'iproute2' {
    return this.netlink ? 'netlink' : 'iproute2';
  }

  /** PIDs of the long-lived children (tests check they are gone after close()). */
  pids(): number[] {
    return [this.ip.pid(), this.bridge.pid(), this.netlink?.pid(), this.monitor?.pid].filter(
      (x): x is number => x !== undefined,
    );
  }

  private async json<T>(op: KernelOp, tool: string, args: string[]): Promise<T[]> {
    const r = await execIn(this.netnsPath, tool, ['-json', ...args]);
    if (r.code !== 0) {
      const msg = r.stderr.trim() || `${tool} exited ${r.code}`;
      throw new KernelError(op, classifyError(msg), msg);
    }
    const s = r.stdout.trim();
    return s ? (JSON.parse(s) as T[]) : [];
  }

  async listRoutes(): Promise<RouteSpec[]> {
    const proto = String(PETREL_ROUTE_PROTO);
    const [v4, v6] = await Promise.all([
      this.json<JsonRoute>('list', 'ip', ['-4', 'route', 'show', 'table', 'main', 'proto', proto]),
      this.json<JsonRoute>('list', 'ip', ['-6', 'route', 'show', 'table', 'main', 'proto', proto]),
    ]);
    const out: RouteSpec[] = [];
    for (const j of v4) {
      const r = routeFromJson(4, j);
      if (r) out.push(r);
    }
    for (const j of v6) {
      const r = routeFromJson(6, j);
      if (r) out.push(r);
    }
    return out;
  }

  async listNeighbours(): Promise<NeighSpec[]> {
    const rows = await this.json<{ dst?: string; dev?: string; lladdr?: string }>('list', 'ip', [
      'neigh',
      'show',
      'nud',
      'permanent',
    ]);
    return rows
      .filter((n) => n.dev && this.devices.has(n.dev) && n.dst && n.lladdr)
      .map((n) => ({ dev: n.dev!, ip: canonicalIp(n.dst!) ?? n.dst!, mac: n.lladdr!.toLowerCase() }));
  }

  async listFdb(): Promise<FdbSpec[]> {
    const rows = await this.json<{ mac?: string; ifname?: string; dev?: string; dst?: string; state?: string }>(
      'list',
      'bridge',
      ['fdb', 'show'],
    );
    return rows
      .filter((f) => {
        const dev = f.ifname ?? f.dev;
        return dev && this.devices.has(dev) && f.dst && f.mac && f.state === 'permanent';
      })
      .map((f) => ({ dev: (f.ifname ?? f.dev)!, mac: f.mac!.toLowerCase(), dst: canonicalIp(f.dst!) ?? f.dst! }));
  }

  async apply(changes: readonly Change[]): Promise<ChangeResult[]> {
    if (this.netlink?.unusable && this.netlinkFallback) {
      this.log.warn('petrel-netlink cannot run on this machine: routes go through ip -batch from now on');
      this.netlink = null;
    }
    const results: ChangeResult[] = new Array(changes.length);
    const ipLines: string[] = [];
    const ipIdx: number[] = [];
    const brLines: string[] = [];
    const brIdx: number[] = [];
    const nlLines: string[] = [];
    const nlIdx: number[] = [];
    changes.forEach((c, i) => {
      try {
        if (this.netlink && c.obj.type === 'route') {
          nlLines.push(renderRouteRequest(c.op, c.obj.route));
          nlIdx.push(i);
          return;
        }
        const { tool, line } = renderChange(c);
        if (tool === 'ip') {
          ipLines.push(line);
          ipIdx.push(i);
        } else {
          brLines.push(line);
          brIdx.push(i);
        }
      } catch (e) {
        results[i] = {
          ok: false,
          error:
            e instanceof KernelError
              ? new KernelError(c.op, e.kind, e.message)
              : new KernelError(c.op, 'other', String(e)),
        };
      }
    });
    const runOne = async (ch: BatchChannel | NetlinkChannel, lines: string[], idx: number[]) => {
      if (lines.length === 0) return;
      let errors: Map<number, string>;
      try {
        errors = await ch.run(lines);
      } catch (e) {
        // The child died with the batch in flight: each of its changes failed (transient, retried);
        // the other channels' results stand.
        const kind = e instanceof KernelError ? e.kind : 'transient';
        for (const ci of idx)
          results[ci] = { ok: false, error: new KernelError(changes[ci]!.op, kind, String((e as Error).message ?? e)) };
        return;
      }
      idx.forEach((ci, li) => {
        const msg = errors.get(li);
        const c = changes[ci]!;
        results[ci] =
          msg === undefined ? { ok: true } : { ok: false, error: new KernelError(c.op, classifyError(msg), msg) };
      });
    };
    await Promise.all([
      runOne(this.ip, ipLines, ipIdx),
      runOne(this.bridge, brLines, brIdx),
      // In chunks, all in flight at once: the helper starts a batch only when it has all of it,
      // so it writes one chunk to the kernel while the next ones are still coming down the pipe.
      ...(this.netlink ? chunked(nlLines, nlIdx).map(([l, i]) => runOne(this.netlink!, l, i)) : []),
    ]);
    return results;
  }

  watch(onEvent: (e: KernelEvent) => void): () => void {
    // The reconciler starts watching when the agent starts: the route writer starts with it.
    if (!this.closed && !this.netlink?.unusable) this.netlink?.warm();
    this.watchers.add(onEvent);
    if (!this.monitor && !this.monitorTimer && !this.watchingNetlink) this.startMonitor();
    return () => {
      this.watchers.delete(onEvent);
      if (this.watchers.size === 0) this.stopMonitor();
    };
  }

  private emit(e: KernelEvent): void {
    for (const w of this.watchers) w(e);
  }

  private startMonitor(): void {
    this.monitorTimer = null;
    if (this.closed || this.watchers.size === 0) return;
    // With petrel-netlink writing the routes, it watches them too and drops the notifications of
    // its own changes (a 100k-route burst would otherwise come back as 100k lines to parse here,
    // and overflow `ip monitor`'s buffer, which rmem_max caps).
    const nl = this.netlink;
    if (nl && !nl.unusable) {
      this.watchingNetlink = true;
      nl.watch((e) => this.onNetlinkEvent(nl, e));
      return;
    }
    this.watchingNetlink = false;
    // A larger receive buffer than iproute2's default (a cap charged as events queue, not an
    // allocation): a burst of our own writes (10k+ routes) overflows the default (ENOBUFS) sooner.
    // It can still overflow (rmem_max caps it); then the resync below.
    const [c, a] = nsCommand(this.netnsPath, 'ip', ['-rcvbuf', String(MONITOR_RCVBUF), 'monitor', 'route']);
    const p = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.monitor = p;
    let buf = '';
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (d: string) => {
      buf += d;
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const e = parseMonitorLine(line);
        if (e) this.emit(e);
        i = buf.indexOf('\n');
      }
    });
    p.stderr!.setEncoding('utf8');
    p.stderr!.on('data', (d: string) => {
      this.log.warn({ stderr: d.trim() }, 'route monitor');
      // Overflowed all the same: some change may have gone unseen.
      if (/No buffer space/.test(d)) this.lostLater('route monitor overflowed (ENOBUFS)', () => this.monitor === p);
    });
    const gone = () => {
      if (this.monitor !== p) return;
      this.monitor = null;
      if (this.closed || this.watchers.size === 0) return;
      this.emit({ type: 'lost', reason: 'route monitor exited' });
      this.monitorTimer = this.clock.setTimer(this.restartMs, () => this.startMonitor());
    };
    p.on('exit', gone);
    p.on('error', gone);
  }

  private onNetlinkEvent(nl: NetlinkChannel, e: NetlinkWatchEvent): void {
    if (this.closed || this.watchers.size === 0 || !this.watchingNetlink) return;
    if (e.type === 'route') {
      const l = e.line;
      const route = routeFromJson(l.family, {
        dst: l.dst,
        type: l.type,
        ...(l.gateway ? { gateway: l.gateway } : {}),
        ...(l.dev ? { dev: l.dev } : {}),
        flags: l.onlink ? ['onlink'] : [],
      });
      if (route) this.emit({ type: 'route', deleted: l.op === 'delete', ours: true, route });
      return;
    }
    if (e.died) {
      // Unseen changes while no helper watched: resync now; a new helper (or, if it cannot run
      // here, `ip monitor`) watches after the restart delay.
      this.emit({ type: 'lost', reason: e.reason });
      if (this.monitorTimer) return;
      this.monitorTimer = this.clock.setTimer(this.restartMs, () => {
        this.monitorTimer = null;
        if (this.closed || this.watchers.size === 0) return;
        if (nl.unusable) {
          nl.unwatch();
          this.startMonitor();
        } else nl.rewatch();
      });
      return;
    }
    this.lostLater(e.reason, () => this.watchingNetlink); // notifications dropped (ENOBUFS)
  }

  /**
   * Events were dropped (the watcher's buffer overflowed): a `lost` event (a full resync)
   * OVERFLOW_RESYNC_MS later, one for a storm of overflows, if `current()` (that watcher) still holds.
   */
  private lostLater(reason: string, current: () => boolean): void {
    if (this.overflowTimer) return;
    this.overflowTimer = this.clock.setTimer(OVERFLOW_RESYNC_MS, () => {
      this.overflowTimer = null;
      if (current()) this.emit({ type: 'lost', reason });
    });
    this.overflowTimer.unref();
  }

  private stopMonitor(): Promise<void> {
    if (this.watchingNetlink) {
      this.watchingNetlink = false;
      this.netlink?.unwatch();
    }
    this.monitorTimer?.cancel();
    this.monitorTimer = null;
    this.overflowTimer?.cancel();
    this.overflowTimer = null;
    const p = this.monitor;
    this.monitor = null;
    if (!p || p.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    await Promise.all([this.stopMonitor(), this.ip.close(), this.bridge.close(), this.netlink?.close()]);
  }
}
