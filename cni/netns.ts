/**
 * The netns boundary (STYLE §5): Node cannot switch a thread's network namespace, so everything
 * inside a pod's netns runs in a child process, `nsenter --net=<path> ip -batch -`. Work in the
 * plugin's own namespace (the node's) runs `ip -batch -` directly, and sysctls are written under
 * /proc/sys/net, which always shows the namespace of the process reading it.
 *
 * One `ip -batch` per namespace per step keeps process starts (the dominant cost) to two per ADD.
 * iproute2 stops a batch at the first failing line and reports "Command failed -:N", so the
 * error says which line failed; `IpError.kind` classifies the kernel's answer once, here.
 *
 * Deadlines: a wedged node (a netns stuck in teardown, rtnl_lock held for minutes) can make `ip`
 * or `nsenter` block forever, and with them the runtime's ADD. Every child therefore runs with a
 * deadline (netconf `ipTimeoutMs`, default 10 s; `withTimeout`). Past it the child's whole process
 * group is killed (SIGKILL) and the call rejects with `IpError` kind 'timeout', which ADD reports
 * as code 102 after rolling back.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { type PendingChild, spawnWithDeadline } from './child.js';
import { DEFAULT_IP_TIMEOUT_MS } from './netconf.js';
import { mark } from './trace.js';

export type IpErrorKind = 'not-found' | 'exists' | 'netns-missing' | 'timeout' | 'other';

export { DEFAULT_IP_TIMEOUT_MS };

export class IpError extends Error {
  override readonly name = 'IpError';
  constructor(
    readonly kind: IpErrorKind,
    /** 1-based batch line that failed (0 when unknown), and that line's text. */
    readonly line: number,
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`ip ${command}: ${stderr.trim() || kind}`);
  }
}

export interface NetnsExec {
  /** The same boundary with each child limited to `ms` (then killed, and the call rejects: kind 'timeout'). */
  withTimeout(ms: number): NetnsExec;
  /** `ip -batch -` in the plugin's own (node) netns. Rejects with IpError. */
  hostBatch(lines: string[]): Promise<void>;
  /** `ip -batch -` inside the netns at `netnsPath`. Rejects with IpError. */
  podBatch(netnsPath: string, lines: string[]): Promise<void>;
  /** `ip -json [-6] -batch -` in the node netns: one parsed JSON value per line. */
  hostQuery(lines: string[], family?: 4 | 6): Promise<unknown[]>;
  /** `ip -json [-6] -batch -` inside `netnsPath`. */
  podQuery(netnsPath: string, lines: string[], family?: 4 | 6): Promise<unknown[]>;
  /** Writes /proc/sys/net/<key> in the node netns, e.g. key "ipv4/conf/petrX/proxy_arp". */
  hostSysctl(key: string, value: string): Promise<void>;
  /** Whether a link exists in the node netns (no process: /proc/sys/net/ipv{4,6}/conf/<name>). */
  hostLinkExists(name: string): boolean;
  /** Whether the netns path exists. */
  netnsExists(path: string): boolean;
  /** MTU of the interface holding the default route, or undefined. */
  hostMtu(): number | undefined;
  /**
   * Optional start-up hint: start the processes of the next `hostBatch` (and `podBatch` in
   * `netnsPath`) now, so that they are ready when the lines are known (ADD calls it before
   * asking for addresses). Without it, or for other calls, each call starts its own process.
   */
  prepare?(netnsPath?: string): void;
  /** Ends prepared processes that were not used (their stdin is closed: they exit 0). */
  discard?(): void;
}

export function classifyIpError(stderr: string): IpErrorKind {
  if (/cannot open .*No such file|Cannot open network namespace|No such file or directory/i.test(stderr)) {
    return 'netns-missing';
  }
  if (/File exists/i.test(stderr)) return 'exists';
  if (
    /Cannot find device|does not exist|No such device|No such process|Cannot assign requested address/i.test(stderr)
  ) {
    return 'not-found';
  }
  return 'other';
}

function errorOf(stderr: string, lines: string[]): IpError {
  const m = /Command failed -:(\d+)/.exec(stderr);
  const line = m ? Number(m[1]) : 0;
  return new IpError(classifyIpError(stderr), line, lines[line - 1] ?? lines.join('; '), stderr);
}

/** Locations of the tools; absolute so the plugin works with the runtime's minimal PATH. */
export interface Iproute2Paths {
  ip: string;
  nsenter: string;
}

function which(cands: string[]): string {
  return cands.find((c) => existsSync(c)) ?? (cands[0] as string);
}

export function defaultPaths(): Iproute2Paths {
  return {
    ip: which(['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip']),
    nsenter: which(['/usr/bin/nsenter', '/bin/nsenter', '/usr/sbin/nsenter']),
  };
}

/** The real NetnsExec: iproute2 + nsenter (util-linux) + /proc. */
export class Iproute2Netns implements NetnsExec {
  constructor(
    private readonly paths: Iproute2Paths = defaultPaths(),
    /** Deadline of each child, ms. */
    readonly timeoutMs: number = DEFAULT_IP_TIMEOUT_MS,
  ) {}

  /** Started `ip -batch -` processes by namespace ('' = the node's), each used by one batch. */
  private readonly prepared = new Map<string, PendingChild>();

  withTimeout(ms: number): Iproute2Netns {
    return new Iproute2Netns(this.paths, ms);
  }

  private argv(prefix: string[], json: boolean, family?: 4 | 6): string[] {
    return [...prefix, this.paths.ip, ...(json ? ['-json'] : []), ...(family ? [`-${family}`] : []), '-batch', '-'];
  }

  prepare(netnsPath?: string): void {
    if (!this.prepared.has('')) this.prepared.set('', spawnWithDeadline(this.argv([], false), this.timeoutMs));
    if (netnsPath && !this.prepared.has(netnsPath)) {
      this.prepared.set(netnsPath, spawnWithDeadline(this.argv(this.inNetns(netnsPath), false), this.timeoutMs));
    }
  }

  discard(): void {
    for (const c of this.prepared.values()) c.cancel();
    this.prepared.clear();
  }

  private async batch(prefix: string[], lines: string[], json: boolean, family?: 4 | 6, ns = ''): Promise<string> {
    const tag = prefix.length > 0 ? 'pod' : 'host';
    mark(`${tag}-start`);
    let child = !json && !family ? this.prepared.get(ns) : undefined;
    if (child) this.prepared.delete(ns);
    else child = spawnWithDeadline(this.argv(prefix, json, family), this.timeoutMs);
    const r = await child.run(`${lines.join('\n')}\n`);
    mark(`${tag}-done`);
    if (r.timedOut) {
      const what = prefix.length > 0 ? `nsenter ${prefix.slice(1).join(' ')} ip -batch` : 'ip -batch';
      throw new IpError('timeout', 0, lines.join('; '), `${what} did not finish within ${this.timeoutMs} ms (killed)`);
    }
    if (r.code !== 0) throw errorOf(r.stderr, lines);
    return r.stdout;
  }

  private inNetns(path: string): string[] {
    return [this.paths.nsenter, `--net=${path}`];
  }

  async hostBatch(lines: string[]): Promise<void> {
    await this.batch([], lines, false);
  }
  async podBatch(netnsPath: string, lines: string[]): Promise<void> {
    await this.batch(this.inNetns(netnsPath), lines, false, undefined, netnsPath);
  }
  async hostQuery(lines: string[], family?: 4 | 6): Promise<unknown[]> {
    return parseJsonLines(await this.batch([], lines, true, family));
  }
  async podQuery(netnsPath: string, lines: string[], family?: 4 | 6): Promise<unknown[]> {
    return parseJsonLines(await this.batch(this.inNetns(netnsPath), lines, true, family));
  }
  async hostSysctl(key: string, value: string): Promise<void> {
    writeFileSync(`/proc/sys/net/${key}`, value);
  }
  hostLinkExists(name: string): boolean {
    return existsSync(`/proc/sys/net/ipv4/conf/${name}`) || existsSync(`/proc/sys/net/ipv6/conf/${name}`);
  }
  netnsExists(path: string): boolean {
    return existsSync(path);
  }
  hostMtu(): number | undefined {
    return detectHostMtu();
  }
}

/** `ip -json -batch` prints one JSON document per command; empty output lines are skipped. */
export function parseJsonLines(out: string): unknown[] {
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as unknown);
}

/**
 * The MTU of the interface that holds the IPv4 default route (/proc/net/route), read from
 * /sys/class/net/<if>/mtu; undefined when there is no default route or it cannot be read.
 */
export function detectHostMtu(): number | undefined {
  try {
    const route = readFileSync('/proc/net/route', 'utf8');
    for (const line of route.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1] === '00000000' && f[7] === '00000000' && f[0]) {
        // /sys shows the namespace that mounted it; /proc/sys/net always shows ours (IPv6 MTU
        // equals the link MTU unless lowered by a router advertisement), so prefer it when present.
        for (const f2 of [`/proc/sys/net/ipv6/conf/${f[0]}/mtu`, `/sys/class/net/${f[0]}/mtu`]) {
          if (!existsSync(f2)) continue;
          const mtu = Number(readFileSync(f2, 'utf8').trim());
          if (Number.isInteger(mtu) && mtu >= 68) return mtu;
        }
      }
    }
  } catch {
    /* fall through */
  }
  return undefined;
}
