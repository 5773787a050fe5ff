import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { type SseEvent, SseParser } from '../ui/model.js';
import { type AgentStatusServer, MAX_WATCHERS, type RouteChange, startAgentStatusServer } from './server.js';

// A real HTTP server on loopback (port 0) over an in-memory status source whose route changes
// the test drives.
const bus = new EventEmitter<{ route: [RouteChange]; reset: [] }>();
let routes: unknown[] = [{ prefix: '10.244.1.0/26', nextHops: ['10.0.0.2'], local: false, stale: false }];
let srv: AgentStatusServer;

before(async () => {
  srv = await startAgentStatusServer(
    {
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({ node: 'n1' }),
      routes: () => routes,
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
});

after(async () => {
  await srv.close();
});

/** Opens /routes/watch; `events` fills as they arrive; close() ends the stream. */
function watch(): Promise<{ status: number; events: SseEvent[]; close(): void; wait(n: number): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path: '/routes/watch' }, (res) => {
      const events: SseEvent[] = [];
      const p = new SseParser();
      const waiters: (() => void)[] = [];
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        events.push(...p.push(d));
        for (const w of waiters.splice(0)) w();
      });
      res.on('error', () => {});
      const wait = async (n: number) => {
        while (events.length < n) await new Promise<void>((r) => waiters.push(r));
      };
      resolve({ status: res.statusCode ?? 0, events, close: () => req.destroy(), wait });
    });
    req.on('error', reject);
    req.end();
  });
}

const get = (path: string, method = 'GET') =>
  new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: srv.port, path, method }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });

test('/routes/watch: a snapshot first, then every change in order, a new snapshot after a reset', async () => {
  const w = await watch();
  assert.equal(w.status, 200);
  await w.wait(1);
  assert.equal(w.events[0]?.event, 'snapshot');
  assert.deepEqual(JSON.parse(w.events[0]?.data ?? ''), routes);
  // Wait until the server subscribed (the snapshot is written right before).
  while (bus.listenerCount('route') === 0) await new Promise((r) => setImmediate(r));
  const add: RouteChange = { event: 'add', prefix: '10.244.2.0/26', family: 'ipv4-unicast', nextHops: ['10.0.0.3'] };
  const wd: RouteChange = { event: 'withdraw', prefix: '10.244.1.0/26', family: 'ipv4-unicast', nextHops: [] };
  bus.emit('route', add);
  bus.emit('route', wd);
  routes = [];
  bus.emit('reset');
  await w.wait(4);
  assert.deepEqual(
    w.events.map((e) => [e.event, JSON.parse(e.data)]),
    [
      ['snapshot', [{ prefix: '10.244.1.0/26', nextHops: ['10.0.0.2'], local: false, stale: false }]],
      ['route', add],
      ['route', wd],
      ['snapshot', []],
    ],
  );
  w.close();
  // The listener goes with the stream.
  for (let i = 0; i < 200 && bus.listenerCount('route') > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(bus.listenerCount('route'), 0);
});

test(`/routes/watch: at most ${MAX_WATCHERS} streams, then 503`, async () => {
  const ws = await Promise.all(Array.from({ length: MAX_WATCHERS }, () => watch()));
  assert.ok(ws.every((w) => w.status === 200));
  assert.equal(await get('/routes/watch'), 503);
  for (const w of ws) w.close();
  for (let i = 0; i < 200 && bus.listenerCount('route') > 0; i++) await new Promise((r) => setTimeout(r, 5));
  const again = await watch();
  assert.equal(again.status, 200);
  again.close();
});

test('bad requests: a query string 400, other methods 405, unknown paths 404', async () => {
  assert.equal(await get('/status?x=1'), 400);
  assert.equal(await get('/routes/watch?since=1'), 400);
  assert.equal(await get('/status', 'POST'), 405);
  assert.equal(await get('/nope'), 404);
  assert.equal(await get('/status'), 200);
});
