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

test('ManualClock: a timer armed by a firing timer fires within the same advance', () => {
  const c = new ManualClock();
  const fired: [string, number][] = [];
  c.setTimer(10, () => {
    fired.push(['outer', c.now()]);
    // Due at 15, inside the advance to 20: must fire in it, at its own due time.
    c.setTimer(5, () => fired.push(['inner', c.now()]));
    // Due at 25, past the advance: must wait.
    c.setTimer(15, () => fired.push(['late', c.now()]));
  });
  c.advance(20);
  assert.deepEqual(fired, [
    ['outer', 10],
    ['inner', 15],
  ]);
  assert.equal(c.now(), 20);
  assert.equal(c.pending(), 1);
  c.advance(5);
  assert.deepEqual(fired.at(-1), ['late', 25]);
});

test('ManualClock: sleep resolves on advance; random() cycles the given values', async () => {
  const c = new ManualClock({ randoms: [0.1, 0.9] });
  const p = sleep(c, 10).then(() => 'done');
  c.advance(10);
  assert.equal(await p, 'done');
  assert.deepEqual([c.random(), c.random(), c.random()], [0.1, 0.9, 0.1]);
});
