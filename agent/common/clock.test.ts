import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock, sleep } from './clock.js';

test('ManualClock fires timers in due order and skips cancelled ones', () => {
  const c = new ManualClock();
  const fired: string[] = [];
  c.setTimer(30, () => fired.push('b'));
  c.setTimer(10, () => fired.push('a'));
  const h = c.setTimer(20, () => fired.push('x'));
  h.cancel();
  c.advance(25);
  assert.deepEqual(fired, ['a']);
  assert.equal(c.now(), 25);
  c.advance(5);
  assert.deepEqual(fired, ['a', 'b']);
  assert.equal(c.pending(), 0);
});

test('ManualClock: a timer armed by a firing timer fires within the same advance', async () => {
  const c = new ManualClock({ randoms: [0.1, 0.9] });
  const p = sleep(c, 10).then(() => 'done');
  c.advance(10);
  assert.equal(await p, 'done');
  assert.deepEqual([c.random(), c.random(), c.random()], [0.1, 0.9, 0.1]);
});
