import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assign,
  assignOrdinal,
  countsByHandle,
  ipToOrdinal,
  isEmpty,
  newBlock,
  ordinalToIp,
  releaseHandle,
  releaseOrdinals,
  validateBlock,
} from './block.js';
import { IpamError } from './errors.js';

const owner = { node: 'n1', pod: 'p', namespace: 'default' };

test('new /26 block has 64 free ordinals in order and validates', () => {
  const b = newBlock('10.244.0.64/26', 'host:n1', 1000);
  assert.equal(b.allocations.length, 64);
  assert.deepEqual(b.unallocated.slice(0, 3), [0, 1, 2]);
  assert.deepEqual(validateBlock(b), []);
  assert.equal(ordinalToIp(b, 63), '10.244.0.127');
  assert.equal(ipToOrdinal(b, '10.244.0.70'), 6);
  assert.equal(ipToOrdinal(b, '10.244.0.128'), -1);
});

test('assign takes from the head; release appends to the tail (FIFO reuse)', () => {
  const b0 = newBlock('10.0.0.0/29', null, 1);
  const a1 = assign(b0, 2, 'h1', owner, 5);
  assert.deepEqual(a1.ordinals, [0, 1]);
  assert.deepEqual(b0.unallocated, [0, 1, 2, 3, 4, 5, 6, 7], 'input block is not mutated');
  const r = releaseHandle(a1.block, 'h1');
  assert.deepEqual(
    r.released.map((x) => x.ordinal),
    [0, 1],
  );
  assert.deepEqual(r.block.unallocated, [2, 3, 4, 5, 6, 7, 0, 1]);
  const a2 = assign(r.block, 1, 'h2', owner, 6);
  assert.deepEqual(a2.ordinals, [2], 'the longest-free address is reused first, not the just-released one');
  assert.equal(a2.block.attributes.length, 1, 'unreferenced attribute entries are dropped');
});

test('assign never over-allocates and shares one attribute per call', () => {
  const b = newBlock('10.0.0.0/30', null, 1);
  const a = assign(b, 10, 'h', owner, 1);
  assert.equal(a.ordinals.length, 4);
  assert.equal(a.block.attributes.length, 1);
  assert.equal(assign(a.block, 1, 'x', owner, 1).ordinals.length, 0);
  assert.deepEqual(Object.fromEntries(countsByHandle(a.block)), { h: 4 });
});

test('assignOrdinal of a taken address is in-use; release is idempotent', () => {
  const b = assignOrdinal(newBlock('10.0.0.0/29', null, 1), 3, 'h', owner, 1);
  assert.throws(
    () => assignOrdinal(b, 3, 'h2', owner, 1),
    (e: unknown) => e instanceof IpamError && e.kind === 'in-use',
  );
  const r1 = releaseOrdinals(b, [3]);
  assert.equal(r1.released.length, 1);
  assert.ok(isEmpty(r1.block));
  const r2 = releaseOrdinals(r1.block, [3]);
  assert.equal(r2.released.length, 0);
  assert.equal(r2.block, r1.block);
});

test('release with a stale sequence number keeps the re-assigned address (GC ABA guard)', () => {
  let b = newBlock('10.0.0.0/29', null, 100);
  b = assign(b, 1, 'old', owner, 1).block;
  const seqOld = b.sequenceNumberForAllocation['0']!;
  b = releaseOrdinals(b, [0]).block;
  b = { ...b, sequenceNumber: b.sequenceNumber + 5, unallocated: [0, ...b.unallocated.filter((o) => o !== 0)] };
  b = assign(b, 1, 'new', owner, 2).block;
  assert.notEqual(b.sequenceNumberForAllocation['0'], seqOld);
  const r = releaseOrdinals(b, [0], new Map([[0, seqOld]]));
  assert.equal(r.released.length, 0);
});

test('validateBlock finds structural corruption', () => {
  const b = assign(newBlock('10.0.0.0/30', null, 1), 1, 'h', owner, 1).block;
  assert.ok(validateBlock({ ...b, unallocated: [...b.unallocated, 1] }).some((p) => p.includes('twice')));
  assert.ok(
    validateBlock({ ...b, unallocated: b.unallocated.slice(1) }).some((p) => p.includes('missing from unallocated')),
  );
  assert.ok(validateBlock({ ...b, attributes: [] }).some((p) => p.includes('missing attribute')));
  assert.ok(validateBlock({ ...b, allocations: b.allocations.slice(1) }).some((p) => p.includes('slots')));
});
