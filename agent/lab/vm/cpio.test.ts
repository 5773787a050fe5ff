import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCpio, encodeCpio } from './cpio.js';

test('newc archive: members round-trip in order with modes, data and device numbers', () => {
  const data = Buffer.from('#!/bin/sh\necho hi\n');
  const buf = encodeCpio([
    { kind: 'dir', path: 'bin' },
    { kind: 'file', path: 'bin/x', data, mode: 0o755 },
    { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
    { kind: 'chardev', path: 'dev-console', major: 5, minor: 1 },
    { kind: 'file', path: 'empty', data: new Uint8Array(0) },
  ]);
  assert.equal(buf.length % 4, 0, 'archive is 4-byte aligned');
  const m = decodeCpio(buf);
  assert.deepEqual(
    m.map((x) => [x.path, x.mode.toString(8)]),
    [
      ['bin', '40755'],
      ['bin/x', '100755'],
      ['bin/sh', '120777'],
      ['dev-console', '20600'],
      ['empty', '100644'],
    ],
  );
  assert.deepEqual(m[1]!.data, data);
  assert.equal(m[2]!.data.toString(), 'busybox');
  assert.deepEqual([m[3]!.rdevMajor, m[3]!.rdevMinor], [5, 1]);
  assert.equal(buf.subarray(0, 6).toString(), '070701');
  assert.ok(buf.includes(Buffer.from('TRAILER!!!\0')), 'ends with the trailer');
});

test('name and data padding: every length 1..9 decodes back', () => {
  for (let n = 1; n <= 9; n++) {
    const path = 'p'.repeat(n);
    const data = Buffer.alloc(n, n);
    const [m] = decodeCpio(encodeCpio([{ kind: 'file', path, data }]));
    assert.equal(m!.path, path);
    assert.deepEqual(m!.data, data);
  }
});

test('absolute or empty paths are refused; a truncated archive is a RangeError', () => {
  assert.throws(() => encodeCpio([{ kind: 'dir', path: '/bin' }]), RangeError);
  assert.throws(() => encodeCpio([{ kind: 'dir', path: '' }]), RangeError);
  const buf = encodeCpio([{ kind: 'file', path: 'a', data: Buffer.alloc(100) }]);
  assert.throws(() => decodeCpio(buf.subarray(0, 150)), RangeError);
  assert.throws(() => decodeCpio(Buffer.from('x'.repeat(200))), /bad magic/);
});
