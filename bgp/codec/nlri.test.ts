import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteBoundedSeq, LayoutError, PrefixLayout } from './layouts.js';
import { decodePrefixes, NlriStatus, writePrefixes } from './nlri.js';
import type { Prefix } from './types.js';

const V4: Prefix[] = [
  { prefix: '0.0.0.0', len: 0 },
  { prefix: '10.0.0.0', len: 8 },
  { prefix: '10.244.1.64', len: 26 },
  { prefix: '192.168.255.255', len: 32 },
  { prefix: '172.16.0.0', len: 12 },
];
const V6: Prefix[] = [
  { prefix: '::', len: 0 },
  { prefix: 'fd00:10:244:1::', len: 64 },
  { prefix: '2001:db8::1', len: 128 },
  { prefix: 'fd00:10:244::40', len: 122 },
];

function enc(list: Prefix[], bits: 32 | 128, addPath: boolean): Buffer {
  const buf = Buffer.alloc(4096);
  return buf.subarray(0, writePrefixes(list, bits, addPath, buf, 0, buf.length));
}

for (const [name, list, bits] of [
  ['IPv4', V4, 32],
  ['IPv6', V6, 128],
] as const) {
  for (const addPath of [false, true]) {
    const withIds = addPath ? list.map((p, i) => ({ ...p, pathId: i + 1 })) : [...list];
    test(`${name}${addPath ? ' ADD-PATH' : ''}: direct loop round trip`, () => {
      const out: Prefix[] = [];
      assert.equal(
        decodePrefixes(enc(withIds, bits, addPath), 0, enc(withIds, bits, addPath).length, bits, addPath, out),
        0,
      );
      assert.deepStrictEqual(out, withIds);
    });
    test(`${name}${addPath ? ' ADD-PATH' : ''}: buffer-layout PrefixLayout agrees with the direct loop`, () => {
      const seq = new ByteBoundedSeq(new PrefixLayout(bits, addPath));
      const bytes = enc(withIds, bits, addPath);
      assert.deepStrictEqual(seq.decodeRange(bytes, 0, bytes.length), withIds);
      const buf = Buffer.alloc(4096);
      const n = seq.encode(withIds, buf, 0);
      assert.equal(buf.subarray(0, n).toString('hex'), bytes.toString('hex'));
    });
  }
}

test('host bits are cleared on decode', () => {
  const out: Prefix[] = [];
  decodePrefixes(Buffer.from('1a0af401ff', 'hex'), 0, 5, 32, false, out);
  assert.deepEqual(out, [{ prefix: '10.244.1.192', len: 26 }]);
  const out6: Prefix[] = [];
  decodePrefixes(Buffer.from('0cffff', 'hex'), 0, 3, 128, false, out6);
  assert.deepEqual(out6, [{ prefix: 'fff0::', len: 12 }]);
});

test('bad prefixes: length too long and truncated', () => {
  assert.equal(decodePrefixes(Buffer.from('21000000000000', 'hex'), 0, 7, 32, false, []), NlriStatus.LengthTooLong);
  assert.equal(decodePrefixes(Buffer.from('1a0af4', 'hex'), 0, 3, 32, false, []), NlriStatus.Truncated);
  assert.equal(decodePrefixes(Buffer.from('0000', 'hex'), 0, 2, 32, true, []), NlriStatus.Truncated);
  assert.equal(decodePrefixes(Buffer.from('81', 'hex'), 0, 1, 128, false, []), NlriStatus.LengthTooLong);
  const seq = new ByteBoundedSeq(new PrefixLayout(32, false));
  assert.throws(() => seq.decodeRange(Buffer.from('1a0af4', 'hex'), 0, 3), LayoutError);
  assert.throws(() => seq.decodeRange(Buffer.from('21000000000000', 'hex'), 0, 7), LayoutError);
});

test('encoding rejects invalid prefixes', () => {
  assert.throws(() => enc([{ prefix: '10.0.0.256', len: 8 }], 32, false), { name: 'EncodeError' });
  assert.throws(() => enc([{ prefix: '10.0.0.0', len: 33 }], 32, false), { name: 'EncodeError' });
  assert.throws(() => enc([{ prefix: 'fd00::', len: 129 }], 128, false), { name: 'EncodeError' });
});

test('writePrefixes: a prefix with addr4 encodes exactly as its text (host bits cleared, every length)', () => {
  for (const len of [0, 1, 7, 8, 9, 15, 16, 24, 26, 31, 32]) {
    const text = { prefix: '203.0.113.77', len };
    const num = { prefix: '203.0.113.77', len, addr4: 0xcb00714d };
    const a = new Uint8Array(8);
    const b = new Uint8Array(8);
    assert.equal(writePrefixes([text], 32, false, a, 0, 8), writePrefixes([num], 32, false, b, 0, 8));
    assert.deepEqual(b, a, `len ${len}`);
  }
});
