import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assign, newBlock } from './block.js';
import { type AffinityWithBlock, classifyLeaks, type EmptyBlockAction, planEmptyBlockRelease } from './gc.js';
import type { AllocationAttrs, Block } from './types.js';

const NOW = 1_700_000_100_000;
const GRACE = 60_000;
const OLD = NOW - GRACE; // exactly at the grace limit: old enough
const YOUNG = NOW - GRACE + 1;

/** A /29 block with the given allocations, each { handle, owner, at, n } assigned in order. */
function blockWith(
  cidr: string,
  allocs: { handle: string; owner: AllocationAttrs; at: number; n?: number }[],
  seqStart = 5000,
): Block {
  let b = newBlock(cidr, 'host:n1', seqStart);
  for (const a of allocs) {
    b = assign(b, a.n ?? 1, a.handle, a.owner, a.at).block;
    b = { ...b, sequenceNumber: b.sequenceNumber + 1 };
  }
  return b;
}

const pod = (namespace: string, p: string, node = 'n1'): AllocationAttrs => ({ node, namespace, pod: p });

test('classifyLeaks: one row per owner situation', () => {
  const rows: {
    name: string;
    owner: AllocationAttrs;
    at: number;
    livePods: string[];
    liveNodes?: string[];
    leaked: boolean;
  }[] = [
    {
      name: 'live pod, live node',
      owner: pod('ns', 'a'),
      at: OLD,
      livePods: ['ns/a'],
      liveNodes: ['n1'],
      leaked: false,
    },
    { name: 'dead pod, old', owner: pod('ns', 'a'), at: OLD, livePods: [], leaked: true },
    { name: 'dead pod, within grace', owner: pod('ns', 'a'), at: YOUNG, livePods: [], leaked: false },
    {
      name: 'same pod name, other namespace is live',
      owner: pod('ns', 'a'),
      at: OLD,
      livePods: ['other/a'],
      leaked: true,
    },
    {
      name: 'live pod on a dead node',
      owner: pod('ns', 'a', 'gone'),
      at: OLD,
      livePods: ['ns/a'],
      liveNodes: ['n1'],
      leaked: true,
    },
    {
      name: 'dead node, node liveness not judged',
      owner: pod('ns', 'a', 'gone'),
      at: OLD,
      livePods: ['ns/a'],
      leaked: false,
    },
    {
      name: 'no pod attrs (petrelctl assignment), live node',
      owner: { node: 'n1' },
      at: OLD,
      livePods: [],
      liveNodes: ['n1'],
      leaked: false,
    },
    {
      name: 'no pod attrs, dead node',
      owner: { node: 'gone' },
      at: OLD,
      livePods: [],
      liveNodes: ['n1'],
      leaked: true,
    },
    { name: 'no pod attrs, no node judging', owner: { node: 'gone' }, at: OLD, livePods: [], leaked: false },
    {
      name: 'pod without namespace is not a pod reference',
      owner: { node: 'n1', pod: 'a' },
      at: OLD,
      livePods: [],
      leaked: false,
    },
    { name: 'dead node within grace', owner: { node: 'gone' }, at: YOUNG, livePods: [], liveNodes: [], leaked: false },
  ];
  for (const r of rows) {
    const b = blockWith('10.0.0.0/29', [{ handle: 'h', owner: r.owner, at: r.at }]);
    const got = classifyLeaks([b], {
      livePods: new Set(r.livePods),
      liveNodes: r.liveNodes ? new Set(r.liveNodes) : undefined,
      graceMs: GRACE,
      nowMs: NOW,
    });
    assert.deepEqual(
      got.map((l) => l.handle),
      r.leaked ? ['h'] : [],
      r.name,
    );
  }
});

test('classifyLeaks: all-or-none per handle across blocks; addresses carry block, ordinal and scan-time sequence', () => {
  const b1 = blockWith('10.0.0.0/29', [
    { handle: 'dead', owner: pod('ns', 'x'), at: OLD, n: 2 },
    { handle: 'mixed', owner: pod('ns', 'gone'), at: OLD },
    { handle: 'live', owner: pod('ns', 'alive'), at: OLD },
  ]);
  const b2 = blockWith(
    '10.0.0.8/29',
    [
      { handle: 'mixed', owner: pod('ns', 'gone'), at: YOUNG }, // young: keeps the whole handle
      { handle: 'dead', owner: pod('ns', 'x'), at: OLD },
    ],
    9000,
  );
  const got = classifyLeaks([b1, b2], { livePods: new Set(['ns/alive']), graceMs: GRACE, nowMs: NOW });
  assert.deepEqual(got, [
    {
      handle: 'dead',
      addresses: [
        { ip: '10.0.0.0', block: '10.0.0.0/29', ordinal: 0, seq: 5000, owner: pod('ns', 'x') },
        { ip: '10.0.0.1', block: '10.0.0.0/29', ordinal: 1, seq: 5000, owner: pod('ns', 'x') },
        { ip: '10.0.0.9', block: '10.0.0.8/29', ordinal: 1, seq: 9001, owner: pod('ns', 'x') },
      ],
    },
  ]);
});

test('classifyLeaks: empty and free-only blocks give nothing; a block without a sequence entry gives -1', () => {
  assert.deepEqual(classifyLeaks([], { livePods: new Set(), graceMs: 0, nowMs: NOW }), []);
  assert.deepEqual(
    classifyLeaks([newBlock('10.0.0.0/29', null, 1)], { livePods: new Set(), graceMs: 0, nowMs: NOW }),
    [],
  );
  const b = blockWith('10.0.0.0/29', [{ handle: 'h', owner: pod('ns', 'x'), at: OLD }]);
  const noSeq = { ...b, sequenceNumberForAllocation: {} };
  assert.equal(classifyLeaks([noSeq], { livePods: new Set(), graceMs: GRACE, nowMs: NOW })[0]?.addresses[0]?.seq, -1);
});

test('planEmptyBlockRelease: one row per affinity situation', () => {
  const empty = (cidr: string, affinity: string | null = 'host:n1') => ({
    value: { ...newBlock(cidr, affinity, 1) },
    rev: `b-${cidr}`,
  });
  const used = (cidr: string, affinity = 'host:n1') => ({
    value: assign(newBlock(cidr, affinity, 1), 1, 'h', { node: 'n1' }, 1).block,
    rev: `b-${cidr}`,
  });
  const aff = (cidr: string, state: string, block: AffinityWithBlock['block']): AffinityWithBlock => ({
    cidr,
    state,
    rev: `a-${cidr}`,
    block,
  });
  const A = '10.0.0.0/29';
  const B = '10.0.0.8/29';
  const C = '10.0.0.16/29';
  const drop = (cidr: string): EmptyBlockAction => ({ op: 'drop-affinity', cidr, affinityRev: `a-${cidr}` });
  const release = (cidr: string): EmptyBlockAction => ({
    op: 'release-block',
    cidr,
    blockRev: `b-${cidr}`,
    affinityRev: `a-${cidr}`,
  });
  const rows: { name: string; affs: AffinityWithBlock[]; want: EmptyBlockAction[] }[] = [
    { name: 'no affinities', affs: [], want: [] },
    { name: 'the only block, empty: kept', affs: [aff(A, 'confirmed', empty(A))], want: [] },
    {
      name: 'all empty: the first stays, the others go',
      affs: [aff(A, 'confirmed', empty(A)), aff(B, 'confirmed', empty(B)), aff(C, 'confirmed', empty(C))],
      want: [release(B), release(C)],
    },
    {
      name: 'one in use: every empty one goes',
      affs: [aff(A, 'confirmed', empty(A)), aff(B, 'confirmed', used(B))],
      want: [release(A)],
    },
    { name: 'in use only: nothing', affs: [aff(A, 'confirmed', used(A))], want: [] },
    { name: 'crashed claim (pending, no block): dropped', affs: [aff(A, 'pending', null)], want: [drop(A)] },
    {
      name: "pending, block is another node's: dropped",
      affs: [aff(A, 'pending', empty(A, 'host:n2'))],
      want: [drop(A)],
    },
    { name: 'confirmed, block gone: dropped', affs: [aff(A, 'confirmed', null)], want: [drop(A)] },
    {
      name: 'confirmed, block names another node: left for check',
      affs: [aff(A, 'confirmed', used(A, 'host:n2'))],
      want: [],
    },
    {
      name: 'a pending affinity of our own block counts as ours',
      affs: [aff(A, 'pending', empty(A)), aff(B, 'confirmed', empty(B))],
      want: [release(B)],
    },
    {
      name: 'crashed claim beside the last empty block: claim dropped, block kept',
      affs: [aff(A, 'pending', null), aff(B, 'confirmed', empty(B))],
      want: [drop(A)],
    },
  ];
  for (const r of rows) assert.deepEqual(planEmptyBlockRelease('n1', r.affs), r.want, r.name);
});
