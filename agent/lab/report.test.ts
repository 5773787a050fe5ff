import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encapOfLine, type LabSummary, renderMatrix, renderSummary, summarize } from './report.js';

const node = (name: string, ip: string) => ({
  name,
  ip,
  asNumber: 64512,
  blocks: ['10.244.0.0/26'],
  alive: true,
  agent: 'running' as const,
  agentPid: 10,
  statusUrl: `http://${ip}:9099`,
  ready: true,
  sessions: [{ peer: '10.99.1.12', type: 'node-to-node mesh', state: 'Established' }],
});

const healthyLab = (): Omit<LabSummary, 'healthy' | 'problems'> => ({
  name: 'demo',
  mode: 'vxlan',
  index: 1,
  etcd: 'http://10.99.1.1:2379',
  nodes: [node('node-1', '10.99.1.11'), node('node-2', '10.99.1.12')],
  pods: [
    { name: 'a', node: 'node-1', ip: '10.244.0.1', ip6: '' },
    { name: 'b', node: 'node-2', ip: '10.244.0.65', ip6: '' },
  ],
  matrix: [
    { from: 'a', to: 'b', addr: '10.244.0.65', ok: true },
    { from: 'b', to: 'a', addr: '10.244.0.1', ok: true },
  ],
  path: { from: 'a', to: 'b', seen: 'vxlan', expected: 'vxlan', line: 'IP x > y.4789: VXLAN' },
});

test('matrix: ok, FAIL when any address of the destination failed, - on the diagonal', () => {
  const m = renderMatrix(
    ['a', 'b', 'c'],
    [
      { from: 'a', to: 'b', addr: '1', ok: true },
      { from: 'a', to: 'c', addr: '2', ok: true },
      { from: 'a', to: 'c', addr: 'fd::2', ok: false, error: 'timeout' },
      { from: 'b', to: 'a', addr: '3', ok: true },
    ],
  );
  assert.deepEqual(
    m.split('\n').map((l) => l.split(/\s+/)),
    [
      ['FROM', '\\', 'TO', 'a', 'b', 'c'],
      ['a', '-', 'ok', 'FAIL'],
      ['b', 'ok', '-', '?'],
      ['c', '?', '?', '-'],
    ],
  );
});

test('a lab is healthy only with every agent ready, every session up, every pair answering and the expected path', () => {
  assert.deepEqual(summarize(healthyLab()).problems, []);
  const broken: [string, (s: ReturnType<typeof healthyLab>) => void, RegExp][] = [
    ['agent stopped', (s) => (s.nodes[0]!.agent = 'stopped'), /node-1: agent not running/],
    ['session down', (s) => (s.nodes[1]!.sessions[0]!.state = 'Active'), /node-2: BGP 10.99.1.12 Active/],
    ['no answer', (s) => delete s.nodes[0]!.ready, /did not answer/],
    [
      'pair fails',
      (s) => (s.matrix[0] = { ...s.matrix[0]!, ok: false, error: 'timeout' }),
      /a -> b \(10.244.0.65\): timeout/,
    ],
    ['wrong path', (s) => (s.path!.seen = 'plain'), /saw plain, expected vxlan/],
    ['lease gone', (s) => (s.nodes[0]!.alive = false), /no live node record/],
  ];
  for (const [what, mutate, re] of broken) {
    const s = healthyLab();
    mutate(s);
    const r = summarize(s);
    assert.equal(r.healthy, false, what);
    assert.match(r.problems.join('\n'), re, what);
  }
});

test('the summary names nodes, pods, the matrix, the path and the verdict', () => {
  const text = renderSummary(summarize(healthyLab()));
  assert.match(text, /node-1\s+10\.99\.1\.11\s+64512\s+pid 10\s+10\.244\.0\.0\/26\s+1\/1 up/);
  assert.match(text, /a\s+node-1\s+10\.244\.0\.1/);
  assert.match(text, /TCP pod x pod:/);
  assert.match(text, /VXLAN \(UDP 4789\)/);
  assert.match(text, /\nhealthy$/);
});

test('tcpdump lines: VXLAN, IPIP, plain', () => {
  assert.equal(
    encapOfLine('12:00:00.1 IP 10.99.1.11.33596 > 10.99.1.12.4789: VXLAN, flags [I] (0x08), vni 4096'),
    'vxlan',
  );
  assert.equal(
    encapOfLine('12:00:00.1 IP 10.99.0.11 > 10.99.0.12: IP 10.244.0.1.5 > 10.244.0.65.7777: Flags [S]'),
    'ipip',
  );
  assert.equal(encapOfLine('12:00:00.1 IP 10.99.0.11 > 10.99.0.12: ipip-proto-4'), 'ipip');
  assert.equal(encapOfLine('12:00:00.1 IP 10.244.0.1.5 > 10.244.0.65.7777: Flags [S], seq 1'), 'plain');
  assert.equal(encapOfLine(''), 'none');
});
