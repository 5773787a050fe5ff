/**
 * Recording NetnsExec for unit tests (STYLE §1.5): keeps a small model of the kernel state ADD
 * and DEL touch (node links with their pod peers and aliases, node routes, pod interfaces with
 * addresses, pod routes), records every call, and fails on purpose.
 *
 * Failures behave like `ip -batch`: iproute2 runs a batch line by line and stops at the first
 * line the kernel refuses, so the lines before it stay applied. `failNext(op, err)` fails at
 * `err.line` (an IpError's 1-based line; 1 when absent) after applying the lines before it;
 * `failAtLine` is the short form. `hangNext` makes a call hang (after applying the lines before
 * `atLine`) until the deadline set with `withTimeout`, then reject with kind 'timeout', as the
 * real boundary does after killing the child.
 */
import { DEFAULT_IP_TIMEOUT_MS, IpError, type IpErrorKind, type NetnsExec } from './netns.js';

export type FakeOp = 'hostBatch' | 'podBatch' | 'hostQuery' | 'podQuery' | 'hostSysctl';

export interface FakeHostLink {
  alias?: string;
  up?: boolean;
  /** The other end of a veth: its netns path and name there. */
  peer?: { netns: string; ifName: string };
}

export interface FakePodLink {
  up: boolean;
  addrs: string[];
  /** The node-side veth this interface is the peer of. */
  hostPeer?: string;
}

type Fault = { kind: 'fail'; err: Error; line: number } | { kind: 'hang'; line: number };

export class FakeNetns implements NetnsExec {
  readonly calls: { op: FakeOp; lines: string[] }[] = [];
  readonly hostLinks = new Map<string, FakeHostLink>();
  /** Node routes: destination -> device. */
  readonly hostRoutes = new Map<string, string>();
  /** Pod interfaces by netns path, then name. */
  readonly podLinks = new Map<string, Map<string, FakePodLink>>();
  /** Pod routes by netns path: "<dst> dev <if>" / "<dst> via <gw> dev <if>". */
  readonly podRoutes = new Map<string, { dst: string; dev: string; via?: string }[]>();
  readonly netnsPaths = new Set<string>();
  readonly sysctls = new Map<string, string>();
  mtu: number | undefined = 1500;
  /** The per-child deadline the code under test asked for (withTimeout). */
  timeoutMs = DEFAULT_IP_TIMEOUT_MS;
  /** Canned answers for queries, by first line. */
  readonly answers = new Map<string, unknown[]>();
  private readonly faults = new Map<FakeOp, Fault[]>();
  /** Netns paths `prepare` was called with (the real boundary spawns its `ip` processes there). */
  readonly prepared: string[] = [];
  /** Called inside `prepare`, to see what had happened by then. */
  onPrepare: (() => void) | undefined;

  prepare(netnsPath?: string): void {
    this.prepared.push(netnsPath ?? '');
    this.onPrepare?.();
  }

  /** The state is shared: the deadline is recorded and applies to the next hangs. */
  withTimeout(ms: number): FakeNetns {
    this.timeoutMs = ms;
    return this;
  }

  failNext(op: FakeOp, err: Error = new IpError('other', 1, 'injected', 'RTNETLINK answers: injected')): void {
    const line = err instanceof IpError && err.line > 0 ? err.line : 1;
    this.push(op, { kind: 'fail', err, line });
  }

  /** Fails `op`'s next batch at 1-based `line`, after applying the lines before it. */
  failAtLine(op: FakeOp, line: number, kind: IpErrorKind = 'other'): void {
    this.push(op, { kind: 'fail', err: new IpError(kind, line, `line ${line}`, 'RTNETLINK answers: injected'), line });
  }

  /** The next `op` hangs at `atLine` (lines before it applied) until the deadline, then times out. */
  hangNext(op: FakeOp, atLine = 1): void {
    this.push(op, { kind: 'hang', line: atLine });
  }

  /** Everything ADD can leave behind, for "nothing is left" assertions. */
  leftovers(): string[] {
    const out = [...this.hostLinks.keys()].map((l) => `host link ${l}`);
    for (const [d, dev] of this.hostRoutes) out.push(`host route ${d} dev ${dev}`);
    for (const [ns, links] of this.podLinks) for (const l of links.keys()) out.push(`pod link ${l} in ${ns}`);
    for (const [ns, routes] of this.podRoutes) for (const r of routes) out.push(`pod route ${r.dst} in ${ns}`);
    return out;
  }

  private push(op: FakeOp, f: Fault): void {
    this.faults.set(op, [...(this.faults.get(op) ?? []), f]);
  }

  /** Records the call and runs `apply` per line until the injected fault, like `ip -batch`. */
  private async batch(op: FakeOp, lines: string[], apply: (line: string, n: number) => void): Promise<void> {
    this.calls.push({ op, lines });
    const f = this.faults.get(op)?.shift();
    const stopAt = f ? f.line : lines.length + 1;
    for (let i = 0; i < lines.length && i + 1 < stopAt; i++) apply(lines[i] as string, i + 1);
    if (!f) return;
    if (f.kind === 'fail') throw f.err;
    await new Promise((r) => setTimeout(r, this.timeoutMs));
    throw new IpError('timeout', 0, lines.join('; '), `ip -batch did not finish within ${this.timeoutMs} ms (killed)`);
  }

  private pod(ns: string): Map<string, FakePodLink> {
    let m = this.podLinks.get(ns);
    if (!m) {
      m = new Map();
      this.podLinks.set(ns, m);
    }
    return m;
  }

  /** Deleting either end of a veth deletes both, and the routes through them. */
  private deleteHostLink(name: string): void {
    const link = this.hostLinks.get(name);
    if (!link) return;
    this.hostLinks.delete(name);
    for (const [d, dev] of [...this.hostRoutes]) if (dev === name) this.hostRoutes.delete(d);
    if (link.peer) this.dropPodLink(link.peer.netns, link.peer.ifName);
  }

  private dropPodLink(ns: string, ifName: string): void {
    const links = this.podLinks.get(ns);
    links?.delete(ifName);
    if (links?.size === 0) this.podLinks.delete(ns);
    const routes = (this.podRoutes.get(ns) ?? []).filter((r) => r.dev !== ifName);
    if (routes.length > 0) this.podRoutes.set(ns, routes);
    else this.podRoutes.delete(ns);
  }

  private applyHost(l: string, n: number): void {
    const add = /^link add (\S+) .*peer name (\S+) .*netns (\S+)$/.exec(l);
    const del = /^link del (\S+)$/.exec(l);
    const alias = /^link set (\S+) alias (\S+)$/.exec(l);
    const up = /^link set (\S+) up$/.exec(l);
    const route = /^route add (\S+) dev (\S+)/.exec(l);
    if (add?.[1] && add[2] && add[3]) {
      if (this.hostLinks.has(add[1]) || this.podLinks.get(add[3])?.has(add[2])) {
        throw new IpError('exists', n, l, 'RTNETLINK answers: File exists');
      }
      this.hostLinks.set(add[1], { peer: { netns: add[3], ifName: add[2] } });
      this.pod(add[3]).set(add[2], { up: false, addrs: [], hostPeer: add[1] });
    } else if (del?.[1]) {
      if (!this.hostLinks.has(del[1])) throw new IpError('not-found', n, l, 'Cannot find device');
      this.deleteHostLink(del[1]);
    } else if (alias?.[1] && alias[2]) {
      const link = this.hostLinks.get(alias[1]);
      if (!link) throw new IpError('not-found', n, l, 'Cannot find device');
      link.alias = alias[2];
    } else if (up?.[1]) {
      const link = this.hostLinks.get(up[1]);
      if (!link) throw new IpError('not-found', n, l, 'Cannot find device');
      link.up = true;
    } else if (route?.[1] && route[2]) {
      if (!this.hostLinks.has(route[2])) throw new IpError('not-found', n, l, 'Cannot find device');
      if (this.hostRoutes.has(route[1])) throw new IpError('exists', n, l, 'RTNETLINK answers: File exists');
      this.hostRoutes.set(route[1], route[2]);
    }
  }

  private applyPod(ns: string, l: string, n: number): void {
    const links = this.podLinks.get(ns);
    const dev = (name: string) => {
      const link = links?.get(name);
      if (!link) throw new IpError('not-found', n, l, 'Cannot find device');
      return link;
    };
    const up = /^link set (\S+) up$/.exec(l);
    const del = /^link del (\S+)$/.exec(l);
    const addr = /^addr add (\S+) dev (\S+)/.exec(l);
    const route = /^route add (\S+) (?:via (\S+) )?dev (\S+)/.exec(l);
    if (up?.[1]) dev(up[1]).up = true;
    else if (del?.[1]) {
      const link = dev(del[1]);
      if (link.hostPeer) this.deleteHostLink(link.hostPeer);
      else this.dropPodLink(ns, del[1]);
    } else if (addr?.[1] && addr[2]) dev(addr[2]).addrs.push(addr[1]);
    else if (route?.[1] && route[3]) {
      dev(route[3]);
      const r: { dst: string; dev: string; via?: string } = { dst: route[1], dev: route[3] };
      if (route[2]) r.via = route[2];
      this.podRoutes.set(ns, [...(this.podRoutes.get(ns) ?? []), r]);
    }
  }

  async hostBatch(lines: string[]): Promise<void> {
    await this.batch('hostBatch', lines, (l, n) => this.applyHost(l, n));
  }
  async podBatch(netnsPath: string, lines: string[]): Promise<void> {
    await this.batch('podBatch', lines, (l, n) => this.applyPod(netnsPath, l, n));
  }
  async hostQuery(lines: string[]): Promise<unknown[]> {
    await this.batch('hostQuery', lines, () => {});
    const show = /^link show dev (\S+)$/.exec(lines[0] ?? '');
    if (show?.[1]) {
      const l = this.hostLinks.get(show[1]);
      return [l ? [{ ifname: show[1], ifalias: l.alias, flags: l.up ? ['UP'] : [] }] : [], []];
    }
    return this.answers.get(lines[0] ?? '') ?? lines.map(() => []);
  }
  async podQuery(_netnsPath: string, lines: string[]): Promise<unknown[]> {
    await this.batch('podQuery', lines, () => {});
    return this.answers.get(lines[0] ?? '') ?? lines.map(() => []);
  }
  async hostSysctl(key: string, value: string): Promise<void> {
    await this.batch('hostSysctl', [key], () => {
      this.sysctls.set(key, value);
    });
  }
  hostLinkExists(name: string): boolean {
    return this.hostLinks.has(name);
  }
  netnsExists(path: string): boolean {
    return this.netnsPaths.has(path);
  }
  hostMtu(): number | undefined {
    return this.mtu;
  }
}
