/**
 * Flow control of the speaker (issue 13 back-pressure, issue 9 chunked withdrawal), on the
 * in-memory network with a manual clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Clock, ManualClock, type TimerHandle } from '../../agent/common/clock.js';
import { decodeMessage, Framer, isEndOfRib, makeContext, type UpdateMessage } from '../codec/index.js';
import { Speaker } from './speaker.js';
import { type FakeConn, FakeNetwork, type Network } from './transport.js';
import type { PeerConfig, RouteEvent, SpeakerConfig } from './types.js';

/**
 * A manual clock on which a 0 ms timer waits for the next turn (1 ms): a timer armed by a timer
 * does not run in the same advance(), so chunked work shows up one chunk per turn.
 */
class TurnClock extends ManualClock implements Clock {
  override setTimer(ms: number, fn: () => void): TimerHandle {
    return super.setTimer(Math.max(1, ms), fn);
  }
}

async function turns(clock: ManualClock, n = 20): Promise<void> {
  for (let i = 0; i < n; i++) {
    await new Promise((r) => setImmediate(r));
    clock.advance(1);
  }
}

const fast = { connectRetrySec: 1, idleHoldSec: 1, idleHoldMaxSec: 4 };

interface Node {
  speaker: Speaker;
  events: RouteEvent[];
}

function node(
  net: FakeNetwork,
  clock: ManualClock,
  cfg: Partial<SpeakerConfig> & { routerId: string },
  peer: PeerConfig,
  withdrawChunk?: number,
): Node {
  const speaker = new Speaker(
    { asn: 64512, listen: { address: cfg.routerId, port: 179 }, ...cfg },
    { clock, network: net.host(cfg.routerId), ...(withdrawChunk ? { withdrawChunk } : {}) },
  );
  const events: RouteEvent[] = [];
  speaker.on('route', (e) => events.push(e));
  speaker.addPeer(peer);
  return { speaker, events };
}

async function pair(opts: { a?: Partial<SpeakerConfig>; bChunk?: number } = {}) {
  const clock = new TurnClock();
  const net = new FakeNetwork();
  const a = node(net, clock, { routerId: '10.0.0.1', ...opts.a }, { address: '10.0.0.2', asn: 64512, ...fast });
  const b = node(net, clock, { routerId: '10.0.0.2' }, { address: '10.0.0.1', asn: 64512, ...fast }, opts.bChunk);
  await a.speaker.start();
  await b.speaker.start();
  await turns(clock);
  return { clock, net, a, b };
}

const state = (n: Node) => n.speaker.peerStatus()[0]?.state;
const v4 = (i: number) => `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`;
const learned = (n: Node) =>
  n.speaker
    .bestRoutes()
    .filter((r) => !r.local)
    .map((r) => r.prefix)
    .sort();
const localOf = (n: Node) =>
  n.speaker
    .bestRoutes()
    .filter((r) => r.local)
    .map((r) => r.prefix)
    .sort();

/** a's live end of the a -> b connection. */
function aToB(net: FakeNetwork): FakeConn {
  const c = net.conns.filter((x) => !x.closed && x.localAddress === '10.0.0.1' && x.remoteAddress === '10.0.0.2');
  assert.equal(c.length, 1);
  return c[0] as FakeConn;
}

/** Per prefix: how often `conn` announced and withdrew it (decoding everything it wrote). */
function wireCounts(conn: FakeConn) {
  const framer = new Framer();
  framer.maxMessageLen = 65535;
  const ctx = makeContext({ extendedMessage: true });
  const ann = new Map<string, number>();
  const wd = new Map<string, number>();
  const med = new Map<string, number | undefined>();
  for (const f of framer.push(Buffer.concat(conn.written)).frames) {
    const r = decodeMessage(f, ctx);
    assert.ok(r.ok);
    if (r.msg.type !== 'update') continue;
    const u = r.msg as UpdateMessage;
    for (const p of u.withdrawn) wd.set(`${p.prefix}/${p.len}`, (wd.get(`${p.prefix}/${p.len}`) ?? 0) + 1);
    for (const p of u.nlri) {
      const k = `${p.prefix}/${p.len}`;
      ann.set(k, (ann.get(k) ?? 0) + 1);
      med.set(k, u.attrs.med);
    }
  }
  return { ann, wd, med };
}

// ---------------------------------------------------------------- back-pressure (issue 13)

test('back-pressure: exports pause above the soft limit, resume on drain; the peer ends with exactly the Loc-RIB, nothing sent twice', async () => {
  const { clock, net, a, b } = await pair({ a: { sendBuffer: { softLimitBytes: 2000, hardLimitBytes: 1 << 20 } } });
  for (let i = 0; i < 300; i++) a.speaker.announce(v4(i));
  await turns(clock);
  assert.equal(learned(b).length, 300);
  const conn = aToB(net);
  conn.stall();
  for (let i = 300; i < 2300; i++) a.speaker.announce(v4(i)); // one flush, ~10 kB: over the soft limit
  await turns(clock);
  const queued = conn.writableLength;
  assert.ok(queued > 2000, `queued ${queued}`);
  // While paused: more routes, withdrawals, changed attributes; and routes that come and go.
  for (let i = 2300; i < 2800; i++) a.speaker.announce(v4(i));
  for (let i = 0; i < 100; i++) a.speaker.withdraw(v4(i));
  for (let i = 100; i < 150; i++) a.speaker.announce(v4(i), { med: 7 });
  for (let i = 2700; i < 2800; i++) a.speaker.withdraw(v4(i));
  await turns(clock);
  assert.equal(conn.writableLength, queued, 'nothing more was queued on the stalled socket');
  const held = a.speaker.peerStatus()[0]?.exportsHeld ?? 0;
  assert.ok(held >= 650, `held ${held}`);
  assert.equal(state(a), 'Established');
  assert.equal(state(b), 'Established', 'b keeps the session (its hold timer has not run out)');
  conn.unstall();
  await turns(clock, 100);
  assert.equal(a.speaker.peerStatus()[0]?.exportsHeld, undefined, 'nothing held any more');
  assert.deepEqual(learned(b), localOf(a), "b holds exactly a's Loc-RIB");
  assert.equal(learned(b).length, 2600);
  assert.equal(a.speaker.peerStatus()[0]?.prefixesAdvertised, 2600);
  const { ann, wd, med } = wireCounts(conn);
  for (let i = 0; i < 100; i++) assert.deepEqual([ann.get(v4(i)), wd.get(v4(i))], [1, 1], v4(i));
  for (let i = 100; i < 150; i++) assert.deepEqual([ann.get(v4(i)), med.get(v4(i))], [2, 7], v4(i));
  for (let i = 150; i < 2700; i++) assert.equal(ann.get(v4(i)), 1, v4(i));
  for (let i = 2700; i < 2800; i++)
    assert.deepEqual([ann.get(v4(i)), wd.get(v4(i))], [undefined, undefined], `${v4(i)} came and went while held`);
  await a.speaker.stop();
  await b.speaker.stop();
});

test('back-pressure: End-of-RIB waits until the held table is out', async () => {
  const gr = { gracefulRestart: { restartTimeSec: 30 } };
  const clock = new TurnClock();
  const net = new FakeNetwork();
  // a's accepted connection stalls at its first UPDATE (the table dump), after OPEN/KEEPALIVE.
  let conn: FakeConn | undefined;
  const host = net.host('10.0.0.1');
  const network: Network = {
    ...host,
    listen: (h, port, onConn, onError) =>
      host.listen(
        h,
        port,
        (c) => {
          const fc = c as FakeConn;
          const write = fc.write.bind(fc);
          fc.write = (d: Uint8Array) => {
            if (!conn && d[18] === 2) {
              conn = fc;
              fc.stall();
            }
            return write(d);
          };
          onConn(c);
        },
        onError,
      ),
  };
  const a = new Speaker(
    {
      asn: 64512,
      routerId: '10.0.0.1',
      listen: { address: '10.0.0.1', port: 179 },
      ...gr,
      sendBuffer: { softLimitBytes: 500 },
    },
    { clock, network },
  );
  a.addPeer({ address: '10.0.0.2', asn: 64512, ...fast, passive: true });
  for (let i = 0; i < 10_000; i++) a.announce(v4(i)); // > one export chunk (4096)
  const b = node(net, clock, { routerId: '10.0.0.2', ...gr }, { address: '10.0.0.1', asn: 64512, ...fast });
  await a.start();
  await b.speaker.start();
  await turns(clock, 30);
  assert.ok(conn, 'the table dump started');
  assert.equal(a.peerStatus()[0]?.state, 'Established');
  const before = wireCounts(conn).ann.size;
  assert.ok(before < 10_000, `the dump was cut short by the soft limit (${before} sent)`);
  conn.unstall();
  await turns(clock, 100);
  assert.equal(learned(b).length, 10_000);
  // End-of-RIB (an empty UPDATE) is the last UPDATE on the wire.
  const framer = new Framer();
  framer.maxMessageLen = 65535;
  const ups = framer
    .push(Buffer.concat(conn.written))
    .frames.map((f) => decodeMessage(f, makeContext({ extendedMessage: true })))
    .flatMap((r) => (r.ok && r.msg.type === 'update' ? [r.msg] : []));
  const eors = ups.flatMap((u, i) => (isEndOfRib(u) ? [i] : []));
  const lastRoute = ups.length - 1 - [...ups].reverse().findIndex((u) => !isEndOfRib(u));
  assert.equal(eors.length, 2, 'End-of-RIB for IPv4 and IPv6');
  assert.ok(
    (eors[0] as number) > lastRoute,
    `End-of-RIB after the table: ${ups.map((u) => (isEndOfRib(u) ? 'EoR' : u.nlri.length)).join(' ')}`,
  );
  await a.stop();
  await b.speaker.stop();
});

test('back-pressure: over the hard limit -> Cease 6/8 (Out of Resources), then reconnect', async () => {
  const { clock, net, a, b } = await pair({ a: { sendBuffer: { softLimitBytes: 1000, hardLimitBytes: 5000 } } });
  aToB(net).stall();
  // One flush of 3000 UPDATEs (a MED each): ~150 kB at once.
  for (let i = 0; i < 3000; i++) a.speaker.announce(v4(i), { med: i });
  await turns(clock);
  const st = a.speaker.peerStatus()[0];
  assert.equal(st?.notificationsOut['6/8'], 1);
  assert.notEqual(st?.state, 'Established');
  assert.match(st?.lastError ?? '', /hard limit/);
  // The peer comes back on a new connection (not stalled) and gets the whole table.
  for (let i = 0; i < 100 && !(state(a) === 'Established' && learned(b).length === 3000); i++) await turns(clock, 50);
  assert.equal(state(a), 'Established');
  assert.equal(learned(b).length, 3000);
  await a.speaker.stop();
  await b.speaker.stop();
});

test('pauseInput: nothing received is handled until resumeInput, then everything is', async () => {
  const { clock, a, b } = await pair();
  b.speaker.pauseInput();
  for (let i = 0; i < 50; i++) a.speaker.announce(v4(i));
  await turns(clock);
  assert.equal(b.events.length, 0);
  b.speaker.resumeInput();
  await turns(clock);
  assert.equal(b.events.length, 50);
  await a.speaker.stop();
  await b.speaker.stop();
});

// ---------------------------------------------------------------- chunked withdrawal (issue 9)

test('dropped peer: its table is withdrawn in chunks, timers run between chunks, all old routes go', async () => {
  const { clock, a, b } = await pair({ bChunk: 100 });
  for (let i = 0; i < 1000; i++) a.speaker.announce(v4(i));
  await turns(clock);
  assert.equal(learned(b).length, 1000);
  b.events.length = 0;
  b.speaker.removePeer('10.0.0.1');
  const afterFirst = learned(b).length;
  assert.equal(afterFirst, 900, 'one chunk at once');
  assert.equal(b.speaker.pendingWithdrawals, 900);
  // A timer armed now runs after the next chunk, long before the last one.
  let seen = -1;
  clock.setTimer(0, () => {
    seen = b.speaker.pendingWithdrawals;
  });
  await turns(clock, 1);
  assert.equal(seen, 800, 'the timer ran between chunks');
  await turns(clock, 20);
  assert.equal(b.speaker.pendingWithdrawals, 0);
  assert.deepEqual(learned(b), []);
  assert.equal(b.events.filter((e) => e.event === 'withdraw').length, 1000, 'one withdraw per route');
  assert.equal(new Set(b.events.map((e) => e.prefix)).size, 1000);
  await a.speaker.stop();
  await b.speaker.stop();
});

test('dropped peer: a session that reconnects mid-sweep keeps its new routes; the old ones go', async () => {
  const { clock, net, a, b } = await pair({ bChunk: 1 });
  for (let i = 0; i < 3000; i++) a.speaker.announce(v4(i));
  await turns(clock, 40);
  assert.equal(learned(b).length, 3000);
  net.cut('10.0.0.1', '10.0.0.2');
  await turns(clock, 2);
  assert.notEqual(state(b), 'Established');
  // While a is away it stops originating 500 of them.
  for (let i = 0; i < 500; i++) a.speaker.withdraw(v4(i));
  let overlap = false;
  for (let t = 0; t < 20_000 && (b.speaker.pendingWithdrawals > 0 || state(b) !== 'Established'); t++) {
    await turns(clock, 1);
    if (state(b) === 'Established' && b.speaker.pendingWithdrawals > 0) overlap = true;
  }
  assert.ok(overlap, 'the new session came up while the old table was still being withdrawn');
  await turns(clock, 40);
  assert.equal(b.speaker.pendingWithdrawals, 0);
  assert.deepEqual(learned(b), localOf(a), 'exactly what the new session announced');
  assert.equal(learned(b).length, 2500);
  await a.speaker.stop();
  await b.speaker.stop();
});
