/**
 * IpamClient for unit tests: the real IpamService over the FakeIpam, in process (no socket), with
 * the client's error mapping, plus failNext to make a call fail with a given CNI error.
 */
import { silentLogger } from '../agent/common/logger.js';
import { FakeIpam, fakePool } from '../agent/ipam-service/fake-ipam.js';
import type { WireAssignment } from '../agent/ipam-service/protocol.js';
import { IpamService } from '../agent/ipam-service/service.js';
import { type IpamClient, wireToCniError } from './agent-client.js';
import { CniCode, CniError } from './errors.js';

type Op = 'assign' | 'release' | 'get' | 'status' | 'gc';

export class FakeIpamClient implements IpamClient {
  readonly ipam = new FakeIpam([fakePool('default', '10.1.0.0/24'), fakePool('v6', 'fd00:1::/120')]);
  readonly service = new IpamService({ ipam: this.ipam, nodeName: 'node-1', log: silentLogger });
  readonly calls: Op[] = [];
  /** Requests that went out (handed to the service), in order. */
  readonly sent: Op[] = [];
  private readonly failures = new Map<Op, Error[]>();
  closed = false;

  failNext(
    op: Op,
    err: Error = new CniError(CniCode.TryAgainLater, 'petrel-agent is not reachable at /fake.sock', 'ECONNREFUSED'),
  ): void {
    this.failures.set(op, [...(this.failures.get(op) ?? []), err]);
  }

  private async call<T>(
    op: Op,
    req: Record<string, unknown>,
    pick: (r: Record<string, unknown>) => T,
    onSent?: () => void,
  ): Promise<T> {
    this.calls.push(op);
    const err = this.failures.get(op)?.shift();
    if (err) throw err;
    const answer = this.service.handle({ v: 1, id: 1, op, ...req } as Parameters<IpamService['handle']>[0]);
    this.sent.push(op);
    onSent?.();
    const res = await answer;
    if (!res.ok) throw wireToCniError(res.error, '/fake.sock');
    return pick(res as unknown as Record<string, unknown>);
  }

  assign(req: Parameters<IpamClient['assign']>[0], onSent?: () => void): Promise<WireAssignment[]> {
    return this.call('assign', req, (r) => (r.assignments as WireAssignment[]) ?? [], onSent);
  }
  release(handle: string): Promise<string[]> {
    return this.call('release', { handle }, (r) => (r.released as string[]) ?? []);
  }
  get(handle: string): Promise<WireAssignment[]> {
    return this.call('get', { handle }, (r) => (r.assignments as WireAssignment[]) ?? []);
  }
  async status(): Promise<void> {
    await this.call('status', {}, () => undefined);
  }
  gc(prefix: string, keep: string[]): Promise<string[]> {
    return this.call('gc', { prefix, keep }, (r) => (r.released as string[]) ?? []);
  }
  close(): void {
    this.closed = true;
  }
}
