import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeContext } from './context.js';
import { loadFixtures } from './fixtures/load.js';
import { decodeMessage } from './message.js';
import { checkInput, mulberry32, mutate } from './mutate.js';

const CONTEXTS = [
  makeContext(),
  makeContext({ as4: false }),
  makeContext({ extendedMessage: true, addPath: { 'ipv4-unicast': 'both', 'ipv6-unicast': 'both' } }),
];

test('20,000 mutated fixtures: decode never throws, decode/encode agree, framer never throws', () => {
  const fixtures = loadFixtures();
  const rnd = mulberry32(0x5eed);
  for (let i = 0; i < 20_000; i++) {
    const fx = fixtures[i % fixtures.length];
    assert.ok(fx);
    const ctx = CONTEXTS[i % CONTEXTS.length] ?? makeContext();
    const failure = checkInput(mutate(fx.bytes, rnd), ctx, rnd);
    assert.equal(failure, undefined, JSON.stringify(failure));
  }
});

test('regression (fuzz seed 1): unknown attributes out of type order round-trip in canonical order', () => {
  const input = Buffer.from(
    'ffffffffffffffffffffffffffffffff0058020000003c4001010140021002010000fde901020000fdea0000fdeb4003040a630003c0ab04000000c88009040a000009800a080a0000010a000002e06402abcd1a0af40180',
    'hex',
  );
  assert.equal(checkInput(input, makeContext(), mulberry32(1)), undefined);
});

test('2,000 random byte strings with a valid header never throw', () => {
  const rnd = mulberry32(7);
  for (let i = 0; i < 2_000; i++) {
    const n = 19 + Math.floor(rnd() * 200);
    const b = new Uint8Array(n);
    for (let j = 0; j < n; j++) b[j] = Math.floor(rnd() * 256);
    b.fill(0xff, 0, 16);
    b[16] = n >> 8;
    b[17] = n & 0xff;
    b[18] = 1 + Math.floor(rnd() * 5);
    assert.doesNotThrow(() => decodeMessage(b, CONTEXTS[i % 3] ?? makeContext()));
  }
});
