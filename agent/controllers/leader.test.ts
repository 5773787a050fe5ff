import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { decideLease, LeaderElector, type LeaseApi } from './leader.js';

const lease = (holder: string, rv = '1', dur = 15) => ({
  holderIdentity: holder,
  leaseDurationSeconds: dur,
  resourceVersion: rv,
});

test('decideLease: create when absent, renew our own, take over a released or expired one, else wait', () => {
  assert.deepEqual(decideLease(null, 'a', 0, 0, 15_000), { op: 'create' });
  assert.deepEqual(decideLease(lease('a'), 'a', 0, 100_000, 15_000), { op: 'renew' });
  assert.deepEqual(decideLease(lease(''), 'a', 0, 0, 15_000), { op: 'takeover' });
  assert.deepEqual(decideLease(lease('b'), 'a', 1000, 5000, 15_000), { op: 'wait', holder: 'b', expiresInMs: 11_000 });
  assert.deepEqual(decideLease(lease('b'), 'a', 1000, 16_000, 15_000), { op: 'takeover' });
  // Expiry uses the lease's own duration when it has one.
  assert.deepEqual(decideLease(lease('b', '1', 2), 'a', 0, 2000, 15_000), { op: 'takeover' });
});

/** An in-memory Lease with resourceVersion preconditions, for two electors at once. */
function memoryLease() {
  let cur: {
    holderIdentity: string;
    leaseDurationSeconds: number;
    resourceVersion: string;
    leaseTransitions: number;
  } | null = null;
  let rv = 0;
  let failNext = 0;
  const conflict = () => Object.assign(new Error('conflict'), { code: 409 });
  const api = (): LeaseApi => ({
    read: async () => (cur ? { ...cur } : null),
    create: async (holder, dur) => {
      if (cur) throw conflict();
      cur = { holderIdentity: holder, leaseDurationSeconds: dur, resourceVersion: String(++rv), leaseTransitions: 0 };
    },
    update: async (rec) => {
      if (failNext > 0) {
        failNext--;
        throw new Error('unreachable');
      }
      if (!cur || rec.resourceVersion !== cur.resourceVersion) throw conflict();
      cur = { ...rec, resourceVersion: String(++rv) };
    },
  });
  return { api, get: () => cur, failUpdates: (n: number) => (failNext = n) };
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

test('LeaderElector: of two replicas exactly one leads; the other takes over only after the lease expires', async () => {
  const clock = new ManualClock();
  const mem = memoryLease();
  const opts = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };
  const a = new LeaderElector(mem.api(), clock, silentLogger, { identity: 'a', ...opts });
  const b = new LeaderElector(mem.api(), clock, silentLogger, { identity: 'b', ...opts });
  a.start();
  b.start();
  for (let i = 0; i < 10; i++) {
    clock.advance(500);
    await flush();
    assert.equal(Number(a.isLeader()) + Number(b.isLeader()), 1, `round ${i}: one leader`);
  }
  const first = a.isLeader() ? a : b;
  const second = first === a ? b : a;
  // The leader cannot renew any more (API unreachable for it): it stops acting at its renew deadline,
  // and the other takes over only when the lease is expired from its own observation.
  mem.failUpdates(1000);
  let gapSeen = false;
  for (let i = 0; i < 12; i++) {
    clock.advance(500);
    await flush();
    assert.ok(!(first.isLeader() && second.isLeader()), 'never two leaders');
    if (!first.isLeader() && !second.isLeader()) gapSeen = true;
  }
  assert.equal(first.isLeader(), false);
  assert.ok(gapSeen, 'a gap between the old leader stopping and the new one starting');
  mem.failUpdates(0);
  for (let i = 0; i < 12 && !second.isLeader(); i++) {
    clock.advance(500);
    await flush();
  }
  assert.equal(second.isLeader(), true);
  assert.equal(mem.get()?.leaseTransitions, 1);
  await second.stop();
  assert.equal(mem.get()?.holderIdentity, '', 'released on stop');
  await first.stop();
});
