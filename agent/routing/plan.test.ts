import assert from 'node:assert/strict';
import { test } from 'node:test';
import { plan } from './plan.js';
import type { EncapMode, NodeSpec, PlanInput, PoolSpec, RouteSpec, SelfSpec } from './types.js';

// Node A (this node) and B share 192.168.1.0/24; C is behind a router in 192.168.2.0/24.
const self: SelfSpec = {
  name: 'a',
  ipv4: '192.168.1.1/24',
  ipv6: 'fd00:1::1/64',
  uplink: 'eth0',
  ipipTunnelAddr: '10.244.0.1',
  vxlanTunnelAddr: '10.244.0.2',
  vxlanTunnelAddrV6: 'fd10::2',
  vxlanMac: '66:00:00:00:00:0a',
};
const b: NodeSpec = {
  name: 'b',
  ipv4: '192.168.1.2/24',
  ipv6: 'fd00:1::2/64',
  vxlanTunnelAddr: '10.244.1.1',
  vxlanTunnelAddrV6: 'fd10:0:0:1::1',
  vxlanMac: '66:00:00:00:00:0b',
};
const c: NodeSpec = {
  name: 'c',
  ipv4: '192.168.2.3/24',
  ipv6: 'fd00:2::3/64',
  vxlanTunnelAddr: '10.244.2.1',
  vxlanTunnelAddrV6: 'fd10:0:0:2::1',
  vxlanMac: '66:00:00:00:00:0c',
};
const pool4 = (ipipMode: EncapMode, vxlanMode: EncapMode): PoolSpec => ({
  cidr: '10.244.0.0/16',
  ipipMode,
  vxlanMode,
  natOutgoing: true,
  disabled: false,
});
const pool6 = (vxlanMode: EncapMode): PoolSpec => ({
  cidr: 'fd10::/48',
  ipipMode: 'Never',
  vxlanMode,
  natOutgoing: false,
  disabled: false,
});
const blocks = [
  { cidr: '10.244.0.0/26', node: 'a' },
  { cidr: '10.244.1.0/26', node: 'b' },
  { cidr: '10.244.2.0/26', node: 'c' },
  { cidr: 'fd10::/122', node: 'a' },
  { cidr: 'fd10:0:0:1::/122', node: 'b' },
  { cidr: 'fd10:0:0:2::/122', node: 'c' },
];
const learned = [
  { prefix: '10.244.1.0/26', nextHop: '192.168.1.2' },
  { prefix: '10.244.2.0/26', nextHop: '192.168.2.3' },
  { prefix: 'fd10:0:0:1::/122', nextHop: 'fd00:1::2' },
  { prefix: 'fd10:0:0:2::/122', nextHop: 'fd00:2::3' },
];
const input = (pools: PoolSpec[], extra: Partial<PlanInput> = {}): PlanInput => ({
  self,
  nodes: [self, b, c],
  pools,
  blocks,
  learned,
  ...extra,
});
const route = (routes: RouteSpec[], dst: string) => routes.find((r) => r.dst === dst);

const IPIP_B = { family: 4, dst: '10.244.1.0/26', type: 'unicast', gateway: '192.168.1.2', dev: 'tunl0', onlink: true };
const IPIP_C = { family: 4, dst: '10.244.2.0/26', type: 'unicast', gateway: '192.168.2.3', dev: 'tunl0', onlink: true };
const DIRECT_B = { family: 4, dst: '10.244.1.0/26', type: 'unicast', gateway: '192.168.1.2', dev: 'eth0' };
const DIRECT_C = { family: 4, dst: '10.244.2.0/26', type: 'unicast', gateway: '192.168.2.3', dev: 'eth0' };
const VX_B = {
  family: 4,
  dst: '10.244.1.0/26',
  type: 'unicast',
  gateway: '10.244.1.1',
  dev: 'petrel.vxlan',
  onlink: true,
};
const VX_C = {
  family: 4,
  dst: '10.244.2.0/26',
  type: 'unicast',
  gateway: '10.244.2.1',
  dev: 'petrel.vxlan',
  onlink: true,
};
const D6_B = { family: 6, dst: 'fd10:0:0:1::/122', type: 'unicast', gateway: 'fd00:1::2', dev: 'eth0' };
const D6_C = { family: 6, dst: 'fd10:0:0:2::/122', type: 'unicast', gateway: 'fd00:2::3', dev: 'eth0' };
const VX6_B = {
  family: 6,
  dst: 'fd10:0:0:1::/122',
  type: 'unicast',
  gateway: 'fd10:0:0:1::1',
  dev: 'petrel.vxlan6',
  onlink: true,
};
const VX6_C = {
  family: 6,
  dst: 'fd10:0:0:2::/122',
  type: 'unicast',
  gateway: 'fd10:0:0:2::1',
  dev: 'petrel.vxlan6',
  onlink: true,
};

// modes × same subnet (b) / other subnet (c) × v4/v6
const table: { name: string; pools: PoolSpec[]; b: object; c: object; b6: object; c6: object; podMtu: number }[] = [
  {
    name: 'IPIP Always',
    pools: [pool4('Always', 'Never'), pool6('Never')],
    b: IPIP_B,
    c: IPIP_C,
    b6: D6_B,
    c6: D6_C,
    podMtu: 1480,
  },
  {
    name: 'IPIP CrossSubnet',
    pools: [pool4('CrossSubnet', 'Never'), pool6('Never')],
    b: DIRECT_B,
    c: IPIP_C,
    b6: D6_B,
    c6: D6_C,
    podMtu: 1480,
  },
  {
    name: 'Never',
    pools: [pool4('Never', 'Never'), pool6('Never')],
    b: DIRECT_B,
    c: DIRECT_C,
    b6: D6_B,
    c6: D6_C,
    podMtu: 1500,
  },
  {
    name: 'VXLAN Always',
    pools: [pool4('Never', 'Always'), pool6('Always')],
    b: VX_B,
    c: VX_C,
    b6: VX6_B,
    c6: VX6_C,
    podMtu: 1430,
  },
  {
    name: 'VXLAN CrossSubnet',
    pools: [pool4('Never', 'CrossSubnet'), pool6('CrossSubnet')],
    b: DIRECT_B,
    c: VX_C,
    b6: D6_B,
    c6: VX6_C,
    podMtu: 1430,
  },
];
for (const row of table) {
  test(`${row.name}: same-subnet, other-subnet, IPv4 and IPv6 routes; own blocks blackholed`, () => {
    const d = plan(input(row.pools));
    assert.deepEqual(route(d.routes, '10.244.1.0/26'), row.b);
    assert.deepEqual(route(d.routes, '10.244.2.0/26'), row.c);
    assert.deepEqual(route(d.routes, 'fd10:0:0:1::/122'), row.b6);
    assert.deepEqual(route(d.routes, 'fd10:0:0:2::/122'), row.c6);
    assert.deepEqual(route(d.routes, '10.244.0.0/26'), { family: 4, dst: '10.244.0.0/26', type: 'blackhole' });
    assert.deepEqual(route(d.routes, 'fd10::/122'), { family: 6, dst: 'fd10::/122', type: 'blackhole' });
    assert.equal(d.routes.length, 6);
    assert.equal(d.podMtu, row.podMtu);
  });
}

test('VXLAN works without BGP: routes, neighbours and FDB entries from node records and blocks only', () => {
  const d = plan(input([pool4('Never', 'Always'), pool6('Always')], { learned: [] }));
  assert.deepEqual(route(d.routes, '10.244.1.0/26'), VX_B);
  assert.deepEqual(route(d.routes, 'fd10:0:0:2::/122'), VX6_C);
  assert.deepEqual(
    d.neighbours.filter((n) => n.dev === 'petrel.vxlan'),
    [
      { dev: 'petrel.vxlan', ip: '10.244.1.1', mac: '66:00:00:00:00:0b' },
      { dev: 'petrel.vxlan', ip: '10.244.2.1', mac: '66:00:00:00:00:0c' },
    ],
  );
  assert.deepEqual(
    d.fdb.filter((f) => f.dev === 'petrel.vxlan'),
    [
      { dev: 'petrel.vxlan', mac: '66:00:00:00:00:0b', dst: '192.168.1.2' },
      { dev: 'petrel.vxlan', mac: '66:00:00:00:00:0c', dst: '192.168.2.3' },
    ],
  );
  assert.deepEqual(
    d.fdb.filter((f) => f.dev === 'petrel.vxlan6').map((f) => f.dst),
    ['fd00:1::2', 'fd00:2::3'],
  );
  const vx = d.devices.find((x) => x.name === 'petrel.vxlan');
  assert.deepEqual(vx, {
    name: 'petrel.vxlan',
    kind: 'vxlan',
    mtu: 1450,
    address: '10.244.0.2',
    vni: 4096,
    port: 4789,
    local: '192.168.1.1',
    mac: '66:00:00:00:00:0a',
    uplink: 'eth0',
  });
  assert.equal(d.devices.find((x) => x.name === 'petrel.vxlan6')?.mtu, 1430);
  assert.equal(d.devices.find((x) => x.name === 'petrel.vxlan6')?.local, 'fd00:1::1');
  assert.equal(
    d.devices.find((x) => x.name === 'tunl0'),
    undefined,
  );
});

test('IPIP and Never blocks come from BGP only: without learned routes there are none (blackholes stay)', () => {
  const d = plan(input([pool4('Always', 'Never'), pool6('Never')], { learned: [] }));
  assert.deepEqual(
    d.routes.map((r) => r.dst),
    ['10.244.0.0/26', 'fd10::/122'],
  );
  assert.deepEqual(d.devices, [{ name: 'tunl0', kind: 'ipip', mtu: 1480, address: '10.244.0.1' }]);
  assert.deepEqual(d.neighbours, []);
});

test('a borrowed /32 inside our own block, advertised by b, is routed to b (longest prefix beats the blackhole)', () => {
  const d = plan(
    input([pool4('Always', 'Never')], { learned: [...learned, { prefix: '10.244.0.17/32', nextHop: '192.168.1.2' }] }),
  );
  assert.deepEqual(route(d.routes, '10.244.0.17/32'), {
    family: 4,
    dst: '10.244.0.17/32',
    type: 'unicast',
    gateway: '192.168.1.2',
    dev: 'tunl0',
    onlink: true,
  });
  assert.equal(route(d.routes, '10.244.0.0/26')?.type, 'blackhole');
});

test('a borrowed /32 in a VXLAN pool goes to the advertising node VTEP', () => {
  const d = plan(input([pool4('Never', 'Always')], { learned: [{ prefix: '10.244.1.9/32', nextHop: '192.168.2.3' }] }));
  assert.deepEqual(route(d.routes, '10.244.1.9/32'), { ...VX_C, dst: '10.244.1.9/32' });
});

test('prefixes outside every pool are ignored unless external routes are wanted', () => {
  const ext = { prefix: '203.0.113.0/24', nextHop: '192.168.1.254' };
  const d = plan(input([pool4('Never', 'Never')], { learned: [...learned, ext] }));
  assert.equal(route(d.routes, '203.0.113.0/24'), undefined);
  assert.ok(d.skipped.some((s) => s.what.includes('203.0.113.0/24') && s.reason === 'outside every pool'));
  const e = plan(input([pool4('Never', 'Never')], { learned: [...learned, ext], externalRoutes: true }));
  assert.deepEqual(route(e.routes, '203.0.113.0/24'), {
    family: 4,
    dst: '203.0.113.0/24',
    type: 'unicast',
    gateway: '192.168.1.254',
    dev: 'eth0',
  });
  // Blocks outside every pool: skipped too.
  const f = plan(input([pool4('Never', 'Always')], { blocks: [{ cidr: '10.99.0.0/26', node: 'b' }] }));
  assert.equal(route(f.routes, '10.99.0.0/26'), undefined);
});

test('our own advertisements (next hop = this node) are not programmed', () => {
  const d = plan(
    input([pool4('Never', 'Never')], { blocks: [], learned: [{ prefix: '10.244.0.0/26', nextHop: '192.168.1.1' }] }),
  );
  assert.deepEqual(d.routes, []);
});

test('a broken node record or learned route is skipped with a reason, the others are still planned', () => {
  const bad: NodeSpec = {
    name: 'x',
    ipv4: '999.1.1.1/24',
    vxlanTunnelAddr: '10.244.9.1',
    vxlanMac: '66:00:00:00:00:09',
  };
  const d = plan({
    ...input([pool4('Never', 'Always')]),
    nodes: [self, b, c, bad],
    blocks: [...blocks, { cidr: '10.244.9.0/26', node: 'x' }, { cidr: '10.244.8.0/26', node: 'nobody' }],
    learned: [{ prefix: 'nonsense', nextHop: '1.2.3.4' }],
  });
  assert.deepEqual(route(d.routes, '10.244.1.0/26'), VX_B);
  assert.equal(route(d.routes, '10.244.9.0/26'), undefined);
  assert.ok(d.skipped.some((s) => s.what.startsWith('node x ipv4')));
  assert.ok(d.skipped.some((s) => s.what.startsWith('block 10.244.9.0/26')));
  assert.ok(d.skipped.some((s) => s.reason === 'no node record for nobody'));
  assert.ok(d.skipped.some((s) => s.reason === 'malformed prefix or next hop'));
});

test('VXLAN pool but this node lacks a tunnel address: no device, remote blocks skipped with the reason', () => {
  const { vxlanTunnelAddr: _, ...noVtep } = self;
  const d = plan({ ...input([pool4('Never', 'Always')]), self: noVtep });
  assert.equal(d.devices.length, 0);
  assert.equal(route(d.routes, '10.244.1.0/26'), undefined);
  assert.ok(d.skipped.some((s) => s.what === 'petrel.vxlan'));
});

test('a disabled pool still routes its existing blocks; the uplink MTU flows into devices and pod MTU', () => {
  const p = { ...pool4('Never', 'Always'), disabled: true };
  const d = plan(input([p], { uplinkMtu: 9000 }));
  assert.deepEqual(route(d.routes, '10.244.2.0/26'), VX_C);
  assert.equal(d.devices[0]?.mtu, 8950);
  assert.equal(d.podMtu, 8950);
});

test('IPv6 addresses are canonicalised (a VTEP written long-hand matches what the kernel prints)', () => {
  const long: NodeSpec = { ...b, vxlanTunnelAddrV6: 'FD10:0000:0000:0001:0000:0000:0000:0001' };
  const d = plan({ ...input([pool6('Always')]), nodes: [self, long, c] });
  assert.equal(route(d.routes, 'fd10:0:0:1::/122')?.gateway, 'fd10:0:0:1::1');
});

test('learned routes: each skip names the route and its reason; one next hop shared by many routes', () => {
  const d = plan({
    ...input([pool4('Never', 'Never'), pool6('Always')], { blocks: [] }),
    learned: [
      { prefix: 'nonsense', nextHop: '192.168.1.2' },
      { prefix: '10.244.5.0/26', nextHop: '192.168.1.0/24' },
      { prefix: '10.244.6.0/26', nextHop: 'fd00:1::2' },
      { prefix: '203.0.113.0/24', nextHop: '192.168.1.2' },
      { prefix: 'fd10:0:0:7::/122', nextHop: 'fd00:9::9' },
      { prefix: '10.244.7.0/26', nextHop: '192.168.1.2' },
      { prefix: '10.244.7.0/26', nextHop: '192.168.2.3' }, // a second path: the first one stays
      // Host bits set: routed by its network; the same next hop text again, parsed once.
      { prefix: '10.244.8.1/26', nextHop: '192.168.1.2' },
      { prefix: '10.244.9.0/26', nextHop: '192.168.1.1' },
    ],
  });
  assert.deepEqual(
    d.skipped.map((s) => `${s.what}: ${s.reason}`),
    [
      'learned nonsense via 192.168.1.2: malformed prefix or next hop',
      'learned 10.244.5.0/26 via 192.168.1.0/24: malformed prefix or next hop',
      'learned 10.244.6.0/26 via fd00:1::2: next hop of another family',
      'learned 203.0.113.0/24 via 192.168.1.2: outside every pool',
      'learned fd10:0:0:7::/122 via fd00:9::9: next hop is no known node (VXLAN needs its VTEP)',
    ],
  );
  assert.deepEqual(
    d.routes.filter((r) => r.type === 'unicast').map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`),
    ['10.244.7.0/26 via 192.168.1.2 dev eth0', '10.244.8.0/26 via 192.168.1.2 dev eth0'],
  );
});
