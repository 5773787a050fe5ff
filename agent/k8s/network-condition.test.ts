import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { NETWORK_UP, NetworkCondition } from './network-condition.js';

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

test('NetworkUnavailable=False only once routes are ready; a failed patch is retried, then it is done', async () => {
  const clock = new ManualClock();
  const calls: unknown[] = [];
  let fail = 1;
  let ready = false;
  const nc = new NetworkCondition(
    'n1',
    {
      setNodeCondition: async (name, cond) => {
        calls.push({ name, cond });
        if (fail-- > 0) throw new Error('API unreachable');
      },
    },
    () => ready,
    clock,
    silentLogger,
    1000,
  );
  nc.start();
  clock.advance(5000);
  await flush();
  assert.equal(calls.length, 0, 'not before the routes are in place');
  ready = true;
  clock.advance(1000);
  await flush();
  assert.equal(calls.length, 1);
  assert.equal(nc.done, false);
  clock.advance(2000);
  await flush();
  assert.deepEqual(calls[1], { name: 'n1', cond: NETWORK_UP });
  assert.equal(nc.done, true);
  clock.advance(60_000);
  await flush();
  assert.equal(calls.length, 2, 'written once');
  nc.stop();
});
