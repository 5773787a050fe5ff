/**
 * In-memory IpamStore with the etcd semantics IPAM relies on (per-key mod revisions, atomic
 * conditional multi-key commits), for pure unit tests only. It can fail on purpose:
 *  - failNext(op, err): the next call of `op` throws `err` (e.g. IpamError('unavailable')).
 *  - conflictNext(n): the next n commits throw ConflictError as if another writer won.
 *  - beforeCommit hook: run code (e.g. a competing write) just before a commit is checked.
 *  - applyThenFailNext(err, match, when): the next commit whose writes satisfy `match` is carried
 *    out as usual and then throws `err` instead of returning: real etcd can apply a transaction
 *    and time out before the reply arrives, which etcd-store.ts reports as
 *    IpamError('unavailable'). The caller cannot tell whether anything was written. `when`:
 *    'applied' (default) arms it for the next matching commit whose conditions hold (one that
 *    fails its conditions throws ConflictError as usual and leaves it armed); 'any' also takes a
 *    commit whose conditions fail (nothing written, and still `err` instead of ConflictError).
 */
import { ConflictError } from './errors.js';
import type { Cond, IpamStore, KV, Write } from './store.js';

type Op = 'get' | 'list' | 'commit';

export class MemoryStore implements IpamStore {
  private data = new Map<string, { value: string; rev: number }>();
  private rev = 1;
  private failures: { op: Op; err: Error }[] = [];
  private conflicts = 0;
  private lostReplies: { err: Error; match: (writes: readonly Write[]) => boolean; any: boolean }[] = [];
  /** Commits that were carried out but whose reply was "lost" (applyThenFailNext), with whether they applied. */
  readonly lost: { keys: string[]; applied: boolean }[] = [];
  /** Calls made, in order (for assertions). */
  readonly calls: { op: Op; key: string }[] = [];
  beforeCommit: ((store: MemoryStore) => void) | undefined;

  failNext(op: Op, err: Error): void {
    this.failures.push({ op, err });
  }
  /** See the file comment: the next matching commit is carried out, then throws `err`. */
  applyThenFailNext(
    err: Error,
    match: (writes: readonly Write[]) => boolean = () => true,
    when: 'applied' | 'any' = 'applied',
  ): void {
    this.lostReplies.push({ err, match, any: when === 'any' });
  }
  conflictNext(n = 1): void {
    this.conflicts += n;
  }
  private maybeFail(op: Op): void {
    const i = this.failures.findIndex((f) => f.op === op);
    if (i >= 0) {
      const [f] = this.failures.splice(i, 1);
      throw f!.err;
    }
  }

  async get(key: string): Promise<KV | null> {
    this.calls.push({ op: 'get', key });
    this.maybeFail('get');
    const e = this.data.get(key);
    return e ? { key, value: e.value, modRevision: String(e.rev) } : null;
  }

  async list(prefix: string): Promise<KV[]> {
    this.calls.push({ op: 'list', key: prefix });
    this.maybeFail('list');
    return [...this.data.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, e]) => ({ key, value: e.value, modRevision: String(e.rev) }));
  }

  async listKeys(prefix: string): Promise<string[]> {
    return (await this.list(prefix)).map((kv) => kv.key);
  }

  async commit(conds: Cond[], writes: Write[]): Promise<string> {
    this.calls.push({ op: 'commit', key: writes.map((w) => w.key).join(',') });
    this.beforeCommit?.(this);
    this.maybeFail('commit');
    if (this.conflicts > 0) {
      this.conflicts--;
      throw new ConflictError(conds[0]?.key ?? writes[0]?.key ?? '?');
    }
    const holds = conds.every((c) => {
      const e = this.data.get(c.key);
      return c.modRevision === null ? !e : e !== undefined && String(e.rev) === c.modRevision;
    });
    const li = this.lostReplies.findIndex((l) => (holds || l.any) && l.match(writes));
    const lost = li >= 0 ? this.lostReplies.splice(li, 1)[0] : undefined;
    if (!holds) {
      if (lost) {
        this.lost.push({ keys: writes.map((w) => w.key), applied: false });
        throw lost.err;
      }
      const bad = conds.find((c) => {
        const e = this.data.get(c.key);
        return !(c.modRevision === null ? !e : e !== undefined && String(e.rev) === c.modRevision);
      });
      throw new ConflictError(bad?.key ?? '?');
    }
    this.rev++;
    for (const w of writes) {
      if ('delete' in w) this.data.delete(w.key);
      else this.data.set(w.key, { value: w.value, rev: this.rev });
    }
    if (lost) {
      this.lost.push({ keys: writes.map((w) => w.key), applied: true });
      throw lost.err;
    }
    return String(this.rev);
  }

  /** Direct write outside any transaction (a competing writer, or a corrupted value). */
  put(key: string, value: string): void {
    this.rev++;
    this.data.set(key, { value, rev: this.rev });
  }

  async close(): Promise<void> {}
}
