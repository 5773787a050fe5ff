import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSelector } from '../../ipam-etcd/index.js';
import { StateBuilder } from './state.js';

const block = (cidr: string, node: string | null, allocs: [number, string][]) => {
  const allocations: (number | null)[] = Array(64).fill(null);
  const attributes = allocs.map(([, n], i) => ({ handle: `h${i}`, owner: { node: n }, assignedAt: 1 }));
  allocs.forEach(([ord], i) => {
    allocations[ord] = i;
  });
  return JSON.stringify({
    cidr,
    affinity: node ? `host:${node}` : null,
    allocations,
    unallocated: [],
    attributes,
    sequenceNumber: 1,
    sequenceNumberForAllocation: {},
  });
};

test('state: confirmed blocks only, borrowed addresses per holder, bad records reported', () => {
  const kvs = new Map<string, string>([
    ['/petrel/nodes/a', '{"name":"a","labels":{},"ipv4":"10.0.0.1/24"}'],
    ['/petrel/nodes/b', '{"name":"b","labels":{},"ipv4":"10.0.0.2"}'],
    ['/petrel/nodes-alive/a', '{"name":"a","lease":"1","since":"x"}'],
    [
      '/petrel/ipam/v1/blocks/10.244.0.0-26',
      block('10.244.0.0/26', 'a', [
        [1, 'a'],
        [2, 'b'],
      ]),
    ],
    ['/petrel/ipam/v1/blocks/10.244.0.64-26', block('10.244.0.64/26', 'b', [])],
    ['/petrel/ipam/v1/affinities/a/10.244.0.0-26', '{"state":"confirmed"}'],
    ['/petrel/ipam/v1/affinities/b/10.244.0.64-26', '{"state":"pending"}'],
    ['/petrel/bgp/v1/config', '{"nodeToNodeMesh":false}'],
    ['/petrel/bgp/v1/peers/rr', '{"name":"rr","peerSelector":"has(rr)"}'],
  ]);
  const b = new StateBuilder((s) => {
    parseSelector(s);
  });
  const { state, problems } = b.build(kvs, '7');
  assert.deepEqual(
    state.nodes.map((n) => n.name),
    ['a'],
  );
  assert.deepEqual(
    problems.map((p) => p.key),
    ['/petrel/nodes/b'],
  );
  assert.deepEqual(state.alive, ['a']);
  assert.deepEqual(state.blocks, [{ cidr: '10.244.0.0/26', node: 'a' }]);
  assert.deepEqual(state.borrowed, { b: ['10.244.0.2'] });
  assert.equal(state.bgp.nodeToNodeMesh, false);
  assert.equal(state.peers[0]?.name, 'rr');
  assert.equal(state.revision, '7');
  kvs.delete('/petrel/nodes/b');
  assert.deepEqual(b.build(kvs, '8').problems, []);
  assert.equal(StateBuilder.relevant('/petrel/ipam/v1/handles/x'), false);
});
