import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bridgeMac,
  expectedEncap,
  freeLabIndex,
  LabConfigError,
  labAddresses,
  labPrefix,
  netnsNames,
  nextPodName,
  nodeAddresses,
  parseMode,
  poolsFor,
  validateLabName,
} from './layout.js';

test('index 0 is the cluster tests addressing (10.99.0.0/24, fd99::/64)', () => {
  const a = labAddresses(0);
  assert.equal(a.fabricIp, '10.99.0.1');
  assert.equal(a.fabricIp6, 'fd99::1');
  assert.equal(a.routedSubnet, '10.98.0.0/24');
  assert.equal(a.routedSubnet6, 'fd98::/64');
  assert.deepEqual(nodeAddresses(0, 2, false), { ip: '10.99.0.12', ip6: 'fd99::12' });
  assert.deepEqual(nodeAddresses(0, 4, true), { ip: '10.98.0.14', ip6: 'fd98::14' });
});

test('each lab index has its own subnets, so two labs never share an address', () => {
  const a = labAddresses(1);
  const b = labAddresses(17);
  assert.equal(a.fabricSubnet, '10.99.1.0/24');
  assert.equal(b.fabricSubnet, '10.99.17.0/24');
  assert.equal(b.fabricIp6, 'fd99:11::1');
  assert.equal(b.routedSubnet6, 'fd98:11::/64');
  assert.notEqual(nodeAddresses(1, 1, false).ip, nodeAddresses(2, 1, false).ip);
  assert.equal(nodeAddresses(3, 1, false).ip6, 'fd99:3::11');
});

test('out-of-range indexes and node numbers are LabConfigError', () => {
  assert.throws(() => labAddresses(251), LabConfigError);
  assert.throws(() => labAddresses(-1), LabConfigError);
  assert.throws(() => nodeAddresses(1, 0, false), LabConfigError);
  assert.throws(() => nodeAddresses(1, 201, false), LabConfigError);
});

test('lab names: lower-case letters, digits and dashes, starting with a letter, at most 20', () => {
  assert.equal(validateLabName('petrel'), 'petrel');
  assert.equal(validateLabName('a-2'), 'a-2');
  for (const bad of ['', 'A', '1x', 'x_y', 'a/b', 'x'.repeat(21), '../etc'])
    assert.throws(() => validateLabName(bad), LabConfigError, bad);
  assert.equal(labPrefix('demo'), 'plab-demo');
  const n = netnsNames('plab-demo');
  assert.equal(n.fabric, 'plab-demo-fabric');
  assert.equal(n.node(3), 'plab-demo-node-3');
  assert.equal(n.pod('pod-1-2'), 'plab-demo-pod-1-2');
});

test('the lowest free index from 1', () => {
  assert.equal(freeLabIndex([]), 1);
  assert.equal(freeLabIndex([1, 2, 4]), 3);
  assert.equal(freeLabIndex([2]), 1);
  assert.throws(() => freeLabIndex(Array.from({ length: 250 }, (_, i) => i + 1)), LabConfigError);
});

test('pod names: the next number on that node, gaps not reused below the highest', () => {
  assert.equal(nextPodName(1, []), 'pod-1-1');
  assert.equal(nextPodName(1, ['pod-1-1', 'pod-1-3', 'pod-2-7']), 'pod-1-4');
  assert.equal(nextPodName(2, ['pod-1-1', 'pod-12-1']), 'pod-2-1');
});

test('pools per mode, and the encapsulation one packet must show', () => {
  assert.deepEqual(
    poolsFor('never', false).map((p) => [p.ipipMode, p.vxlanMode]),
    [[undefined, undefined]],
  );
  assert.equal(poolsFor('vxlan', false)[0]?.vxlanMode, 'Always');
  assert.equal(poolsFor('ipip-crosssubnet', false)[0]?.ipipMode, 'CrossSubnet');
  const dual = poolsFor('ipip', true);
  assert.equal(dual.length, 2);
  assert.equal(dual[1]?.ipipMode, undefined, 'IPIP carries no IPv6');
  assert.equal(expectedEncap('vxlan', true), 'vxlan');
  assert.equal(expectedEncap('never', false), 'plain');
  assert.equal(expectedEncap('ipip-crosssubnet', true), 'plain');
  assert.equal(expectedEncap('ipip-crosssubnet', false), 'ipip');
  assert.equal(parseMode('vxlan'), 'vxlan');
  assert.throws(() => parseMode('Always'), LabConfigError);
});

test('bridge MACs: set per lab and bridge, locally administered unicast, index checked', () => {
  assert.equal(bridgeMac(0, 1), '02:99:00:00:00:01');
  assert.equal(bridgeMac(250, 2), '02:99:fa:00:00:02');
  assert.notEqual(bridgeMac(3, 1), bridgeMac(3, 2));
  const first = Number.parseInt(bridgeMac(17, 1).slice(0, 2), 16);
  assert.equal(first & 1, 0, 'unicast');
  assert.equal(first & 2, 2, 'locally administered');
  assert.throws(() => bridgeMac(251, 1), LabConfigError);
});
