import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIpv6, parseIpv4, parseIpv6 } from './ip.js';

test('IPv6 text is RFC 5952 canonical', () => {
  const cases: [string, string][] = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['FD00:10:244::40', 'fd00:10:244::40'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [input, want] of cases) {
    const b = parseIpv6(input);
    assert.ok(b, input);
    assert.equal(formatIpv6(b, 0), want);
  }
});

test('invalid addresses are refused', () => {
  for (const s of [
    '1::2::3',
    '12345::',
    ':::',
    '1:2:3:4:5:6:7:8:9',
    'g::',
    '',
    ':1::',
    '1:',
    '1:2:3:4:5:6:7:8::',
    '1::2:3:4:5:6:7:8',
    '::1.2.3',
    '1:2:3:4:5:6:7:1.2.3.4',
  ])
    assert.equal(parseIpv6(s), undefined, s);
  for (const s of ['1.2.3', '1.2.3.4.5', '256.0.0.0', '01.2.3.4', 'a.b.c.d', '1..2.3', ''])
    assert.equal(parseIpv4(s), undefined, s);
});
