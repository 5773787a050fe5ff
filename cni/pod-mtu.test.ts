import assert from 'node:assert/strict';
import { test } from 'node:test';
import { podMtu } from './commands/add.js';

const a = (over: { podMtu?: number; vxlanMode?: string } = {}) => ({
  ipipMode: 'Never',
  vxlanMode: over.vxlanMode ?? 'Never',
  family: 4 as const,
  ...(over.podMtu !== undefined ? { podMtu: over.podMtu } : {}),
});

test('pod MTU: config first, then the agent plan, then host MTU minus the pool overhead', () => {
  const host = () => 9000;
  assert.equal(podMtu(1400, [a({ podMtu: 1450 })], host), 1400);
  assert.equal(podMtu(undefined, [a({ podMtu: 1430, vxlanMode: 'Always' })], host), 1430);
  assert.equal(podMtu(undefined, [a({ vxlanMode: 'Always' })], host), 8950);
  assert.equal(
    podMtu(undefined, [a()], () => undefined),
    1500,
  );
  // A nonsense value from the agent is not used.
  assert.equal(podMtu(undefined, [a({ podMtu: 10 })], host), 9000);
});
