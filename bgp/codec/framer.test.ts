import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadFixtures } from './fixtures/load.js';
import { Framer } from './framer.js';

const stream = Buffer.concat(loadFixtures().map((f) => f.bytes));
const expected = loadFixtures().map((f) => f.bytes.toString('hex'));
const hexes = (frames: Uint8Array[]) => frames.map((f) => Buffer.from(f).toString('hex'));

test('whole stream in one chunk -> every message', () => {
  const r = new Framer().push(stream);
  assert.equal(r.error, undefined);
  assert.deepEqual(hexes(r.frames), expected);
});

test('split at every offset -> same messages', () => {
  for (let i = 0; i <= stream.length; i++) {
    const f = new Framer();
    const a = f.push(stream.subarray(0, i));
    const b = f.push(stream.subarray(i));
    assert.deepEqual(hexes([...a.frames, ...b.frames]), expected, `split at ${i}`);
    assert.equal(f.buffered, 0);
  }
});

test('byte by byte -> same messages, frames safe to keep', () => {
  const f = new Framer();
  const out: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i++) out.push(...f.push(stream.subarray(i, i + 1)).frames);
  assert.deepEqual(hexes(out), expected);
});

test('bad marker is rejected on its first byte (1/1), before a whole header arrives', () => {
  const f = new Framer();
  const r = f.push(Buffer.from('ffff00', 'hex'));
  assert.deepEqual([r.error?.code, r.error?.subcode], [1, 1]);
  // and the framer stays failed
  assert.deepEqual([f.push(stream).error?.code, f.push(stream).frames.length], [1, 0]);
});

test('length above the maximum is rejected as soon as the header is there (1/2 with the length)', () => {
  const f = new Framer();
  const r = f.push(Buffer.from(`${'ff'.repeat(16)}ffff02`, 'hex'));
  assert.deepEqual([r.error?.code, r.error?.subcode], [1, 2]);
  assert.equal(Buffer.from(r.error?.data ?? []).toString('hex'), 'ffff');
  assert.equal(f.buffered, 0);
});

test('length below 19 is rejected (1/2)', () => {
  const r = new Framer().push(Buffer.from(`${'ff'.repeat(16)}001204`, 'hex'));
  assert.deepEqual([r.error?.code, r.error?.subcode], [1, 2]);
});

test('frames before a bad message are still returned', () => {
  const ka = Buffer.from(`${'ff'.repeat(16)}001304`, 'hex');
  const r = new Framer().push(Buffer.concat([ka, ka, Buffer.from('00', 'hex')]));
  assert.equal(r.frames.length, 2);
  assert.deepEqual([r.error?.code, r.error?.subcode], [1, 1]);
});

test('extended messages: 65535 accepted once maxMessageLen is raised', () => {
  const big = Buffer.alloc(65535, 0);
  big.fill(0xff, 0, 16);
  big.writeUInt16BE(65535, 16);
  big[18] = 2;
  assert.deepEqual([new Framer().push(big).error?.subcode], [2]);
  const f = new Framer();
  f.maxMessageLen = 65535;
  let n = 0;
  for (let i = 0; i < big.length; i += 1000) n += f.push(big.subarray(i, i + 1000)).frames.length;
  assert.equal(n, 1);
});

test('buffer stays bounded by one message while waiting', () => {
  const f = new Framer();
  const big = loadFixtures('update-extended-length')[0]?.bytes ?? Buffer.alloc(0);
  assert.equal(f.push(big.subarray(0, 50)).frames.length, 0);
  assert.equal(f.buffered, 50);
  assert.equal(f.push(big.subarray(50)).frames.length, 1);
  assert.equal(f.buffered, 0);
});
