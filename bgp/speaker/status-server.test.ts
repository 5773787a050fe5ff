import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { ManualClock } from '../../agent/common/clock.js';
import { mulberry32 } from '../codec/mutate.js';
import { createBgpMetrics } from '../metrics.js';
import { Speaker } from './speaker.js';
import { ADMIN_HEADER, routeRequest, type StatusServer, startStatusServer } from './status-server.js';
import { FakeNetwork } from './transport.js';

// A real HTTP server on loopback (port 0) in front of a speaker on the in-memory network.
let speaker: Speaker;
let srv: StatusServer;
const logged: unknown[] = [];

before(async () => {
  speaker = new Speaker({ asn: 64512, routerId: '10.0.0.1' }, { clock: new ManualClock(), network: new FakeNetwork() });
  speaker.addPeer({ address: '10.0.0.2', asn: 64512, passive: true });
  await speaker.start();
  const log = {
    child: () => log,
    error: (o: unknown) => logged.push(o),
  } as unknown as import('../../agent/common/logger.js').Logger;
  srv = await startStatusServer(speaker, createBgpMetrics(speaker), '127.0.0.1', 0, { log, headersTimeoutMs: 600 });
});

after(async () => {
  await srv.close();
  await speaker.stop();
});

/** Sends raw bytes, returns the status code of the first response line (0 if the server just closed). */
function raw(text: string | Buffer, timeoutMs = 3000): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect(srv.port, '127.0.0.1');
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(String(text).slice(0, 80))}`));
    }, timeoutMs);
    s.on('data', (b) => {
      buf += b.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(buf);
      if (m) {
        clearTimeout(t);
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(0);
    });
    s.write(text);
  });
}

async function req(method: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${srv.port}${path}`, { method, headers });
  return { status: res.status, body: await res.text(), allow: res.headers.get('allow') };
}

const admin = { [ADMIN_HEADER]: '1' };

const CASES: { name: string; method: string; path: string; headers?: Record<string, string>; status: number }[] = [
  { name: 'GET /status', method: 'GET', path: '/status', status: 200 },
  { name: 'GET /routes', method: 'GET', path: '/routes', status: 200 },
  { name: 'GET /metrics', method: 'GET', path: '/metrics', status: 200 },
  { name: 'unknown path', method: 'GET', path: '/nope', status: 404 },
  { name: 'POST to a GET path', method: 'POST', path: '/status', status: 405 },
  { name: 'GET to an admin path', method: 'GET', path: '/peers/10.0.0.2/reset', status: 405 },
  { name: 'DELETE to an admin path', method: 'DELETE', path: '/peers/10.0.0.2/reset', headers: admin, status: 405 },
  { name: 'bad percent-encoding (issue 13)', method: 'POST', path: '/peers/%ZZ/reset', headers: admin, status: 400 },
  {
    name: 'bad encoding in message',
    method: 'POST',
    path: '/peers/10.0.0.2/shutdown?message=%E0%A4%A',
    headers: admin,
    status: 200,
  },
  { name: 'peer that is no address', method: 'POST', path: '/peers/not-an-ip/reset', headers: admin, status: 400 },
  { name: 'unknown peer', method: 'POST', path: '/peers/10.9.9.9/reset', headers: admin, status: 404 },
  { name: 'unknown action', method: 'POST', path: '/peers/10.0.0.2/explode', headers: admin, status: 404 },
  {
    name: 'admin POST without the header (cross-site form)',
    method: 'POST',
    path: '/peers/10.0.0.2/refresh',
    status: 403,
  },
  {
    name: 'admin header with another value',
    method: 'POST',
    path: '/peers/10.0.0.2/refresh',
    headers: { [ADMIN_HEADER]: 'yes' },
    status: 403,
  },
  { name: 'refresh', method: 'POST', path: '/peers/10.0.0.2/refresh', headers: admin, status: 200 },
  {
    name: 'shutdown with message',
    method: 'POST',
    path: '/peers/10.0.0.2/shutdown?message=maintenance',
    headers: admin,
    status: 200,
  },
  { name: 'enable', method: 'POST', path: '/peers/10.0.0.2/enable', headers: admin, status: 200 },
  { name: 'percent-encoded peer', method: 'POST', path: '/peers/10%2E0.0.2/reset', headers: admin, status: 200 },
];

for (const c of CASES) {
  test(`status server: ${c.name} -> ${c.status}`, async () => {
    const r = await req(c.method, c.path, c.headers);
    assert.equal(r.status, c.status, r.body);
    if (c.status === 405) assert.ok(r.allow, 'a 405 names the allowed methods');
    if (c.status >= 400) assert.ok(JSON.parse(r.body).error, 'errors carry a JSON { error }');
  });
}

test('status server: the admin actions reach the speaker (shutdown, then enable)', async () => {
  assert.equal((await req('POST', '/peers/10.0.0.2/shutdown', admin)).status, 200);
  assert.equal(speaker.peerStatus('10.0.0.2')[0]?.adminShutdown, true);
  assert.equal((await req('POST', '/peers/10.0.0.2/shutdown')).status, 403);
  assert.equal((await req('POST', '/peers/10.0.0.2/enable', { [ADMIN_HEADER]: '0' })).status, 403);
  assert.equal(speaker.peerStatus('10.0.0.2')[0]?.adminShutdown, true, 'a refused request changes nothing');
  assert.equal((await req('POST', '/peers/10.0.0.2/enable', admin)).status, 200);
  assert.equal(speaker.peerStatus('10.0.0.2')[0]?.adminShutdown, false);
});

test('status server: a request body is refused (413), oversized headers 431, garbage 400', async () => {
  assert.equal(
    await raw(
      `POST /peers/10.0.0.2/refresh HTTP/1.1\r\nHost: x\r\n${ADMIN_HEADER}: 1\r\nContent-Length: 5\r\n\r\nhello`,
    ),
    413,
  );
  assert.equal(await raw(`GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 431);
  assert.equal(await raw('\x00\x01\x02 garbage\r\n\r\n'), 400);
  assert.equal(await raw(`GET http://evil.example/status HTTP/1.1\r\nHost: x\r\n\r\n`), 400);
  assert.equal(await raw(`GET /${'a'.repeat(3000)} HTTP/1.1\r\nHost: x\r\n\r\n`), 400);
  assert.equal((await req('GET', '/status')).status, 200, 'still serving');
});

test('status server: a client that never finishes its headers is cut (bounded, not held open)', async () => {
  const s = connect(srv.port, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET /status HTTP/1.1\r\nHost: x\r\n');
  const t0 = performance.now();
  const answer = await new Promise<string>((resolve) => {
    let buf = '';
    s.on('data', (b) => {
      buf += b.toString();
    });
    s.on('close', () => resolve(buf));
  });
  const ms = performance.now() - t0;
  assert.match(answer, /^(HTTP\/1\.1 408 |$)/, 'a 408 or a plain close');
  assert.ok(ms < 3000, `cut after ${Math.round(ms)} ms`);
});

test('routeRequest: pure parse of method, target and headers', () => {
  assert.deepEqual(routeRequest('POST', '/peers/fd00%3A%3A1/shutdown?message=bye', admin), {
    kind: 'admin',
    action: 'shutdown',
    peer: 'fd00::1',
    message: 'bye',
  });
  assert.deepEqual(routeRequest('HEAD', '/status?x=1', {}), { kind: 'get', path: '/status' });
  for (const [m, u, h, status] of [
    ['POST', '/peers/%ZZ/reset', admin, 400],
    ['POST', '/peers/10.0.0.2/reset', {}, 403],
    ['GET', '//status', {}, 400],
    ['GET', '*', {}, 400],
    ['GET', undefined, {}, 400],
    ['PUT', '/routes', {}, 405],
    ['GET', '/peers', {}, 404],
  ] as const) {
    assert.throws(
      () => routeRequest(m, u, h),
      (e: unknown) => (e as { status?: number }).status === status,
      `${m} ${u}`,
    );
  }
});

// Seeded fuzz: random methods, targets (bytes, percent escapes, admin-shaped paths) and headers,
// sent raw. Every request gets an HTTP status (or, for bytes that are no HTTP at all, Node's 400
// and close) and the server keeps serving.
test('status server fuzz: 400 random requests, each answered with a status code, server stays up', async () => {
  const rnd = mulberry32(13);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const methods = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'BREW', 'G\tT', ''];
  const pieces = [
    'peers',
    '10.0.0.2',
    '%ZZ',
    '%',
    '%2',
    '%E0%A4%A',
    '%00',
    '..',
    'reset',
    'shutdown',
    'refresh',
    'enable',
    '?message=',
    '%FF',
    '\u00e9',
    '#',
    ';',
    '',
    'status',
    'metrics',
    '::1',
    '%3A',
  ];
  const statuses = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    const n = 1 + Math.floor(rnd() * 5);
    let target = '';
    for (let j = 0; j < n; j++) target += `/${pick(pieces)}`;
    if (rnd() < 0.1) target = target.slice(1);
    if (rnd() < 0.1) target += String.fromCharCode(Math.floor(rnd() * 256));
    const headers = ['Host: x'];
    if (rnd() < 0.5) headers.push(`${ADMIN_HEADER}: ${pick(['1', '0', '', '1, 1'])}`);
    if (rnd() < 0.2) headers.push(`Content-Length: ${pick(['0', '3', '-1', 'abc', '99999999999'])}`);
    if (rnd() < 0.1) headers.push('Transfer-Encoding: chunked');
    if (rnd() < 0.1) headers.push(`X-${Math.floor(rnd() * 1e6)}: ${'v'.repeat(Math.floor(rnd() * 100))}`);
    const text = Buffer.from(`${pick(methods)} ${target} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1');
    const status = await raw(text);
    assert.ok(status >= 200 && status < 600, `request ${i} ${JSON.stringify(text.toString('latin1'))}: got ${status}`);
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }
  // The fuzz reached more than one outcome (it is not all rejected at the HTTP parser).
  assert.ok(statuses.size >= 4, `statuses seen: ${[...statuses].join(' ')}`);
  assert.equal((await req('GET', '/status')).status, 200);
  assert.equal(speaker.peerStatus().length, 1, 'the speaker is intact');
});

test('status server: an error on the listening server after listen is logged, not thrown (EMFILE)', async () => {
  const before = logged.length;
  const err = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });
  assert.doesNotThrow(() => srv.server.emit('error', err));
  assert.equal(logged.length, before + 1);
  assert.equal((await req('GET', '/status')).status, 200, 'still serving');
});
