import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assign, newBlock } from '../../ipam-etcd/block.js';
import type { AllocationAttrs, Block } from '../../ipam-etcd/index.js';
import { type GcInput, planGc, podView } from './gc-plan.js';

const T0 = 1_700_000_000_000;
const GRACE = 60_000;

/** One /26 block with allocations [handle, owner, assignedAt] in order (ordinals 0, 1, ...). */
function block(allocs: [string, AllocationAttrs, number][]): Block {
  let b = newBlock('10.244.0.0/26', 'host:n1', 1);
  for (const [h, owner, at] of allocs) b = assign(b, 1, h, owner, at).block;
  return b;
}

const pod = (ns: string, name: string, node = 'n1'): AllocationAttrs => ({ namespace: ns, pod: name, node });
const input = (over: Partial<GcInput>): GcInput => ({
  blocks: [],
  pods: new Map(),
  nodes: new Set(['n1', 'n2']),
  nowMs: T0,
  graceMs: GRACE,
  candidates: new Map(),
  ...over,
});

test('gc plan: a pod gone becomes a candidate, released only after the grace period as a candidate', () => {
  const blocks = [block([['h1', pod('default', 'a'), T0 - 10 * GRACE]])];
  const first = planGc(input({ blocks }));
  assert.deepEqual(first.release, [], 'an old allocation is still first a candidate');
  assert.deepEqual([...first.candidates], [['h1', T0]]);
  const early = planGc(input({ blocks, nowMs: T0 + GRACE - 1, candidates: first.candidates }));
  assert.deepEqual(early.release, []);
  const due = planGc(input({ blocks, nowMs: T0 + GRACE, candidates: early.candidates }));
  assert.equal(due.release.length, 1);
  assert.deepEqual(
    due.release.map((r) => ({
      handle: r.handle,
      reason: r.reason,
      ips: r.addresses.map((a) => a.ip),
      since: r.sinceMs,
    })),
    [{ handle: 'h1', reason: 'pod-gone', ips: ['10.244.0.0'], since: T0 }],
  );
  assert.equal(due.release[0]?.addresses[0]?.seq, 1, 'carries the allocation sequence number (ABA guard)');
  assert.equal(due.candidates.size, 0);
});

test('gc plan: a young allocation is kept even when its candidacy is old enough', () => {
  const blocks = [block([['h1', pod('default', 'a'), T0]])];
  const p = planGc(input({ blocks, nowMs: T0 + GRACE / 2, candidates: new Map([['h1', T0 - GRACE]]) }));
  assert.deepEqual(p.release, []);
  assert.equal(p.candidates.get('h1'), T0 - GRACE);
});

test('gc plan: a pod seen again drops the candidacy; all or none per handle', () => {
  const old = T0 - 10 * GRACE;
  const blocks = [
    block([
      ['h1', pod('default', 'a'), old],
      ['h2', pod('default', 'b'), old],
      ['h2', { ...pod('default', 'c') }, old], // one handle, two owners: c lives
    ]),
  ];
  const pods = new Map([['default/c', { node: 'n1', ips: [] }]]);
  const p = planGc(input({ blocks, pods, nowMs: T0 + GRACE, candidates: new Map([['h2', T0 - GRACE]]) }));
  assert.deepEqual(
    p.release.map((r) => r.handle),
    [],
  );
  assert.deepEqual([...p.candidates.keys()], ['h1']);
  const back = planGc(
    input({ blocks, pods: new Map([...pods, ['default/a', { node: 'n1', ips: [] }]]), candidates: p.candidates }),
  );
  assert.equal(back.candidates.size, 0);
  assert.equal(back.valid, 2);
});

test("gc plan: reasons — node gone, pod moved to another node, address not the pod's; tunnel address by node only", () => {
  const old = T0 - 10 * GRACE;
  const blocks = [
    block([
      ['h-node', pod('default', 'x', 'n9'), old],
      ['h-moved', pod('default', 'y', 'n1'), old],
      ['h-other-ip', pod('default', 'z', 'n1'), old],
      ['ipip-tunnel-addr-n1', { node: 'n1' }, old],
      ['ipip-tunnel-addr-n9', { node: 'n9' }, old],
      ['manual', {}, old],
    ]),
  ];
  const pods = new Map([
    ['default/x', { node: 'n9', ips: [] }],
    ['default/y', { node: 'n2', ips: [] }],
    ['default/z', { node: 'n1', ips: ['10.244.0.40'] }],
  ]);
  const cands = new Map(
    ['h-node', 'h-moved', 'h-other-ip', 'ipip-tunnel-addr-n9'].map((h) => [h, T0 - GRACE] as const),
  );
  const p = planGc(input({ blocks, pods, candidates: cands }));
  assert.deepEqual(p.release.map((r) => `${r.handle}:${r.reason}`).sort(), [
    'h-moved:pod-moved',
    'h-node:node-gone',
    'h-other-ip:address-not-pods',
    'ipip-tunnel-addr-n9:node-gone',
  ]);
  assert.equal(p.valid, 2, 'the live node tunnel address and the ownerless allocation are valid');
});

test('podView reads spec.nodeName and status.podIPs (or podIP)', () => {
  assert.deepEqual(podView({ spec: { nodeName: 'n1' }, status: { podIPs: [{ ip: 'a' }, { ip: 'b' }] } }), {
    node: 'n1',
    ips: ['a', 'b'],
  });
  assert.deepEqual(podView({ status: { podIP: 'a' } }), { node: undefined, ips: ['a'] });
  assert.deepEqual(podView({}), { node: undefined, ips: [] });
});
