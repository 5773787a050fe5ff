import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { Informer } from './informer.js';
import { KubeApiError, type KubePod, type ListWatchSource, type WatchEventType } from './types.js';

const pod = (name: string, rv: number): KubePod => ({
  metadata: { name, namespace: 'default', resourceVersion: String(rv) },
});

/** A list+watch source that serves `items` in pages and can fail on purpose. */
class FakeSource implements ListWatchSource<KubePod> {
  items: KubePod[] = [];
  rv = '10';
  /** Failures for the next list page calls, in order (undefined = serve). */
  listFailures: (Error | undefined)[] = [];
  watchFailures: (Error | undefined)[] = [];
  listCalls: (string | undefined)[] = [];
  watchCalls: string[] = [];
  onEvent: ((t: WatchEventType, o: KubePod) => void) | null = null;
  onDone: ((err: unknown) => void) | null = null;

  async list(o: { limit: number; continue?: string | undefined }) {
    this.listCalls.push(o.continue);
    const f = this.listFailures.shift();
    if (f) throw f;
    const start = o.continue ? Number(o.continue) : 0;
    const page = this.items.slice(start, start + o.limit);
    const next = start + o.limit < this.items.length ? String(start + o.limit) : undefined;
    return { items: page, resourceVersion: this.rv, continue: next };
  }

  async watch(rv: string, onEvent: (t: WatchEventType, o: KubePod) => void, onDone: (err: unknown) => void) {
    this.watchCalls.push(rv);
    const f = this.watchFailures.shift();
    if (f) throw f;
    this.onEvent = onEvent;
    this.onDone = onDone;
    return { stop: () => undefined };
  }
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

test('informer: synced only after every page; a list failing on page 2 leaves the cache empty and is retried', async () => {
  const src = new FakeSource();
  src.items = [pod('a', 1), pod('b', 2), pod('c', 3)];
  src.listFailures = [undefined, new KubeApiError(500, 'boom')];
  const clock = new ManualClock();
  const inf = new Informer('pods', src, clock, silentLogger, {}, { pageSize: 2, backoffMs: 100 });
  inf.start();
  await flush();
  assert.equal(inf.isSynced(), false);
  assert.equal(inf.items().length, 0, 'nothing from the partial list');
  assert.equal(src.watchCalls.length, 0);
  clock.advance(200);
  await flush();
  assert.equal(inf.isSynced(), true);
  assert.deepEqual(
    inf.items().map((p) => p.metadata?.name),
    ['a', 'b', 'c'],
  );
  assert.deepEqual(src.listCalls, [undefined, '2', undefined, '2']);
  assert.deepEqual(src.watchCalls, ['10']);
  inf.stop();
});

test('informer: watch events update the cache; 410 in an ERROR event relists and reports deletions', async () => {
  const src = new FakeSource();
  src.items = [pod('a', 1), pod('b', 2)];
  const clock = new ManualClock();
  const deleted: string[] = [];
  const added: string[] = [];
  const inf = new Informer(
    'pods',
    src,
    clock,
    silentLogger,
    { onDelete: (p) => deleted.push(p.metadata?.name ?? ''), onAdd: (p) => added.push(p.metadata?.name ?? '') },
    { pageSize: 10 },
  );
  inf.start();
  await flush();
  src.onEvent?.('ADDED', pod('c', 11));
  src.onEvent?.('BOOKMARK', { metadata: { resourceVersion: '15' } });
  assert.equal(inf.resourceVersion(), '15');
  assert.equal(inf.items().length, 3);
  // Meanwhile a and c were deleted, but the informer missed it: the watch expires.
  src.items = [pod('b', 2), pod('d', 20)];
  src.rv = '21';
  src.onEvent?.('ERROR', { code: 410, reason: 'Expired' } as unknown as KubePod);
  await flush();
  assert.equal(inf.stats.gone, 1);
  assert.deepEqual(deleted.sort(), ['a', 'c']);
  assert.deepEqual(added, ['a', 'b', 'c', 'd']);
  assert.deepEqual(src.watchCalls, ['10', '21']);
  assert.equal(inf.isSynced(), true);
  inf.stop();
});

test('informer: a broken watch is not synced until it is open again, from the last resourceVersion, with backoff', async () => {
  const src = new FakeSource();
  src.items = [pod('a', 1)];
  const clock = new ManualClock({ randoms: [0.99] });
  const inf = new Informer('pods', src, clock, silentLogger, {}, { backoffMs: 100, maxBackoffMs: 1000 });
  inf.start();
  await flush();
  src.onEvent?.('MODIFIED', pod('a', 12));
  src.watchFailures = [new Error('ECONNREFUSED')];
  src.onDone?.(new Error('socket hang up'));
  assert.equal(inf.isSynced(), false);
  clock.advance(99);
  await flush();
  assert.deepEqual(src.watchCalls, ['10'], 'backoff: not yet');
  clock.advance(2);
  await flush();
  assert.deepEqual(src.watchCalls, ['10', '12']);
  clock.advance(400); // second failure doubled the delay
  await flush();
  assert.equal(src.watchCalls.length, 3);
  assert.equal(src.watchCalls[2], '12');
  assert.equal(inf.isSynced(), true);
  assert.equal(src.listCalls.length, 1, 'no relist for a transient failure');
  // A normal end (server timeout) re-watches at once.
  src.onDone?.(null);
  await flush();
  clock.advance(0);
  await flush();
  assert.equal(src.watchCalls.length, 4);
  inf.stop();
});
