import assert from 'node:assert/strict';
import { test } from 'node:test';
import { natScript } from './nat.js';
import type { PoolSpec } from './types.js';

const pool = (cidr: string, natOutgoing: boolean): PoolSpec => ({
  cidr,
  ipipMode: 'Never',
  vxlanMode: 'Never',
  natOutgoing,
  disabled: false,
});

test('natOutgoing pools masquerade to destinations outside every pool, per family', () => {
  const s = natScript([pool('10.244.0.0/16', true), pool('10.245.0.0/16', false), pool('fd00:10::/64', true)]);
  assert.match(s, /table ip petrel \{\n {2}set all_pools \{[^}]*elements = \{ 10\.244\.0\.0\/16, 10\.245\.0\.0\/16 \}/);
  assert.match(s, /set nat_pools \{[^}]*elements = \{ 10\.244\.0\.0\/16 \}/);
  assert.match(s, /ip saddr @nat_pools ip daddr != @all_pools masquerade/);
  assert.match(
    s,
    /table ip6 petrel \{\n[\s\S]*elements = \{ fd00:10::\/64 \}[\s\S]*ip6 saddr @nat_pools ip6 daddr != @all_pools masquerade/,
  );
});

test('each family is replaced in the same transaction: declare, delete, define', () => {
  const s = natScript([pool('10.244.0.0/16', true)]);
  const i = s.indexOf('table ip petrel {}');
  const j = s.indexOf('delete table ip petrel');
  const k = s.indexOf('table ip petrel {\n');
  assert.ok(i >= 0 && i < j && j < k, s);
});

test('no pool with natOutgoing: both tables are removed and not redefined', () => {
  const s = natScript([pool('10.244.0.0/16', false)]);
  assert.equal(s, 'table ip petrel {}\ndelete table ip petrel\ntable ip6 petrel {}\ndelete table ip6 petrel\n');
  assert.equal(natScript([]), s);
});

test('an invalid pool CIDR is left out, never written into the script', () => {
  const s = natScript([pool('10.244.0.0/16', true), pool('10.300.0.0/16', true), pool('x; flush ruleset', true)]);
  assert.doesNotMatch(s, /10\.300|flush ruleset/);
  assert.match(s, /elements = \{ 10\.244\.0\.0\/16 \}/);
});
