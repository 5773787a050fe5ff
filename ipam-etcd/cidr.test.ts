import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  blockCount,
  blockOf,
  cidrFromKey,
  cidrToKey,
  formatCidr,
  formatIp,
  nthBlock,
  overlaps,
  parseCidr,
  parseIp,
} from './cidr.js';
import { IpamError } from './errors.js';

test('IPv4 and IPv6 addresses round-trip through bigint (RFC 5952 output)', () => {
  for (const s of [
    '0.0.0.0',
    '10.244.0.64',
    '255.255.255.255',
    '::',
    '::1',
    'fd00:10:244::',
    'fd00:10:244:1::40',
    '2001:db8::1:0:0:1',
    '1:2:3:4:5:6:7:8',
  ]) {
    const { family, addr } = parseIp(s);
    assert.equal(formatIp(family, addr), s);
  }
  assert.equal(formatIp(6, parseIp('FD00:0:0:0:0:0:0:1').addr), 'fd00::1');
  assert.equal(formatIp(6, parseIp('::ffff:10.0.0.1').addr), '::ffff:a00:1');
});

test('parseCidr rejects host bits, bad lengths and garbage with IpamError invalid', () => {
  for (const bad of ['10.244.0.1/16', '10.0.0.0/33', 'fd00::/129', '10.0.0.0', 'x/8', '10.0.0.0/-1', '300.1.1.1/8']) {
    assert.throws(
      () => parseCidr(bad),
      (e: unknown) => e instanceof IpamError && e.kind === 'invalid',
      bad,
    );
  }
  assert.equal(formatCidr(parseCidr('10.244.0.0/16')), '10.244.0.0/16');
});

test('block arithmetic: nth block, block of an address, counts (IPv4 and IPv6)', () => {
  const p = parseCidr('10.244.0.0/16');
  assert.equal(blockCount(p, 26), 1024n);
  assert.equal(formatCidr(nthBlock(p, 26, 1n)), '10.244.0.64/26');
  assert.equal(formatCidr(nthBlock(p, 26, 1023n)), '10.244.255.192/26');
  const a = parseIp('10.244.3.77');
  assert.equal(formatCidr(blockOf(a.family, a.addr, 26)), '10.244.3.64/26');
  const p6 = parseCidr('fd00:10:244::/56');
  assert.equal(blockCount(p6, 122), 1n << 66n);
  assert.equal(formatCidr(nthBlock(p6, 122, 1n)), 'fd00:10:244::40/122');
});

test('overlap and key encoding', () => {
  assert.equal(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.244.0.0/16')), true);
  assert.equal(overlaps(parseCidr('10.0.0.0/16'), parseCidr('10.1.0.0/16')), false);
  assert.equal(overlaps(parseCidr('10.0.0.0/8'), parseCidr('fd00::/8')), false);
  assert.equal(cidrToKey('fd00::40/122'), 'fd00::40-122');
  assert.equal(cidrFromKey('fd00::40-122'), 'fd00::40/122');
  assert.equal(cidrFromKey(cidrToKey('10.244.0.64/26')), '10.244.0.64/26');
});

test('parseIp: the shared parser (no node:net) refuses what is not one address, with IpamError invalid', () => {
  for (const bad of [
    '10.0.0.01',
    '10.0.0',
    '10.0.0.256',
    ' 10.0.0.1',
    'fe80::1%eth0',
    '1:2:3:4:5:6:7:8:',
    '1::2::3',
    '10.0.0.0/8',
    '',
    '::ffff:10.0.0.1.2',
  ]) {
    assert.throws(
      () => parseIp(bad),
      (e: unknown) => e instanceof IpamError && e.kind === 'invalid',
      bad,
    );
  }
  assert.deepEqual(parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'), { family: 6, addr: (1n << 128n) - 1n });
  assert.deepEqual(parseIp('255.255.255.254'), { family: 4, addr: 0xfffffffen });
  assert.deepEqual(parseIp('::1.2.3.4'), { family: 6, addr: 0x01020304n });
});
