import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Block, MemoryStore, takeSnapshot, usage } from '../../ipam-etcd/index.js';
import { DEFAULT_BGP_CONFIG, type NodeRecord } from '../node/record.js';
import {
  type AgentPeerJson,
  type AgentProbe,
  buildView,
  checkPath,
  type EtcdData,
  FeedRing,
  healthOf,
  NO_SESSION,
  nodesByIp,
  PathError,
  routeEntry,
  SseParser,
} from './model.js';

const AT = '2026-01-01T00:00:00.000Z';
const IP = (k: number) => `10.99.0.${10 + k}`;
const BLOCK = (k: number) => `10.244.${k}.0/26`;

/** A /26 block affine to `node`, with `pods` (name → ordinal) allocated. */
function block(cidr: string, node: string | null, pods: [string, number, string?][]): Block {
  const allocations: (number | null)[] = new Array(64).fill(null);
  const attributes: Block['attributes'] = [];
  for (const [name, ord, owner] of pods) {
    allocations[ord] = attributes.length;
    attributes.push({
      handle: name.startsWith('ipip-') ? name : `petrel.${name}`,
      owner: { node: owner ?? node ?? '', pod: name, namespace: 'default' },
      assignedAt: 0,
    });
  }
  return {
    cidr,
    affinity: node ? `host:${node}` : null,
    allocations,
    unallocated: allocations.flatMap((a, i) => (a === null ? [i] : [])),
    attributes,
    sequenceNumber: 0,
    sequenceNumberForAllocation: {},
  };
}

async function etcdData(blocks: Block[], nodes: number, alive: number[], mesh = true): Promise<EtcdData> {
  const s = new MemoryStore();
  const put = (key: string, value: string) => s.commit([], [{ key, value }]);
  await put(
    '/petrel/ipam/v1/pools/default',
    JSON.stringify({
      name: 'default',
      cidr: '10.244.0.0/16',
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: false,
      disabled: false,
      nodeSelector: 'all()',
    }),
  );
  for (const b of blocks) await put(`/petrel/ipam/v1/blocks/${b.cidr.replace('/', '-')}`, JSON.stringify(b));
  const recs: NodeRecord[] = [];
  for (let k = 1; k <= nodes; k++) recs.push({ name: `node-${k}`, labels: {}, ipv4: `${IP(k)}/24` });
  return {
    ipam: usage(await takeSnapshot(s)),
    nodes: recs,
    alive: alive.map((k) => `node-${k}`),
    bgp: { ...DEFAULT_BGP_CONFIG, nodeToNodeMesh: mesh },
    peers: [],
  };
}

/** Agent k, meshed with `peers` (node index → state), having learned `learned` blocks from their nodes. */
function probe(
  k: number,
  peers: [number, string][],
  learned: number[],
  extra: Partial<AgentPeerJson> = {},
): AgentProbe {
  return {
    node: `node-${k}`,
    url: `http://${IP(k)}:9099`,
    ok: true,
    status: {
      node: `node-${k}`,
      readiness: { ready: true, reasons: [] },
      asn: 64512,
      peers: peers.map(([p, state]) => ({
        address: IP(p),
        state,
        type: 'node-to-node mesh',
        uptimeSec: 5,
        prefixesAccepted: 1,
        ...extra,
      })),
      dataplane: { routes: { desiredRoutes: learned.length, routesProgrammed: learned.length, converged: true } },
    },
    routes: [
      { prefix: BLOCK(k), nextHops: [], local: true, stale: false },
      ...learned.map((b) => ({ prefix: BLOCK(b), nextHops: [IP(b)], peer: IP(b), local: false, stale: false })),
    ],
  };
}

const down = (k: number): AgentProbe => ({
  node: `node-${k}`,
  url: `http://${IP(k)}:9099`,
  ok: false,
  error: 'ECONNREFUSED',
});

const blocks3 = () => [
  block(BLOCK(1), 'node-1', [['pod-a', 0]]),
  block(BLOCK(2), 'node-2', [
    ['pod-b', 0],
    ['pod-b2', 1],
  ]),
  block(BLOCK(3), 'node-3', [
    ['pod-c', 0],
    ['ipip-tunnel-addr-node-3', 1],
  ]),
];

const healthy = () => [
  probe(
    1,
    [
      [2, 'Established'],
      [3, 'Established'],
    ],
    [2, 3],
  ),
  probe(
    2,
    [
      [1, 'Established'],
      [3, 'Established'],
    ],
    [1, 3],
  ),
  probe(
    3,
    [
      [1, 'Established'],
      [2, 'Established'],
    ],
    [1, 2],
  ),
];

test('healthy 3-node mesh: nodes, blocks with utilisation, links up, pods without tunnel addresses, no problems', async () => {
  const v = buildView(await etcdData(blocks3(), 3, [1, 2, 3]), healthy(), AT);
  assert.deepEqual(
    v.nodes.map((n) => [n.name, n.ipv4, n.alive, n.agent.reachable, n.agent.ready]),
    [
      ['node-1', '10.99.0.11', true, true, true],
      ['node-2', '10.99.0.12', true, true, true],
      ['node-3', '10.99.0.13', true, true, true],
    ],
  );
  const n2 = v.nodes[1];
  assert.deepEqual(n2?.blocks, [
    { cidr: BLOCK(2), pool: 'default', size: 64, inUse: 2, free: 62, utilisation: 2 / 64 },
  ]);
  assert.deepEqual(
    v.links.map((l) => [l.a, l.b, l.health]),
    [
      ['node-1', 'node-2', 'up'],
      ['node-1', 'node-3', 'up'],
      ['node-2', 'node-3', 'up'],
    ],
  );
  assert.deepEqual(
    v.pods.map((p) => [p.name, p.node, p.ips, p.blocks]),
    [
      ['pod-a', 'node-1', ['10.244.1.0'], [BLOCK(1)]],
      ['pod-b', 'node-2', ['10.244.2.0'], [BLOCK(2)]],
      ['pod-b2', 'node-2', ['10.244.2.1'], [BLOCK(2)]],
      ['pod-c', 'node-3', ['10.244.3.0'], [BLOCK(3)]],
    ],
    'the tunnel address is not a pod',
  );
  assert.deepEqual(
    v.nodes[0]?.sessions.map((s) => [s.peerNode, s.health]),
    [
      ['node-2', 'up'],
      ['node-3', 'up'],
    ],
  );
  assert.equal(v.nodes[0]?.routes.find((r) => r.prefix === BLOCK(3))?.viaNode, 'node-3');
  assert.deepEqual(v.problems, []);
  assert.equal(v.pools[0]?.inUse, 5);
});

test('A → B across nodes: every check passes; same node: delivered locally', async () => {
  const v = buildView(await etcdData(blocks3(), 3, [1, 2, 3]), healthy(), AT);
  const r = checkPath(v, 'pod-a', 'petrel.pod-c');
  assert.equal(r.ok, true, r.verdict);
  assert.deepEqual(
    r.checks.map((c) => c.id),
    [
      'node-a',
      'block-a',
      'agent-a',
      'node-b',
      'block-b',
      'agent-b',
      'session',
      'route-ab',
      'route-ba',
      'kernel-a',
      'kernel-b',
    ],
  );
  assert.equal(r.from.block, BLOCK(1));
  assert.equal(r.to.node, 'node-3');
  const same = checkPath(v, 'pod-b', 'pod-b2');
  assert.equal(same.sameNode, true);
  assert.equal(same.ok, true);
  assert.ok(same.checks.some((c) => c.id === 'same-node'));
  assert.throws(
    () => checkPath(v, 'pod-a', 'nope'),
    (e: unknown) => e instanceof PathError && e.kind === 'unknown-pod',
  );
});

test('agent of node-3 killed: unreachable, sessions to it down (Active, then no session once it is not alive), A → C broken', async () => {
  const data = await etcdData(blocks3(), 3, [1, 2, 3]);
  // Right after the kill: the peers' sessions fall back to Active; node-3 is still alive (lease).
  const n1 = probe(
    1,
    [
      [2, 'Established'],
      [3, 'Active'],
    ],
    [2, 3],
  );
  if (n1.ok) n1.status.readiness = { ready: false, reasons: ['BGP: 10.99.0.13 (node-to-node mesh) is Active'] };
  const early = buildView(
    data,
    [
      n1,
      probe(
        2,
        [
          [1, 'Established'],
          [3, 'Active'],
        ],
        [1, 3],
      ),
      down(3),
    ],
    AT,
  );
  assert.deepEqual(
    early.links.map((l) => [l.a, l.b, l.health]),
    [
      ['node-1', 'node-2', 'up'],
      ['node-1', 'node-3', 'down'],
      ['node-2', 'node-3', 'down'],
    ],
  );
  assert.equal(early.nodes[2]?.agent.reachable, false);
  assert.ok(early.problems.some((p) => /node-3: agent status endpoint unreachable/.test(p)));
  const r = checkPath(early, 'pod-a', 'pod-c');
  assert.equal(r.ok, false);
  const ok = Object.fromEntries(r.checks.map((c) => [c.id, c.ok]));
  assert.equal(ok['agent-a'], true, 'not ready only for BGP: judged by the session check');
  assert.equal(ok['agent-b'], false);
  assert.equal(ok.session, false);
  assert.equal(ok['route-ba'], null, 'node-3 cannot be asked');
  assert.match(r.verdict, /^broken: agent on node-3/);

  // Lease expired: node-3 not alive, the agents dropped the mesh peer and the route.
  const late = buildView(
    { ...data, alive: ['node-1', 'node-2'] },
    [probe(1, [[2, 'Established']], [2]), probe(2, [[1, 'Established']], [1]), down(3)],
    AT,
  );
  const s13 = late.nodes[0]?.sessions.find((s) => s.peerNode === 'node-3');
  assert.equal(s13?.state, NO_SESSION);
  assert.equal(s13?.health, 'down');
  assert.match(s13?.lastError ?? '', /not alive/);
  assert.equal(late.links.find((l) => l.b === 'node-3' && l.a === 'node-1')?.health, 'down');
  const r2 = checkPath(late, 'pod-a', 'pod-c');
  const ok2 = Object.fromEntries(r2.checks.map((c) => [c.id, c.ok]));
  assert.equal(ok2['node-b'], false);
  assert.equal(ok2.session, false);
  assert.equal(ok2['route-ab'], false, 'node-1 has no route to node-3’s block');
  assert.match(r2.verdict, /^broken: pod-c is on node-3/);
});

test('route missing or via the wrong node, stale route, borrowed block: each named by its check', async () => {
  const data = await etcdData(
    [
      block(BLOCK(1), 'node-1', [['pod-a', 0]]),
      // pod-x runs on node-2 but its address is in node-1's block (borrowed).
      block(BLOCK(2), 'node-2', [['pod-b', 0]]),
      block(BLOCK(5), 'node-1', [['pod-x', 0, 'node-2']]),
    ],
    2,
    [1, 2],
  );
  const p1 = probe(1, [[2, 'Established']], []);
  const p2 = probe(2, [[1, 'Established']], [1]);
  let r = checkPath(buildView(data, [p1, p2], AT), 'pod-a', 'pod-b');
  assert.equal(r.checks.find((c) => c.id === 'route-ab')?.ok, false);
  assert.match(r.checks.find((c) => c.id === 'route-ab')?.detail ?? '', /no route covering 10\.244\.2\.0/);
  assert.equal(r.checks.find((c) => c.id === 'route-ba')?.ok, true);

  const wrong = probe(1, [[2, 'Established']], []);
  if (wrong.ok) wrong.routes.push({ prefix: BLOCK(2), nextHops: ['10.99.0.99'], local: false, stale: false });
  r = checkPath(buildView(data, [wrong, p2], AT), 'pod-a', 'pod-b');
  assert.match(r.checks.find((c) => c.id === 'route-ab')?.detail ?? '', /expected 10\.99\.0\.12/);

  const stale = probe(1, [[2, 'Established']], [2]);
  if (stale.ok) for (const rt of stale.routes) rt.stale = !rt.local;
  r = checkPath(buildView(data, [stale, p2], AT), 'pod-a', 'pod-b');
  assert.equal(r.checks.find((c) => c.id === 'route-ab')?.ok, false);
  assert.match(r.checks.find((c) => c.id === 'route-ab')?.detail ?? '', /STALE/);

  r = checkPath(buildView(data, [probe(1, [[2, 'Established']], [2]), p2], AT), 'pod-a', 'pod-x');
  const b = r.checks.find((c) => c.id === 'block-b');
  assert.equal(b?.ok, false);
  assert.match(b?.detail ?? '', /affine to node-1: routes to 10\.244\.5\.0 lead there, not to node-2/);
});

test('route reflector topology (no mesh): the path goes through a reflector both clients are Established with', async () => {
  const data = await etcdData(
    [block(BLOCK(1), 'node-1', [['pod-a', 0]]), block(BLOCK(2), 'node-2', [['pod-b', 0]])],
    3,
    [1, 2, 3],
    false,
  );
  data.nodes[2] = { ...(data.nodes[2] as NodeRecord), routeReflectorClusterId: '1.0.0.1' };
  const probes = [
    probe(1, [[3, 'Established']], [2]),
    probe(2, [[3, 'Established']], [1]),
    probe(
      3,
      [
        [1, 'Established'],
        [2, 'Established'],
      ],
      [1, 2],
    ),
  ];
  const v = buildView(data, probes, AT);
  assert.equal(v.nodes[2]?.routeReflector, true);
  assert.equal(v.links.length, 2, 'no mesh: only the configured sessions');
  const r = checkPath(v, 'pod-a', 'pod-b');
  assert.equal(r.ok, true, r.verdict);
  assert.match(r.checks.find((c) => c.id === 'session')?.detail ?? '', /through route reflector node-3/);
  const cut = buildView(data, [probes[0], probe(2, [[3, 'Idle']], []), probes[2]] as AgentProbe[], AT);
  assert.equal(checkPath(cut, 'pod-a', 'pod-b').checks.find((c) => c.id === 'session')?.ok, false);
});

test('healthOf: FSM states to colours', () => {
  assert.deepEqual(
    ['Established', 'Active', 'Connect', 'OpenSent', 'OpenConfirm', 'Idle', NO_SESSION, undefined, 'x'].map(healthOf),
    ['up', 'connecting', 'connecting', 'connecting', 'connecting', 'down', 'down', 'unknown', 'unknown'],
  );
});

test('route feed: agent events to entries with the next hop node; ring keeps the newest', async () => {
  const v = buildView(await etcdData(blocks3(), 3, [1, 2, 3]), healthy(), AT);
  const m = nodesByIp(v);
  assert.deepEqual(routeEntry('node-1', { event: 'add', prefix: BLOCK(3), nextHops: [IP(3)] }, m, 7, AT), {
    seq: 7,
    at: AT,
    node: 'node-1',
    kind: 'add',
    prefix: BLOCK(3),
    nextHops: [IP(3)],
    viaNode: 'node-3',
  });
  assert.deepEqual(routeEntry('node-1', { event: 'withdraw', prefix: BLOCK(3), nextHops: [] }, m, 8, AT), {
    seq: 8,
    at: AT,
    node: 'node-1',
    kind: 'withdraw',
    prefix: BLOCK(3),
  });
  assert.equal(routeEntry('node-1', { event: 'bogus', prefix: 'x' }, m, 9, AT), undefined);
  const ring = new FeedRing(3);
  for (let i = 0; i < 5; i++) ring.push({ seq: ring.nextSeq(), at: AT, node: 'n', kind: 'add', prefix: String(i) });
  assert.deepEqual(
    ring.since().map((e) => e.seq),
    [3, 4, 5],
  );
  assert.deepEqual(
    ring.since(4).map((e) => e.seq),
    [5],
  );
});

test('SSE parser: events split at every offset, CRLF/CR line ends, comments, multi-line data', () => {
  const text =
    ': hello\r\nevent: snapshot\r\ndata: [1,\r\ndata: 2]\r\n\r\nevent: route\rdata: {"a":1}\r\rdata:plain\n\nevent: empty\n\n';
  const want = [
    { event: 'snapshot', data: '[1,\n2]' },
    { event: 'route', data: '{"a":1}' },
    { event: 'message', data: 'plain' },
  ];
  for (let i = 0; i <= text.length; i++) {
    const p = new SseParser();
    const got = [...p.push(text.slice(0, i)), ...p.push(text.slice(i))];
    assert.deepEqual(got, want, `split at ${i}`);
  }
  const p = new SseParser();
  const bytes = [...text].flatMap((ch) => p.push(ch));
  assert.deepEqual(bytes, want, 'one character at a time');
});
