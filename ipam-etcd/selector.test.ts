import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpamError } from './errors.js';
import { parseSelector } from './selector.js';

const labels = { zone: 'a', role: 'worker', 'topology.kubernetes.io/region': 'eu' };

test('selector expressions evaluate like Calico selectors', () => {
  const rows: [string, boolean][] = [
    ['all()', true],
    ['!all()', false],
    ["zone == 'a'", true],
    ["zone != 'a'", false],
    ["zone == 'b' || role == 'worker'", true],
    ["zone == 'a' && role == 'master'", false],
    ['has(role)', true],
    ['!has(gpu)', true],
    ["zone in {'a', 'c'}", true],
    ["zone not in {'a'}", false],
    ["gpu not in {'x'}", true],
    ["(zone == 'b' || zone == 'a') && has(topology.kubernetes.io/region)", true],
    ['topology.kubernetes.io/region == "eu"', true],
  ];
  for (const [src, want] of rows) assert.equal(parseSelector(src)(labels), want, src);
});

test('malformed selectors are IpamError invalid with a position', () => {
  for (const bad of ['', 'zone ==', "zone = 'a'", "zone == 'a' &&", '(all()', "zone in {'a'", 'all() x']) {
    assert.throws(
      () => parseSelector(bad),
      (e: unknown) => e instanceof IpamError && e.kind === 'invalid',
      bad,
    );
  }
});
