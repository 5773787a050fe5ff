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

test('parseState: a --cri lab (containerd per node in the lab dir, pods with sandboxes in cni- netns)', () => {
  const s = base();
  s.cri = { network: 'petrel-lab', hostPathsBefore: { runContainerd: false, varLibCni: true } };
  const node = s.nodes[0];
  assert.ok(node);
  node.containerd = {
    pid: 42,
    dir: '/run/petrel-lab/demo/node-1/containerd',
    socket: '/run/petrel-lab/demo/node-1/containerd/containerd.sock',
    configFile: '/run/petrel-lab/demo/node-1/containerd/config.toml',
    outFile: '/run/petrel-lab/demo/node-1/containerd/containerd.out',
  };
  s.pods.push({
    name: 'pod-1-1',
    node: 'node-1',
    netns: 'cni-3460b458-7605-49cd-1fd4-b7e3a30cba27',
    containerId: 'abc',
    sandboxId: 'abc',
    uid: 'u',
    ip: '10.244.0.1',
    ip6: '',
    assignIpv4: true,
    assignIpv6: false,
  });
  const back = parseState(serializeState(s));
  assert.equal(back.cri?.network, 'petrel-lab');
  assert.equal(back.nodes[0]?.containerd?.pid, 42);
  assert.equal(back.pods[0]?.sandboxId, 'abc');

  const outside = JSON.parse(serializeState(s));
  outside.nodes[0].containerd.dir = '/var/lib/containerd';
  assert.throws(() => parseState(JSON.stringify(outside)), LabStateError);
  const badNetns = JSON.parse(serializeState(s));
  badNetns.pods[0].netns = 'other-ns';
  assert.throws(() => parseState(JSON.stringify(badNetns)), LabStateError);
});
