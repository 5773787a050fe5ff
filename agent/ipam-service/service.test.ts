import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AgentClient } from '../../cni/agent-client.js';
import { CniError } from '../../cni/errors.js';
import { Ipam } from '../../ipam-etcd/allocator.js';
import { IpamError } from '../../ipam-etcd/errors.js';
import { MemoryStore } from '../../ipam-etcd/memory-store.js';
import { ManualClock } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { FakeIpam, fakePool } from './fake-ipam.js';
import { type AgentRequest, decodeRequest } from './protocol.js';
import { listenIpamSocket } from './server.js';
import { gatewayHandle, IpamService } from './service.js';

function svc(pools = [fakePool('a', '10.0.0.0/24'), fakePool('b', '10.0.1.0/24'), fakePool('six', 'fd00::/120')]) {
  const ipam = new FakeIpam(pools);
  return { ipam, service: new IpamService({ ipam, nodeName: 'n1', log: silentLogger }) };
}
let id = 0;
const req = (r: Record<string, unknown>) => ({ v: 1, id: ++id, ...r }) as AgentRequest;

test('assign is idempotent per handle and records the node', async () => {
  const { ipam, service } = svc();
  const a = await service.handle(req({ op: 'assign', handle: 'h1', num4: 1, num6: 1, attrs: { pod: 'p' } }));
  assert.ok(a.ok);
  const b = await service.handle(req({ op: 'assign', handle: 'h1', num4: 1, num6: 1 }));
  assert.ok(b.ok);
  assert.deepEqual(b.assignments, a.assignments);
  assert.deepEqual(
    a.assignments?.map((x) => x.family),
    [4, 6],
  );
  const call = ipam.calls.find((c) => c.op === 'autoAssign');
  assert.equal((call?.arg as { attrs: { node: string } } | undefined)?.attrs.node, 'n1');
  // The first ADD does not read the handle (its assignment requires a fresh one); the repeat's
  // assignment finds the handle held, writes nothing, and only then is the handle read.
  assert.deepEqual(
    ipam.calls.map((c) => [c.op, (c.arg as { fresh?: boolean } | undefined)?.fresh]),
    [
      ['autoAssign', true],
      ['autoAssign', true],
      ['ipsByHandle', undefined],
    ],
  );
  assert.equal(ipam.held().get('h1')?.length, 2);
});

test('static addresses: checked against the pool list, partial failure rolls back', async () => {
  const { ipam, service } = svc();
  const bad = await service.handle(
    req({ op: 'assign', handle: 'h', num4: 1, num6: 0, ips: ['10.0.1.5'], pools: ['a'] }),
  );
  assert.deepEqual(bad.ok ? undefined : bad.error.kind, 'invalid');
  assert.equal(ipam.held().size, 0);
  await service.handle(req({ op: 'assign', handle: 'other', num4: 0, num6: 0, ips: ['10.0.0.9'] }));
  const taken = await service.handle(
    req({ op: 'assign', handle: 'h', num4: 0, num6: 0, ips: ['10.0.0.8', '10.0.0.9'] }),
  );
  assert.deepEqual(taken.ok ? undefined : taken.error.kind, 'in-use');
  assert.deepEqual([...ipam.held().keys()], ['other']);
});

test('IPAM failures come back with their kind; the service never throws', async () => {
  for (const kind of ['unavailable', 'exhausted', 'retries-exhausted'] as const) {
    const { ipam, service } = svc();
    ipam.failNext('autoAssign', new IpamError(kind, 'x'));
    const r = await service.handle(req({ op: 'assign', handle: 'h', num4: 1, num6: 0 }));
    assert.equal(r.ok ? 'ok' : r.error.kind, kind);
  }
  const { ipam, service } = svc();
  ipam.failNext('listPools', new Error('boom'));
  const r = await service.handle(req({ op: 'status' }));
  assert.equal(r.ok ? 'ok' : r.error.kind, 'internal');
});

test("gateways: one per node and pool, from the node's own block, never a pod's, kept across pods", async () => {
  const { ipam, service } = svc([fakePool('a', '10.0.0.0/24')]);
  // A pod took the pool's first host before any gateway existed: the gateway must not need it.
  const first = await service.handle(req({ op: 'assign', handle: 'pod0', num4: 1, num6: 0 }));
  assert.ok(first.ok);
  const r = await service.handle(req({ op: 'assign', handle: 'h', num4: 1, num6: 0, gateways: true }));
  assert.ok(r.ok, JSON.stringify(r));
  const a = r.assignments?.[0];
  const gw = ipam.held().get(gatewayHandle('n1'));
  assert.equal(gw?.length, 1);
  assert.equal(a?.gateway, gw?.[0]);
  assert.equal(a?.poolCidr, '10.0.0.0/24');
  assert.notEqual(a?.ip, a?.gateway);
  assert.notEqual(first.assignments?.[0]?.ip, a?.gateway);
  // Every pod is deleted: the node's gateway stays (it is the node's), nothing else does.
  for (const h of ['pod0', 'h']) assert.ok((await service.handle(req({ op: 'release', handle: h }))).ok);
  assert.deepEqual([...ipam.held().keys()], [gatewayHandle('n1')]);
  // A new agent process (no cache) reuses the held address instead of taking another.
  const again = new IpamService({ ipam, nodeName: 'n1', log: silentLogger });
  const r2 = await again.handle(req({ op: 'assign', handle: 'h2', num4: 1, num6: 0, gateways: true }));
  assert.equal(r2.ok && r2.assignments?.[0]?.gateway, gw?.[0]);
  assert.deepEqual(ipam.held().get(gatewayHandle('n1')), gw);
});

test('gc releases unlisted handles with the prefix on this node only', async () => {
  const { ipam, service } = svc();
  for (const h of ['net.a', 'net.b', 'other.c'])
    await service.handle(req({ op: 'assign', handle: h, num4: 1, num6: 0 }));
  await ipam.autoAssign({ handle: 'net.remote', node: 'n2', num4: 1 });
  const r = await service.handle(req({ op: 'gc', prefix: 'net.', keep: ['net.a'] }));
  assert.ok(r.ok);
  assert.deepEqual([...ipam.held().keys()].sort(), ['net.a', 'net.remote', 'other.c']);
});

test('decodeRequest rejects malformed requests with bad-request', () => {
  for (const line of ['nope', '{"v":2,"op":"status"}', '{"v":1,"op":"x"}', '{"v":1,"op":"assign","handle":"h"}']) {
    const d = decodeRequest(line);
    assert.ok('bad' in d, line);
  }
  assert.deepEqual(decodeRequest('{"v":1,"id":3,"op":"release","handle":"h"}'), {
    v: 1,
    id: 3,
    op: 'release',
    handle: 'h',
  });
});

test('socket: mode 0600, client round trip, unreachable and timeout are code 11', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-sock-'));
  const path = join(dir, 'sub', 'agent.sock');
  const { service } = svc();
  const server = await listenIpamSocket(path, service, silentLogger);
  try {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const clock = new ManualClock();
    const client = new AgentClient(path, 1000, clock);
    const [a] = await client.assign({ handle: 'h', num4: 1, num6: 0 });
    assert.equal(a?.ip, '10.0.0.1');
    assert.deepEqual(await client.get('h'), [a]);
    assert.deepEqual(await client.release('h'), ['10.0.0.1']);
    await client.status();
    client.close();
    // A second agent on the same socket is refused; a stale file would be replaced.
    await assert.rejects(listenIpamSocket(path, service, silentLogger), /another process/);

    const gone = new AgentClient(join(dir, 'missing.sock'), 1000, clock);
    await assert.rejects(
      gone.status(),
      (e: unknown) => e instanceof CniError && e.code === 11 && /missing\.sock/.test(e.msg),
    );
  } finally {
    await server.close();
  }
  // A server that never answers: the deadline (on the injected clock) gives code 11.
  const { createServer } = await import('node:net');
  let connected: () => void = () => {};
  const onConnect = new Promise<void>((r) => {
    connected = r;
  });
  const mute = createServer(() => connected());
  const mutePath = join(dir, 'mute.sock');
  await new Promise<void>((r) => mute.listen(mutePath, r));
  try {
    const clock = new ManualClock();
    const client = new AgentClient(mutePath, 500, clock);
    const p = client.status();
    await onConnect;
    while (clock.pending() === 0) await new Promise((r) => setImmediate(r));
    clock.advance(501);
    await assert.rejects(
      p,
      (e: unknown) => e instanceof CniError && e.code === 11 && /no answer within 500 ms/.test(e.details),
    );
    client.close();
  } finally {
    mute.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('concurrent requests: same handle serialised (one address), different handles in parallel (distinct)', async () => {
  const store = new MemoryStore();
  const ipam = new Ipam(store, { clock: new ManualClock(), log: silentLogger });
  await ipam.addPool({ name: 'p', cidr: '10.44.0.0/16' });
  const service = new IpamService({ ipam, nodeName: 'n1', log: silentLogger });
  const assign = (handle: string, id: number): AgentRequest => ({ v: 1, id, op: 'assign', handle, num4: 1, num6: 0 });
  const same = await Promise.all([1, 2, 3].map((i) => service.handle(assign('net.same', i))));
  const ips = same.map((r) => (r.ok && 'assignments' in r ? r.assignments.map((a) => a.ip) : ['error']));
  assert.deepEqual(ips[1], ips[0]);
  assert.deepEqual(ips[2], ips[0]);
  assert.equal((await ipam.ipsByHandle('net.same')).length, 1);
  const many = await Promise.all(Array.from({ length: 16 }, (_, i) => service.handle(assign(`net.c${i}`, 10 + i))));
  const got = many.flatMap((r) => (r.ok && 'assignments' in r ? r.assignments.map((a) => a.ip) : []));
  assert.equal(new Set(got).size, 16);
});

test('a repeated ADD keeps and gets its held address when none is free or etcd fails on the way (fresh handles)', async () => {
  const store = new MemoryStore();
  const ipam = new Ipam(store, { clock: new ManualClock(), log: silentLogger });
  await ipam.addPool({ name: 'tiny', cidr: '10.45.0.0/30', blockSize: 30 });
  await ipam.setConfig({ strictAffinity: true });
  const service = new IpamService({ ipam, nodeName: 'n1', log: silentLogger });
  const assign = (handle: string) =>
    service.handle({ v: 1, id: ++id, op: 'assign', handle, num4: 1, num6: 0 } as AgentRequest);
  const ipOf = (r: Awaited<ReturnType<typeof assign>>) => (r.ok && 'assignments' in r ? r.assignments[0]?.ip : r);
  const first = ipOf(await assign('pod-a'));
  assert.equal(typeof first, 'string');
  // Fill the node's only block: the pool has no free address left.
  for (let i = 0; i < 8; i++) {
    const r = await assign(`fill-${i}`);
    if (!r.ok) {
      assert.equal(r.error.kind, 'exhausted');
      break;
    }
  }
  // The repeat's assignment fails (exhausted) before it could see the handle held: still its address.
  assert.equal(ipOf(await assign('pod-a')), first);
  // etcd failing during the repeat's assignment: the held address is neither lost nor released.
  store.failNext('commit', new IpamError('unavailable', 'etcd down'));
  store.failNext('list', new IpamError('unavailable', 'etcd down'));
  const during = await assign('pod-a');
  assert.ok(!during.ok || ipOf(during) === first, JSON.stringify(during));
  assert.deepEqual(
    (await ipam.ipsByHandle('pod-a')).map((a) => a.ip),
    [first],
  );
  assert.equal(ipOf(await assign('pod-a')), first);
});

test('socket: created 0600 without touching the process umask, no private directory left behind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-sock-'));
  const path = join(dir, 'agent.sock');
  const { service } = svc();
  const umask = t.mock.method(process, 'umask');
  const before = process.umask();
  umask.mock.resetCalls();
  const server = await listenIpamSocket(path, service, silentLogger);
  try {
    assert.equal(umask.mock.callCount(), 0, 'process.umask not called');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok(statSync(path).isSocket());
    assert.deepEqual(readdirSync(dir), ['agent.sock'], 'the private bind directory is removed');
    const client = new AgentClient(path, 1000, new ManualClock());
    await client.status();
    client.close();
  } finally {
    await server.close();
    umask.mock.restore();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(process.umask(), before);
});

test('gateways with the real allocator: each node gets its own gateway inside its own affine block', async () => {
  const store = new MemoryStore();
  const ipam = new Ipam(store, { clock: new ManualClock(), log: silentLogger });
  await ipam.addPool({ name: 'p', cidr: '10.45.0.0/16' });
  const gws: string[] = [];
  for (const node of ['n1', 'n2']) {
    const service = new IpamService({ ipam, nodeName: node, log: silentLogger });
    const r = await service.handle({
      v: 1,
      id: 1,
      op: 'assign',
      handle: `pod-${node}`,
      num4: 1,
      num6: 0,
      gateways: true,
    });
    assert.ok(r.ok && 'assignments' in r, JSON.stringify(r));
    const a = r.assignments[0];
    const [gw] = await ipam.ipsByHandle(gatewayHandle(node));
    assert.equal(a?.gateway, gw?.ip);
    assert.equal(gw?.block, a?.block, 'gateway and pod share the node block');
    gws.push(gw?.ip ?? '');
  }
  assert.notEqual(gws[0], gws[1]);
  const blocks = await Promise.all(['n1', 'n2'].map(async (n) => (await ipam.ipsByHandle(gatewayHandle(n)))[0]?.block));
  assert.notEqual(blocks[0], blocks[1], 'each node gateway is in that node block');
});

test('assign returns the data plane pod MTU with each address once it is planned', async () => {
  let mtu: number | undefined;
  const ipam = new FakeIpam([fakePool('a', '10.0.0.0/24')]);
  const service = new IpamService({ ipam, nodeName: 'n1', log: silentLogger, podMtu: () => mtu });
  const r1 = await service.handle(req({ op: 'assign', handle: 'h1', num4: 1, num6: 0 }));
  assert.ok(r1.ok && r1.assignments?.[0] && r1.assignments[0].podMtu === undefined);
  mtu = 1450;
  const r2 = await service.handle(req({ op: 'assign', handle: 'h2', num4: 1, num6: 0 }));
  assert.equal(r2.ok && r2.assignments?.[0]?.podMtu, 1450);
});

test("pod annotations: pools and a pinned address applied; the API's failures are clear errors that take nothing", async () => {
  const ipam = new FakeIpam([
    fakePool('a', '10.0.0.0/24'),
    fakePool('b', '10.0.1.0/24'),
    fakePool('six', 'fd00::/120'),
  ]);
  const pods: Record<string, Record<string, string>> = {
    'ns/in-b': { 'petrel.io/ipv4pools': '["b"]' },
    'ns/pinned': { 'petrel.io/ipAddrs': '["10.0.0.77"]' },
    'ns/pinned-a': { 'petrel.io/ipAddrs': '["10.0.0.78"]' },
    'ns/bad': { 'petrel.io/ipv4pools': '["nope"]' },
    'ns/plain': { 'example.com/team': 'a' },
  };
  let apiDown = false;
  const asked: string[] = [];
  const service = new IpamService({
    ipam,
    nodeName: 'n1',
    log: silentLogger,
    podAnnotations: async (ns, pod) => {
      asked.push(`${ns}/${pod}`);
      if (apiDown) throw new Error('connect ECONNREFUSED');
      const a = pods[`${ns}/${pod}`];
      return a ? { pod: a, namespace: {} } : null;
    },
  });
  const assign = (handle: string, pod: string | undefined, over: Record<string, unknown> = {}) =>
    service.handle(
      req({ op: 'assign', handle, num4: 1, num6: 0, attrs: pod ? { namespace: 'ns', pod } : {}, ...over }),
    );
  const ips = (r: Awaited<ReturnType<typeof assign>>) =>
    r.ok ? r.assignments?.map((a) => `${a.ip} ${a.pool}`) : r.error;

  assert.deepEqual(ips(await assign('h1', 'in-b')), ['10.0.1.1 b']);
  assert.deepEqual(ips(await assign('h2', 'pinned')), ['10.0.0.77 a']);
  // The network config's pools no longer allow the pinned address's pool: refused, nothing kept.
  const outside = await assign('h3', 'pinned-a', { pools: ['b'] });
  assert.match(
    outside.ok ? '' : `${outside.error.kind} ${outside.error.message}`,
    /^invalid 10\.0\.0\.78 \(pool a\) not in/,
  );
  const bad = await assign('h4', 'bad');
  assert.deepEqual(bad.ok ? bad : bad.error, {
    kind: 'invalid',
    message: 'pod ns/bad: petrel.io/ipv4pools: no IP pool named or with CIDR "nope"',
  });
  const gone = await assign('h5', 'gone');
  assert.deepEqual(gone.ok ? gone : gone.error.kind, 'not-found');
  // A pod without IPAM annotations: asked, and its ADD reads no pools for them.
  const poolReads = ipam.calls.filter((c) => c.op === 'listPools').length;
  const unannotated = await assign('h8', 'plain');
  assert.ok(unannotated.ok);
  assert.equal(ipam.calls.filter((c) => c.op === 'listPools').length, poolReads);
  apiDown = true;
  const down = await assign('h6', 'in-b');
  assert.deepEqual(down.ok ? down : down.error, {
    kind: 'unavailable',
    message: 'reading pod ns/in-b from the Kubernetes API: connect ECONNREFUSED',
  });
  // Not a Kubernetes pod (no namespace/name from CNI_ARGS): the API is not asked.
  const plain = await assign('h7', undefined);
  assert.ok(plain.ok);
  // A repeated ADD gets what the handle holds although the API is down (the pod is read together
  // with the handle; with the handle held, the failed read does not matter).
  assert.deepEqual(ips(await assign('h1', 'in-b')), ['10.0.1.1 b']);
  assert.deepEqual(asked, [
    'ns/in-b',
    'ns/pinned',
    'ns/pinned-a',
    'ns/bad',
    'ns/gone',
    'ns/plain',
    'ns/in-b',
    'ns/in-b',
  ]);
  assert.deepEqual([...ipam.held().keys()].sort(), ['h1', 'h2', 'h7', 'h8']);
});
