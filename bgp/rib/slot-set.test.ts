import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mulberry32 } from '../codec/mutate.js';
import { addSlot, EMPTY_SLOTS, hasSlot, isEmptySlots, removeSlot, type SlotSet, slotsOf } from './slot-set.js';

test('slot sets: a number mask below 30, an array of words from slot 30 on', () => {
  let s: SlotSet = EMPTY_SLOTS;
  assert.ok(isEmptySlots(s));
  s = addSlot(s, 0);
  s = addSlot(s, 29);
  assert.equal(typeof s, 'number', 'slots 0..29 fit in one small integer');
  assert.deepEqual(slotsOf(s), [0, 29]);
  s = addSlot(s, 30);
  assert.ok(Array.isArray(s), 'slot 30 needs a second word');
  s = addSlot(s, 95);
  assert.deepEqual(slotsOf(s), [0, 29, 30, 95]);
  for (const i of [0, 29, 30, 95]) assert.ok(hasSlot(s, i), `has ${i}`);
  for (const i of [1, 28, 31, 60, 94, 96, 500]) assert.ok(!hasSlot(s, i), `lacks ${i}`);
  for (const i of [0, 29, 30]) s = removeSlot(s, i);
  assert.ok(!isEmptySlots(s));
  s = removeSlot(s, 95);
  assert.ok(isEmptySlots(s), 'all words zero: empty');
  assert.equal(removeSlot(5, 40), 5, 'removing an absent high slot from a mask changes nothing');
});

test('slot sets agree with a Set over random operations', () => {
  const r = mulberry32(7);
  const rnd = () => Math.floor(r() * 0x7fffffff);
  let s: SlotSet = EMPTY_SLOTS;
  const ref = new Set<number>();
  for (let k = 0; k < 5000; k++) {
    const slot = rnd() % 70;
    if (rnd() % 2) {
      s = addSlot(s, slot);
      ref.add(slot);
    } else {
      s = removeSlot(s, slot);
      ref.delete(slot);
    }
    assert.equal(hasSlot(s, slot), ref.has(slot));
  }
  assert.deepEqual(
    slotsOf(s),
    [...ref].sort((a, b) => a - b),
  );
  assert.equal(isEmptySlots(s), ref.size === 0);
});
