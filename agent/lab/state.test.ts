import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initialState } from './cluster.js';
import { findNode, LabStateError, parseState, serializeState } from './state.js';

const base = () => {
  const s = initialState({
    name: 'demo',
    index: 2,
    prefix: 'plab-demo',
    dir: '/run/petrel-lab/demo',
    mode: 'vxlan',
    ipv6: false,
    pools: [],
    nodeExec: '/usr/bin/node',
    binDir: '/x/bin',
    pluginDir: '/x/dist-sea',
    now: '2026-01-01T00:00:00.000Z',
  });
  s.netns.push('plab-demo-fabric', 'plab-demo-node-1');
  s.nodes.push({
    name: 'node-1',
    index: 1,
    netns: 'plab-demo-node-1',
    ip: '10.99.2.11',
    cidr: '10.99.2.11/24',
    subnet: 'fabric',
    asNumber: 64512,
    socket: '/run/petrel-lab/demo/node-1/agent.sock',
    logFile: '/run/petrel-lab/demo/node-1/agent.log',
    outFile: '/run/petrel-lab/demo/node-1/agent.out',
    statusUrl: 'http://10.99.2.11:9099',
    agentArgv: ['/x/bin/petrel-agent', '--node-name', 'node-1'],
    agentPid: 1234,
  });
  return s;
};

test('state round-trips through its JSON text', () => {
  const s = base();
  assert.deepEqual(parseState(serializeState(s)), s);
});

test('a state without a field down relies on is LabStateError', () => {
  const cases: [string, (s: Record<string, unknown>) => void][] = [
    ['not JSON', () => {}],
    ['version', (s) => (s.version = 2)],
    ['prefix', (s) => delete s.prefix],
    ['netns list', (s) => (s.netns = 'x')],
    ['agent pid', (s) => ((s.nodes as Record<string, unknown>[])[0]!.agentPid = 'x')],
    ['agent argv', (s) => delete (s.nodes as Record<string, unknown>[])[0]!.agentArgv],
    ['a pod without its netns', (s) => (s.pods = [{ name: 'p', node: 'node-1', containerId: 'c' }])],
  ];
  for (const [what, mutate] of cases) {
    const s = JSON.parse(serializeState(base())) as Record<string, unknown>;
    mutate(s);
    const text = what === 'not JSON' ? '{' : JSON.stringify(s);
    assert.throws(() => parseState(text), LabStateError, what);
  }
});

test("a namespace outside the lab's prefix is refused (down would delete what it did not make)", () => {
  const s = base();
  s.netns.push('some-other-ns');
  assert.throws(() => parseState(serializeState(s)), /not under plab-demo-/);
});

test('nodes are found by name or by number', () => {
  const s = base();
  assert.equal(findNode(s, 'node-1')?.ip, '10.99.2.11');
  assert.equal(findNode(s, '1')?.name, 'node-1');
  assert.equal(findNode(s, 'node-2'), undefined);
});
