import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { MemoryStore } from '../../ipam-etcd/index.js';
import { systemClock } from '../common/clock.js';
import { silentLogger } from '../common/logger.js';
import { type AgentStatusServer, type RouteChange, startAgentStatusServer } from '../status/server.js';
import { Collector } from './collector.js';
import { type Forwarder, startForwarder } from './forward.js';
import { ListenError, parseListen } from './listen.js';
import { type ClusterView, type FeedEntry, SseParser } from './model.js';
import { startUiServer, type UiServer } from './server.js';

// The whole UI on loopback: a MemoryStore as etcd with one node record at 127.0.0.1, a real agent
// status server there (fake source), the collector, the UI on a Unix socket and the forwarder.
const bus = new EventEmitter<{ route: [RouteChange]; reset: [] }>();
const dir = mkdtempSync(join(tmpdir(), 'petrel-ui-unit-'));
const sock = join(dir, 'ui.sock');
let agent: AgentStatusServer;
let collector: Collector;
let ui: UiServer;
let fwd: Forwarder;

before(async () => {
  agent = await startAgentStatusServer(
    {
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({
        node: 'node-1',
        readiness: { ready: true, reasons: [] },
        peers: [{ address: '127.0.0.2', state: 'Active', type: 'global' }],
      }),
      routes: () => [{ prefix: '10.244.0.0/26', nextHops: [], local: true, stale: false }],
      registry: new Registry(),
      watchRoutes(onChange, onReset) {
        bus.on('route', onChange);
        bus.on('reset', onReset);
        return () => {
          bus.off('route', onChange);
          bus.off('reset', onReset);
        };
      },
    },
    '127.0.0.1',
    0,
  );
  const store = new MemoryStore();
  await store.commit(
    [],
    [
      { key: '/petrel/nodes/node-1', value: JSON.stringify({ name: 'node-1', labels: {}, ipv4: '127.0.0.1/8' }) },
      { key: '/petrel/nodes-alive/node-1', value: JSON.stringify({ name: 'node-1', lease: '1', since: 'x' }) },
      { key: '/petrel/nodes/node-2', value: JSON.stringify({ name: 'node-2', labels: {}, ipv4: '127.0.0.2/8' }) },
    ],
  );
  collector = new Collector({
    store,
    statusPort: agent.port,
    refreshMs: 60_000,
    requestTimeoutMs: 1000,
    clock: systemClock,
    log: silentLogger,
  });
  ui = await startUiServer(collector, { kind: 'unix', path: sock }, silentLogger);
  fwd = await startForwarder({ kind: 'tcp', host: '127.0.0.1', port: 0 }, sock, silentLogger);
  const first = new Promise((r) => collector.once('view', r));
  collector.start();
  await first;
});

after(async () => {
  await fwd.close();
  await ui.close();
  await collector.stop();
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, method = 'GET', headers: Record<string, string> = {}) =>
  new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: fwd.port, path, method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('error', reject);
    req.end();
  });

test('through the forwarder: the page, its script, and the picture (node-2 has no agent)', async () => {
  assert.equal(ui.address, `unix:${sock}`);
  assert.equal(statSync(sock).mode & 0o777, 0o660);
  const page = await get('/');
  assert.equal(page.status, 200);
  assert.match(page.type, /^text\/html/);
  assert.match(page.body, /<script src="\/app\.js" defer><\/script>/);
  assert.match((await get('/app.js')).type, /^text\/javascript/);
  const v = JSON.parse((await get('/api/cluster')).body) as ClusterView;
  assert.deepEqual(
    v.nodes.map((n) => [n.name, n.alive, n.agent.reachable]),
    [
      ['node-1', true, true],
      ['node-2', false, false],
    ],
  );
  assert.equal(v.nodes[0]?.sessions.find((s) => s.peerNode === 'node-2')?.state, 'Active');
  assert.equal(v.links[0]?.health, 'down');
  assert.ok(v.problems.some((p) => /node-2: agent status endpoint unreachable \(ECONNREFUSED/.test(p)));
});

test('bad requests: 405, 400, 404', async () => {
  assert.equal((await get('/api/cluster', 'POST')).status, 405);
  assert.equal((await get('/api/cluster?x=1')).status, 400);
  assert.equal((await get('/api/path?from=a')).status, 400);
  assert.equal((await get('/api/path?from=a&to=b')).status, 404);
  assert.equal((await get('/api/feed?after=-1')).status, 400);
  assert.equal((await get('/nope')).status, 404);
  // DNS rebinding: a name that is not ours.
  assert.equal((await get('/api/cluster', 'GET', { host: 'evil.example:9180' })).status, 403);
  assert.equal((await get('/api/cluster', 'GET', { host: 'localhost:9180' })).status, 200);
  assert.equal((await get('/api/cluster', 'GET', { host: '[::1]:9180' })).status, 200);
});

test('route feed: an agent route event reaches /api/events and /api/feed', async () => {
  const events: { event: string; data: string }[] = [];
  let wake: () => void = () => {};
  const req = request({ host: '127.0.0.1', port: fwd.port, path: '/api/events' }, (res) => {
    assert.equal(res.headers['content-type'], 'text/event-stream');
    const p = new SseParser();
    res.setEncoding('utf8');
    res.on('data', (d: string) => {
      events.push(...p.push(d));
      wake();
    });
    res.on('error', () => {});
  });
  req.end();
  const until = async (f: () => boolean) => {
    while (!f()) await new Promise<void>((r) => (wake = r));
  };
  await until(() => events.some((e) => e.event === 'cluster'));
  // The collector's watch stream on node-1's agent is up once its snapshot came in.
  await until(() => events.some((e) => e.event === 'feed' && (JSON.parse(e.data) as FeedEntry).kind === 'stream-up'));
  bus.emit('route', { event: 'add', prefix: '10.244.9.0/26', family: 'ipv4-unicast', nextHops: ['127.0.0.2'] });
  await until(() => events.some((e) => e.event === 'feed' && (JSON.parse(e.data) as FeedEntry).kind === 'add'));
  req.destroy();
  const add = events.map((e) => JSON.parse(e.data) as FeedEntry).find((e) => e.kind === 'add');
  assert.equal(add?.node, 'node-1');
  assert.equal(add?.prefix, '10.244.9.0/26');
  assert.equal(add?.viaNode, 'node-2');
  const feed = JSON.parse((await get(`/api/feed?after=${(add?.seq ?? 1) - 1}`)).body) as FeedEntry[];
  assert.equal(feed[0]?.prefix, '10.244.9.0/26');
});

test('forwarder: 502 when the UI socket is gone', async () => {
  const f = await startForwarder({ kind: 'tcp', host: '127.0.0.1', port: 0 }, join(dir, 'none.sock'), silentLogger);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: f.port, path: '/' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 502);
  } finally {
    await f.close();
  }
});

test('parseListen: HOST:PORT, [V6]:PORT, unix:/path; everything else a ListenError', () => {
  assert.deepEqual(parseListen('127.0.0.1:9180'), { kind: 'tcp', host: '127.0.0.1', port: 9180 });
  assert.deepEqual(parseListen('[::1]:0'), { kind: 'tcp', host: '::1', port: 0 });
  assert.deepEqual(parseListen('unix:/run/x/ui.sock'), { kind: 'unix', path: '/run/x/ui.sock' });
  for (const bad of ['9180', 'host:80', '1.2.3.4:70000', 'unix:rel.sock', `unix:/${'a'.repeat(120)}`, '::1:80', ''])
    assert.throws(() => parseListen(bad), ListenError, bad);
});

test('etcd unreachable at start: a picture anyway, naming the problem; later refreshes fill it', async () => {
  const store = new MemoryStore();
  store.failNext('list', new Error('ECONNREFUSED 10.99.0.1:2379'));
  const c = new Collector({
    store,
    statusPort: agent.port,
    refreshMs: 60_000,
    requestTimeoutMs: 1000,
    clock: systemClock,
    log: silentLogger,
  });
  try {
    await c.refresh();
    assert.deepEqual(c.current()?.problems, ['etcd unreachable: ECONNREFUSED 10.99.0.1:2379']);
    assert.deepEqual(c.current()?.nodes, []);
    await c.refresh();
    assert.deepEqual(c.current()?.problems, []);
  } finally {
    await c.stop();
  }
});
