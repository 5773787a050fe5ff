import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipFamily, stripPrefix } from './ip.js';

test('ipFamily: one parser for the plugin and the cores (a trailing ":" is not IPv6, zone IDs are refused)', () => {
  const cases: [string, 4 | 6 | undefined][] = [
    ['10.0.0.5', 4],
    ['0.0.0.0', 4],
    ['10.0.0.05', undefined],
    ['10.0.0', undefined],
    ['fd00::1', 6],
    ['::ffff:10.0.0.1', 6],
    ['1:2:3:4:5:6:7:8', 6],
    // The old regex check took this one (the empty group after the last ':' was filtered out).
    ['1:2:3:4:5:6:7:8:', undefined],
    ['fe80::1%eth0', undefined],
    ['10.0.0.5/32', undefined],
    ['', undefined],
  ];
  for (const [s, want] of cases) assert.equal(ipFamily(s), want, s);
  assert.equal(stripPrefix('fd00::5/128'), 'fd00::5');
});
