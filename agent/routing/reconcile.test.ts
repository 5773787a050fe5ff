import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../common/clock.js';
import { silentLogger } from '../common/log.js';
import { FakeKernel } from './fake-kernel.js';
import { type KernelErrorKind, type KernelOp, objectKey } from './kernel.js';
import { RouteReconciler } from './reconcile.js';
import type { DesiredState, RouteSpec } from './types.js';

const r = (n: number, via = '192.168.1.2'): RouteSpec => ({
  family: 4,
  dst: `10.244.${n}.0/26`,
  type: 'unicast',
  gateway: via,
  dev: 'tunl0',
  onlink: true,
});
const state = (routes: RouteSpec[]): Pick<DesiredState, 'routes' | 'neighbours' | 'fdb'> => ({
  routes,
  neighbours: [],
  fdb: [],
});

function setup(opts: { startupGraceMs?: number } = {}) {
  const clock = new ManualClock();
  const kernel = new FakeKernel();
  const rec = new RouteReconciler({ kernel, clock, log: silentLogger, retryBaseMs: 100, maxRetryMs: 1000, ...opts });
  /** Advances the clock in small steps, letting the async passes run, until idle. */
  const settle = async (ms = 0) => {
    for (let t = 0; t <= ms; t += 10) {
      clock.advance(t === 0 ? 0 : 10);
      for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
    }
    await rec.idle();
  };
  return { clock, kernel, rec, settle };
}

test('applies desired routes, neighbours and FDB entries; neighbours before routes', async () => {
  const { kernel, rec, settle } = setup();
  rec.start();
  rec.setDesired({
    routes: [r(1)],
    neighbours: [{ dev: 'petrel.vxlan', ip: '10.244.1.1', mac: '66:00:00:00:00:0b' }],
    fdb: [{ dev: 'petrel.vxlan', mac: '66:00:00:00:00:0b', dst: '192.168.1.2' }],
  });
  await settle();
  assert.equal(kernel.routes.size, 1);
  assert.equal(kernel.neighbours.size, 1);
  assert.equal(kernel.fdb.size, 1);
  const ops = kernel.calls.filter((c) => c.op === 'add').map((c) => c.key!.split('|')[0]);
  assert.deepEqual(ops.slice(-1), ['route']);
  assert.equal(rec.status().converged, true);
  assert.equal(rec.status().routesProgrammed, 1);
  await rec.stop();
});

const OPS: Exclude<KernelOp, 'list'>[] = ['add', 'replace', 'delete'];
const KINDS: KernelErrorKind[] = ['not-found', 'exists', 'iface-down', 'transient', 'other'];
for (const op of OPS) {
  for (const kind of KINDS) {
    test(`${op} fails once with ${kind}: retried with backoff, converges`, async () => {
      const { kernel, rec, settle } = setup();
      // Start state: r(1) ours with an old next hop (for replace), r(2) ours and not desired (for delete).
      kernel.routes.set('4|10.244.1.0/26', r(1, '192.168.1.9'));
      kernel.routes.set('4|10.244.2.0/26', r(2));
      kernel.failNext(op, kind);
      rec.start();
      rec.setDesired(state([r(1), r(3)]));
      await settle(3000);
      assert.equal(kernel.failuresHit, 1, 'the failure was hit');
      if (op === 'delete' && (kind === 'not-found' || kind === 'iface-down')) {
        // not-found (or no such device) on delete means "already gone": done, not retried (the
        // next resync would see it).
        assert.equal(rec.status().failures.length, 0);
        kernel.routes.delete('4|10.244.2.0/26');
      }
      assert.deepEqual([...kernel.routes.keys()].sort(), ['4|10.244.1.0/26', '4|10.244.3.0/26']);
      assert.deepEqual(kernel.routes.get('4|10.244.1.0/26'), r(1));
      assert.equal(rec.status().failures.length, 0);
      assert.equal(rec.status().converged, true);
      await rec.stop();
    });
  }
}

test('list fails with transient: the full sync is retried, then everything converges', async () => {
  const { kernel, rec, settle } = setup();
  kernel.failNext('list', 'transient', 2);
  rec.start();
  rec.setDesired(state([r(1)]));
  await settle(2000);
  assert.equal(kernel.failuresHit, 2);
  assert.equal(kernel.routes.size, 1);
  assert.equal(rec.status().converged, true);
  await rec.stop();
});

test('one route that keeps failing does not block the others; it is retried with growing backoff', async () => {
  const { kernel, rec, settle, clock } = setup();
  kernel.failAlways('add', 'iface-down', (c) => c.obj.type === 'route' && c.obj.route.dst === '10.244.5.0/26');
  rec.start();
  rec.setDesired(state([1, 2, 3, 4, 5, 6].map((n) => r(n))));
  await settle(5000);
  assert.equal(kernel.routes.size, 5);
  const st = rec.status();
  assert.equal(st.failures.length, 1);
  assert.equal(st.failures[0]?.key, 'route|4|10.244.5.0/26');
  assert.equal(st.failures[0]?.kind, 'iface-down');
  const attempts = st.failures[0]!.attempts;
  assert.ok(attempts >= 4 && attempts <= 10, `attempts ${attempts}: backoff, not a busy loop`);
  assert.equal(st.converged, false);
  kernel.clearFailures();
  await settle(1500);
  assert.equal(kernel.routes.size, 6);
  assert.equal(rec.status().converged, true);
  assert.ok(clock.now() > 0);
  await rec.stop();
});

test('adopt on start: routes already right are not touched (no delete, no re-add)', async () => {
  const { kernel, rec, settle } = setup();
  for (const n of [1, 2, 3]) kernel.routes.set(`4|10.244.${n}.0/26`, r(n));
  rec.setDesired(state([r(1), r(2), r(3)]));
  rec.start();
  await settle();
  assert.deepEqual(
    kernel.calls.filter((c) => c.op !== 'list' && c.op !== 'apply'),
    [],
  );
  assert.equal(rec.status().routesProgrammed, 3);
});

test('restart with an incomplete desired state keeps our other routes until complete (no blackhole)', async () => {
  const { kernel, rec, settle } = setup({ startupGraceMs: 60_000 });
  kernel.routes.set('4|10.244.1.0/26', r(1));
  kernel.routes.set('4|10.244.2.0/26', r(2));
  rec.start();
  rec.setDesired(state([r(1)]), { complete: false }); // BGP has not re-learned r(2) yet
  await settle(100);
  assert.equal(kernel.routes.size, 2);
  assert.equal(rec.status().deletionsDeferred, 1);
  rec.setDesired(state([r(1)]), { complete: true });
  await settle();
  assert.deepEqual([...kernel.routes.keys()], ['4|10.244.1.0/26']);
  await rec.stop();
});

test('the startup grace ends deferral even without a complete state', async () => {
  const { kernel, rec, settle } = setup({ startupGraceMs: 500 });
  kernel.routes.set('4|10.244.2.0/26', r(2));
  rec.start();
  rec.setDesired(state([]), { complete: false });
  await settle(100);
  assert.equal(kernel.routes.size, 1);
  await settle(600);
  assert.equal(kernel.routes.size, 0);
  await rec.stop();
});

test('drift: a route deleted by hand is re-added on the event, a changed one restored', async () => {
  const { kernel, rec, settle } = setup();
  rec.start();
  rec.setDesired(state([r(1), r(2)]));
  await settle();
  kernel.deleteByHand(r(1));
  kernel.changeByHand(r(2, '192.168.1.77'));
  await settle();
  assert.deepEqual(kernel.routes.get('4|10.244.1.0/26'), r(1));
  assert.deepEqual(kernel.routes.get('4|10.244.2.0/26'), r(2));
  await rec.stop();
});

test('foreign routes are never touched: an add on a foreign destination fails exists and stays failed', async () => {
  const { kernel, rec, settle } = setup();
  const pod: RouteSpec = { family: 4, dst: '10.244.1.0/26', type: 'unicast', dev: 'petr123' };
  kernel.foreign.set('4|10.244.1.0/26', pod);
  rec.start();
  rec.setDesired(state([r(1), r(2)]));
  await settle(2000);
  assert.deepEqual(kernel.foreign.get('4|10.244.1.0/26'), pod);
  assert.ok(!kernel.calls.some((c) => c.op === 'replace' || c.op === 'delete'));
  assert.equal(kernel.routes.size, 1);
  assert.equal(rec.status().failures[0]?.kind, 'exists');
  kernel.emit({ type: 'route', deleted: false, ours: false, route: pod }); // foreign events are ignored
  await settle();
  assert.deepEqual(kernel.foreign.get('4|10.244.1.0/26'), pod);
  await rec.stop();
});

test('periodic resync repairs drift that no event reported', async () => {
  const clock = new ManualClock();
  const kernel = new FakeKernel();
  const rec = new RouteReconciler({ kernel, clock, log: silentLogger, resyncIntervalMs: 1000 });
  rec.start();
  rec.setDesired(state([r(1)]));
  const turn = async (ms: number) => {
    clock.advance(ms);
    for (let i = 0; i < 5; i++) await new Promise((res) => setImmediate(res));
    await rec.idle();
  };
  await turn(0);
  kernel.changeByHand(r(1, '192.168.1.99'), true); // silent: no event
  await turn(500);
  assert.equal(kernel.routes.get('4|10.244.1.0/26')?.gateway, '192.168.1.99');
  await turn(600);
  assert.equal(kernel.routes.get('4|10.244.1.0/26')?.gateway, '192.168.1.2');
  assert.ok(rec.status().fullSyncs >= 2);
  await rec.stop();
});

test('a lost event stream forces a full resync', async () => {
  const { kernel, rec, settle } = setup();
  rec.start();
  rec.setDesired(state([r(1)]));
  await settle();
  const lists = kernel.calls.filter((c) => c.op === 'list').length;
  kernel.routes.clear();
  kernel.emit({ type: 'lost', reason: 'test' });
  await settle();
  assert.ok(kernel.calls.filter((c) => c.op === 'list').length > lists);
  assert.equal(kernel.routes.size, 1);
  await rec.stop();
});

test('stop() unsubscribes and leaves kernel routes in place', async () => {
  const { kernel, rec, settle } = setup();
  rec.start();
  rec.setDesired(state([r(1)]));
  await settle();
  await rec.stop();
  assert.equal(kernel.watcherCount(), 0);
  assert.equal(kernel.routes.size, 1);
  assert.equal(objectKey({ type: 'route', route: r(1) }), 'route|4|10.244.1.0/26');
});
