import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Pool, parseSelector } from '../ipam-etcd/index.js';
import { diffPeers, needsRestart, PeerType, planBgp } from './bgp-config.js';
import { DEFAULT_BGP_CONFIG, type NodeRecord } from './node/record.js';
import type { ClusterState } from './sync/types.js';

const pool: Pool = {
  name: 'p',
  cidr: '10.244.0.0/16',
  blockSize: 26,
  ipipMode: 'Never',
  vxlanMode: 'Never',
  natOutgoing: false,
  disabled: false,
  nodeSelector: 'all()',
};
const node = (name: string, ip: string, extra: Partial<NodeRecord> = {}): NodeRecord => ({
  name,
  labels: {},
  ipv4: `${ip}/24`,
  ...extra,
});
function state(over: Partial<ClusterState> = {}): ClusterState {
  return {
    revision: '1',
    nodes: [node('a', '10.0.0.1'), node('b', '10.0.0.2'), node('c', '10.0.0.3')],
    alive: ['a', 'b', 'c'],
    pools: [pool],
    blocks: [
      { cidr: '10.244.0.0/26', node: 'b' },
      { cidr: '10.244.0.64/26', node: 'a' },
    ],
    borrowed: { b: ['10.244.0.70'] },
    bgp: { ...DEFAULT_BGP_CONFIG },
    peers: [],
    ...over,
  };
}
const plan = (s: ClusterState, self = 'b') => planBgp(s, { self, selector: parseSelector });
const brief = (s: ClusterState, self = 'b') =>
  plan(s, self).peers.map(
    (p) =>
      `${p.address} ${p.type}${p.passive ? ' passive' : ''}${p.routeReflectorClient ? ' rr-client' : ''} as${p.asn}`,
  );

const ROWS: [string, ClusterState, string, string[]][] = [
  [
    'full mesh: the greater address is passive',
    state(),
    'b',
    ['10.0.0.1 node-to-node mesh passive as64512', '10.0.0.3 node-to-node mesh as64512'],
  ],
  ['dead node: no session', state({ alive: ['a', 'b'] }), 'b', ['10.0.0.1 node-to-node mesh passive as64512']],
  ['mesh off: no sessions', state({ bgp: { ...DEFAULT_BGP_CONFIG, nodeToNodeMesh: false } }), 'b', []],
  [
    'global peer on every node, eBGP',
    state({ peers: [{ name: 'tor', peerIp: '10.0.0.254', asNumber: 65000 }] }),
    'a',
    ['10.0.0.2 node-to-node mesh as64512', '10.0.0.3 node-to-node mesh as64512', '10.0.0.254 global as65000'],
  ],
  [
    'node-specific peer on another node only',
    state({ peers: [{ name: 'x', peerIp: '10.0.0.9', asNumber: 65000, node: 'c' }] }),
    'b',
    ['10.0.0.1 node-to-node mesh passive as64512', '10.0.0.3 node-to-node mesh as64512'],
  ],
  [
    'node-selector peer',
    state({
      nodes: [node('a', '10.0.0.1'), node('b', '10.0.0.2', { labels: { rack: 'r1' } })],
      alive: ['a', 'b'],
      peers: [{ name: 'x', peerIp: '10.0.0.9', asNumber: 64512, nodeSelector: "rack == 'r1'" }],
    }),
    'b',
    ['10.0.0.1 node-to-node mesh passive as64512', '10.0.0.9 node specific as64512'],
  ],
  [
    'explicit peer wins over the mesh for one address',
    state({ peers: [{ name: 'x', peerIp: '10.0.0.3', asNumber: 64512, passive: true }] }),
    'b',
    ['10.0.0.1 node-to-node mesh passive as64512', '10.0.0.3 global passive as64512'],
  ],
  [
    'route reflector: client side',
    state({
      nodes: [
        node('a', '10.0.0.1', { routeReflectorClusterId: '224.0.0.1', labels: { rr: 'y' } }),
        node('b', '10.0.0.2'),
        node('c', '10.0.0.3'),
      ],
      bgp: { ...DEFAULT_BGP_CONFIG, nodeToNodeMesh: false },
      peers: [{ name: 'to-rr', peerSelector: 'has(rr)' }],
    }),
    'b',
    ['10.0.0.1 route reflector passive as64512'],
  ],
  [
    'route reflector: reflector side, clients flagged',
    state({
      nodes: [
        node('a', '10.0.0.1', { routeReflectorClusterId: '224.0.0.1', labels: { rr: 'y' } }),
        node('b', '10.0.0.2'),
        node('c', '10.0.0.3'),
      ],
      bgp: { ...DEFAULT_BGP_CONFIG, nodeToNodeMesh: false },
      peers: [
        { name: 'to-rr', nodeSelector: '!has(rr)', peerSelector: 'has(rr)' },
        { name: 'rr-to-clients', nodeSelector: 'has(rr)', peerSelector: '!has(rr)' },
      ],
    }),
    'a',
    ['10.0.0.2 node specific rr-client as64512', '10.0.0.3 node specific rr-client as64512'],
  ],
  [
    'route reflector: one record (Calico pattern) also gives the reflector its client sessions',
    state({
      nodes: [
        node('a', '10.0.0.1', { routeReflectorClusterId: '224.0.0.1', labels: { rr: 'y' } }),
        node('b', '10.0.0.2'),
        node('c', '10.0.0.3'),
      ],
      bgp: { ...DEFAULT_BGP_CONFIG, nodeToNodeMesh: false },
      peers: [{ name: 'to-rr', nodeSelector: 'all()', peerSelector: 'has(rr)' }],
    }),
    'a',
    ['10.0.0.2 node specific rr-client as64512', '10.0.0.3 node specific rr-client as64512'],
  ],
  [
    'reverse side: a node the peerSelector matches peers only with the nodes the record applies to',
    state({
      nodes: [
        node('a', '10.0.0.1', { labels: { rr: 'y' } }),
        node('b', '10.0.0.2', { labels: { rack: 'r1' } }),
        node('c', '10.0.0.3'),
      ],
      bgp: { ...DEFAULT_BGP_CONFIG, nodeToNodeMesh: false },
      peers: [{ name: 'r1-to-a', nodeSelector: "rack == 'r1'", peerSelector: 'has(rr)' }],
    }),
    'a',
    ['10.0.0.2 node specific as64512'],
  ],
  [
    'per-node AS override makes eBGP mesh',
    state({ nodes: [node('a', '10.0.0.1', { asNumber: 65001 }), node('b', '10.0.0.2')], alive: ['a', 'b'] }),
    'b',
    ['10.0.0.1 node-to-node mesh passive as65001'],
  ],
];
for (const [name, s, self, want] of ROWS) test(`bgp plan: ${name}`, () => assert.deepEqual(brief(s, self), want));

test('announcements: own confirmed blocks and borrowed /32s; pools as export filter', () => {
  const p = plan(state());
  assert.deepEqual(p.announcements, ['10.244.0.0/26', '10.244.0.70/32']);
  assert.deepEqual(p.peers[0]?.exportFilter, {
    rules: [{ action: 'accept', prefixes: [{ prefix: '10.244.0.0/16', ge: 16 }] }],
    defaultAction: 'reject',
  });
  assert.equal(p.speaker?.routerId, '10.0.0.2');
  assert.deepEqual(p.speaker?.nextHop, { ipv4: '10.0.0.2' });
});

test('no address or no record: no speaker, no peers', () => {
  assert.equal(plan(state(), 'zz').speaker, undefined);
  assert.equal(plan(state({ nodes: [{ name: 'b', labels: {} }] })).speaker, undefined);
});

test('IPv6-only node: IPv6 mesh and a router ID from its name', () => {
  const s = state({
    nodes: [
      { name: 'a', labels: {}, ipv6: 'fd00::1/64' },
      { name: 'b', labels: {}, ipv6: 'fd00::2/64' },
    ],
    alive: ['a', 'b'],
  });
  const p = plan(s);
  assert.deepEqual(
    p.peers.map((x) => x.address),
    ['fd00::1'],
  );
  assert.match(p.speaker?.routerId ?? '', /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(p.speaker?.listen?.address, '::');
});

test('run-time changes: peer diff and restart-worthy settings', () => {
  const a = plan(state());
  const b = plan(state({ alive: ['a', 'b'] }));
  const d = diffPeers(a.peers, b.peers);
  assert.deepEqual(
    d.remove.map((p) => p.address),
    ['10.0.0.3'],
  );
  assert.deepEqual(d.add, []);
  assert.equal(needsRestart(a.speaker, b.speaker), false);
  const h = plan(state({ bgp: { ...DEFAULT_BGP_CONFIG, holdTimeSec: 30 } }));
  assert.equal(needsRestart(a.speaker, h.speaker), false);
  assert.equal(diffPeers(a.peers, h.peers).add.length, 2);
  assert.equal(needsRestart(a.speaker, plan(state({ bgp: { ...DEFAULT_BGP_CONFIG, asNumber: 65000 } })).speaker), true);
  assert.equal(PeerType.Mesh, 'node-to-node mesh');
});
