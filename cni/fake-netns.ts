/**
 * Recording NetnsExec for unit tests (STYLE §1.5): keeps a tiny model of the node's links (created
 * by `link add`, removed by `link del`), records every call, and fails on purpose with failNext.
 */
import { IpError, type NetnsExec } from './netns.js';

export type FakeOp = 'hostBatch' | 'podBatch' | 'hostQuery' | 'podQuery' | 'hostSysctl';

export class FakeNetns implements NetnsExec {
  readonly calls: { op: FakeOp; lines: string[] }[] = [];
  readonly hostLinks = new Map<string, { alias?: string }>();
  readonly netnsPaths = new Set<string>();
  readonly sysctls = new Map<string, string>();
  mtu: number | undefined = 1500;
  /** Canned answers for queries, by first line. */
  readonly answers = new Map<string, unknown[]>();
  private readonly failures = new Map<FakeOp, Error[]>();

  failNext(op: FakeOp, err: Error = new IpError('other', 1, 'injected', 'RTNETLINK answers: injected')): void {
    this.failures.set(op, [...(this.failures.get(op) ?? []), err]);
  }

  private enter(op: FakeOp, lines: string[]): void {
    this.calls.push({ op, lines });
    const err = this.failures.get(op)?.shift();
    if (err) throw err;
  }

  private applyHost(lines: string[]): void {
    lines.forEach((l, i) => {
      const add = /^link add (\S+) /.exec(l);
      const del = /^link del (\S+)$/.exec(l);
      const alias = /^link set (\S+) alias (\S+)$/.exec(l);
      if (add?.[1]) {
        if (this.hostLinks.has(add[1])) throw new IpError('exists', i + 1, l, 'RTNETLINK answers: File exists');
        this.hostLinks.set(add[1], {});
      } else if (del?.[1]) {
        if (!this.hostLinks.delete(del[1])) throw new IpError('not-found', i + 1, l, 'Cannot find device');
      } else if (alias?.[1] && alias[2]) {
        const link = this.hostLinks.get(alias[1]);
        if (link) link.alias = alias[2];
      }
    });
  }

  async hostBatch(lines: string[]): Promise<void> {
    this.enter('hostBatch', lines);
    this.applyHost(lines);
  }
  async podBatch(_netnsPath: string, lines: string[]): Promise<void> {
    this.enter('podBatch', lines);
  }
  async hostQuery(lines: string[]): Promise<unknown[]> {
    this.enter('hostQuery', lines);
    const show = /^link show dev (\S+)$/.exec(lines[0] ?? '');
    if (show?.[1]) {
      const l = this.hostLinks.get(show[1]);
      return [l ? [{ ifname: show[1], ifalias: l.alias, flags: ['UP'] }] : [], []];
    }
    return this.answers.get(lines[0] ?? '') ?? lines.map(() => []);
  }
  async podQuery(_netnsPath: string, lines: string[]): Promise<unknown[]> {
    this.enter('podQuery', lines);
    return this.answers.get(lines[0] ?? '') ?? lines.map(() => []);
  }
  async hostSysctl(key: string, value: string): Promise<void> {
    this.enter('hostSysctl', [key]);
    this.sysctls.set(key, value);
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
