import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIpv4, guestAddress, guestMac, networkOf, parseIpv4, parseIpv4Cidr, RigConfigError } from './addr.js';
import { findAll, isElf, isStaticElf64 } from './elf.js';
import { startGuests } from './guests.js';

test('guest addresses: network + 10 + K in the bridge prefix', () => {
  const br = parseIpv4Cidr('10.99.0.1/24');
  assert.equal(guestAddress(br, 1), '10.99.0.11/24');
  assert.equal(guestAddress(br, 3), '10.99.0.13/24');
  assert.equal(guestAddress(parseIpv4Cidr('172.16.5.77/16'), 2), '172.16.0.12/16');
  assert.equal(formatIpv4(networkOf(parseIpv4Cidr('192.168.7.200/25'))), '192.168.7.128');
  assert.equal(formatIpv4(parseIpv4('255.0.10.1')), '255.0.10.1');
  assert.throws(() => guestAddress(parseIpv4Cidr('10.0.0.1/28'), 5), RigConfigError, 'a /28 has no room for guest 5');
  assert.equal(guestMac(3, 12), '52:54:00:76:03:0c');
});

test('bad addresses: one RigConfigError naming the field and the value', () => {
  for (const bad of ['10.99.0.1', '10.99.0.256/24', '10.99.0/24', 'x/24', '10.99.0.1/31', '10.99.0.1/4']) {
    assert.throws(
      () => parseIpv4Cidr(bad, 'bridgeCidr'),
      (e: unknown) => e instanceof RigConfigError && e.field === 'bridgeCidr' && e.value === bad,
      bad,
    );
  }
});

test('startGuests refuses bad input before creating anything (no root needed)', async () => {
  const cases: [Parameters<typeof startGuests>[0], string][] = [
    [{ n: 0, bridgeCidr: '10.99.0.1/24', command: 'true' }, 'n'],
    [{ n: 2, bridgeCidr: '10.99.0/24', command: 'true' }, 'bridgeCidr'],
    [{ n: 1, bridgeCidr: '10.99.0.1/24' }, 'command'],
    [{ n: 1, bridgeCidr: '10.99.0.1/24', command: 'true', env: { 'BAD-NAME': 'x' } }, 'env'],
    [{ n: 1, bridgeCidr: '10.99.0.1/24', command: 'true', guests: [{ gateway: '1.2.3' }] }, 'guests[0].gateway'],
    [{ n: 1, bridgeCidr: '10.99.0.1/24', command: 'true', mode: 'forever' as 'run' }, 'mode'],
  ];
  for (const [opts, field] of cases) {
    await assert.rejects(startGuests(opts), (e: unknown) => e instanceof RigConfigError && e.field === field, field);
  }
});

function elf64(phTypes: number[]): Buffer {
  const b = Buffer.alloc(64 + 56 * phTypes.length);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1], 0);
  b.writeBigUInt64LE(64n, 0x20);
  b.writeUInt16LE(56, 0x36);
  b.writeUInt16LE(phTypes.length, 0x38);
  phTypes.forEach((t, i) => {
    b.writeUInt32LE(t, 64 + i * 56);
  });
  return b;
}

test('ELF: static means no PT_INTERP; payload search finds every magic', () => {
  assert.equal(isStaticElf64(elf64([1, 1, 4])), true);
  assert.equal(isStaticElf64(elf64([6, 3, 1])), false);
  assert.throws(() => isStaticElf64(Buffer.from('#!/bin/sh\n'.padEnd(80))), RangeError);
  assert.equal(isElf(Buffer.from([0x7f, 0x45, 0x4c, 0x46])), true);
  assert.deepEqual(findAll(Buffer.from('xxABxABxx'), Buffer.from('AB')), [2, 5]);
});
