/**
 * In-memory IpamBackend for unit tests (STYLE §1.5: every fake can fail on purpose). IPv4 and
 * IPv6 pools; addresses are handed out in order; `failNext(op, err)` makes the next call of `op`
 * throw; `calls` records every call.
 */
import { HandleExistsError, IpamError } from '../../ipam-etcd/errors.js';
import type { AssignArgs, Assignment, AutoAssignArgs, Pool } from '../../ipam-etcd/types.js';
import type { IpamBackend } from './service.js';

type Op = 'autoAssign' | 'assignIp' | 'releaseByHandle' | 'releaseIps' | 'ipsByHandle' | 'listPools' | 'listHandles';

function v4ToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
}
function intToV4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** A pool with defaults for the fields tests rarely care about. */
export function fakePool(name: string, cidr: string, over: Partial<Pool> = {}): Pool {
  return {
    name,
    cidr,
    blockSize: cidr.includes(':') ? 122 : 26,
    ipipMode: 'Never',
    vxlanMode: 'Never',
    natOutgoing: false,
    disabled: false,
    nodeSelector: 'all()',
    ...over,
  };
}

export class FakeIpam implements IpamBackend {
  readonly calls: { op: Op; arg: unknown }[] = [];
  /** ip -> { handle, assignment } */
  private readonly used = new Map<string, { handle: string; node: string; a: Assignment }>();
  private readonly failures = new Map<Op, Error[]>();

  constructor(public pools: Pool[]) {}

  failNext(op: Op, err: Error = new IpamError('unavailable', `injected ${op} failure`)): void {
    const q = this.failures.get(op) ?? [];
    q.push(err);
    this.failures.set(op, q);
  }

  private enter(op: Op, arg: unknown): void {
    this.calls.push({ op, arg });
    const err = this.failures.get(op)?.shift();
    if (err) throw err;
  }

  /** Addresses currently held, by handle. */
  held(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [ip, { handle }] of this.used) out.set(handle, [...(out.get(handle) ?? []), ip]);
    return out;
  }

  private assignment(pool: Pool, ip: string, family: 4 | 6): Assignment {
    return { ip, family, block: pool.cidr, pool: pool.name, ipipMode: pool.ipipMode, vxlanMode: pool.vxlanMode };
  }

  private candidates(pool: Pool): string[] {
    const [base, lenS] = pool.cidr.split('/');
    const len = Number(lenS);
    if (!base) return [];
    if (!pool.cidr.includes(':')) {
      const start = v4ToInt(base);
      const size = Math.min(2 ** (32 - len), 4096);
      return Array.from({ length: size - 1 }, (_, i) => intToV4(start + i + 1));
    }
    const prefix = base.replace(/::$/, '');
    return Array.from({ length: 4095 }, (_, i) => `${prefix}::${(i + 1).toString(16)}`);
  }

  private inPool(ip: string): Pool | undefined {
    return this.pools.find((p) => this.candidates(p).includes(ip));
  }

  async autoAssign(args: AutoAssignArgs): Promise<Assignment[]> {
    this.enter('autoAssign', args);
    if (args.fresh && [...this.used.values()].some((u) => u.handle === args.handle)) {
      throw new HandleExistsError(args.handle);
    }
    const out: Assignment[] = [];
    for (const [family, num] of [
      [4, args.num4 ?? 0],
      [6, args.num6 ?? 0],
    ] as const) {
      for (let n = 0; n < num; n++) {
        const pools = this.pools.filter(
          (p) => !p.disabled && p.cidr.includes(':') === (family === 6) && (!args.pools || args.pools.includes(p.name)),
        );
        let got: Assignment | undefined;
        for (const p of pools) {
          const ip = this.candidates(p).find((c) => !this.used.has(c));
          if (ip) {
            got = this.assignment(p, ip, family);
            break;
          }
        }
        if (!got) {
          for (const a of out) this.used.delete(a.ip);
          throw new IpamError('exhausted', `no free IPv${family} address`);
        }
        this.used.set(got.ip, { handle: args.handle, node: args.node, a: got });
        out.push(got);
      }
    }
    return out;
  }

  async assignIp(args: AssignArgs): Promise<Assignment> {
    this.enter('assignIp', args);
    const pool = this.inPool(args.ip);
    if (!pool) throw new IpamError('invalid', `${args.ip} is not in any pool`);
    if (this.used.has(args.ip)) throw new IpamError('in-use', `${args.ip} is in use`);
    const a = this.assignment(pool, args.ip, args.ip.includes(':') ? 6 : 4);
    this.used.set(args.ip, { handle: args.handle, node: args.node, a });
    return a;
  }

  async releaseByHandle(handle: string): Promise<string[]> {
    this.enter('releaseByHandle', handle);
    const out: string[] = [];
    for (const [ip, u] of this.used) {
      if (u.handle === handle) {
        this.used.delete(ip);
        out.push(ip);
      }
    }
    return out;
  }

  async releaseIps(ips: string[]): Promise<string[]> {
    this.enter('releaseIps', ips);
    return ips.filter((ip) => this.used.delete(ip));
  }

  async ipsByHandle(handle: string): Promise<Assignment[]> {
    this.enter('ipsByHandle', handle);
    return [...this.used.values()].filter((u) => u.handle === handle).map((u) => u.a);
  }

  async listPools(): Promise<Pool[]> {
    this.enter('listPools', undefined);
    return this.pools;
  }

  async listHandles(prefix: string, node: string): Promise<string[]> {
    this.enter('listHandles', prefix);
    const mine = [...this.used.values()].filter((u) => u.node === node && u.handle.startsWith(prefix));
    return [...new Set(mine.map((u) => u.handle))];
  }
}
