/**
 * Per-key request batching: callers push items under a key; one drain loop per key hands the
 * waiting items, at most `maxBatch` at a time, to `run`. Items pushed while a batch runs wait
 * for the next one. This is group commit: concurrent allocations (or releases) touching the same
 * block become one compare-and-swap transaction instead of a pile of conflicting ones.
 * `run` settles each item itself (items carry their own resolve/reject) and must not throw.
 */
export class Batcher<T> {
  private readonly queues = new Map<string, T[]>();

  constructor(
    private readonly maxBatch: number,
    private readonly run: (key: string, batch: T[]) => Promise<void>,
  ) {}

  push(key: string, item: T): void {
    const q = this.queues.get(key);
    if (q) {
      q.push(item);
      return;
    }
    const waiting = [item];
    this.queues.set(key, waiting);
    void this.drain(key, waiting);
  }

  private async drain(key: string, waiting: T[]): Promise<void> {
    try {
      while (waiting.length > 0) await this.run(key, waiting.splice(0, this.maxBatch));
    } finally {
      this.queues.delete(key);
    }
  }
}
