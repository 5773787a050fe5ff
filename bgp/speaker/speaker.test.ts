import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../agent/common/clock.js';
import {
  type BgpMessage,
  DEFAULT_CONTEXT,
  decodeMessage,
  encodeMessage,
  Framer,
  isEndOfRib,
  KEEPALIVE,
  makeContext,
  type UpdateMessage,
} from '../codec/index.js';
import { buildOpen } from '../fsm/index.js';
import { announceUpdate } from '../rib/index.js';
import { Speaker } from './speaker.js';
import { type FakeConn, FakeNetwork, onLinkOf } from './transport.js';
import type { PeerConfig, RouteEvent, SpeakerConfig } from './types.js';

/** Lets microtask-delivered bytes and 0 ms timers run, `rounds` times. */
async function settle(clock: ManualClock, rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((r) => setImmediate(r));
    clock.advance(0);
  }
}

/** Advances the clock in steps, letting I/O run in between. */
async function advance(clock: ManualClock, ms: number, stepMs = 1000): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(Math.min(stepMs, ms - t));
    await settle(clock, 5);
  }
}

interface Node {
  speaker: Speaker;
  events: RouteEvent[];
}

function node(
  net: FakeNetwork,
  clock: ManualClock,
  cfg: Partial<SpeakerConfig> & { routerId: string },
  peers: PeerConfig[],
): Node {
  const speaker = new Speaker(
    { asn: 64512, listen: { address: cfg.routerId, port: 179 }, ...cfg },
    { clock, network: net.host(cfg.routerId) },
  );
  const events: RouteEvent[] = [];
  speaker.on('route', (e) => events.push(e));
  for (const p of peers) speaker.addPeer(p);
  return { speaker, events };
}

const fast = { connectRetrySec: 1, idleHoldSec: 1, idleHoldMaxSec: 4 };

async function pair(
  opts: {
    a?: Partial<SpeakerConfig>;
    b?: Partial<SpeakerConfig>;
    ap?: Partial<PeerConfig>;
    bp?: Partial<PeerConfig>;
  } = {},
) {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  const aAs = opts.a?.asn ?? 64512;
  const bAs = opts.b?.asn ?? 64512;
  const a = node(net, clock, { routerId: '10.0.0.1', ...opts.a }, [
    { address: '10.0.0.2', asn: bAs, ...fast, ...opts.ap },
  ]);
  const b = node(net, clock, { routerId: '10.0.0.2', ...opts.b }, [
    { address: '10.0.0.1', asn: aAs, ...fast, ...opts.bp },
  ]);
  await a.speaker.start();
  await b.speaker.start();
  await settle(clock);
  return { clock, net, a, b };
}

const state = (n: Node) => n.speaker.peerStatus()[0]?.state;

test('iBGP: both sides connect, collision resolved to one session, routes and withdrawals flow', async () => {
  const { clock, net, a, b } = await pair();
  assert.equal(state(a), 'Established');
  assert.equal(state(b), 'Established');
  const live = net.conns.filter((c) => !c.closed);
  assert.equal(live.length, 2, 'exactly one TCP connection (two ends) survives the collision');
  a.speaker.announce('10.244.1.0/26');
  a.speaker.announce('fd00:10:244:1::/122');
  await settle(clock);
  assert.deepEqual(
    b.events.map((e) => [e.event, e.prefix, e.nextHops]),
    [
      ['add', '10.244.1.0/26', ['10.0.0.1']],
      ['add', 'fd00:10:244:1::/122', ['::ffff:a00:1']],
    ],
  );
  assert.equal(b.speaker.peerStatus()[0]?.prefixesAccepted, 2);
  assert.equal(a.speaker.peerStatus()[0]?.prefixesAdvertised, 2);
  a.speaker.withdraw('10.244.1.0/26');
  await settle(clock);
  assert.deepEqual(b.events.at(-1), {
    event: 'withdraw',
    prefix: '10.244.1.0/26',
    family: 'ipv4-unicast',
    nextHops: [],
  });
  await a.speaker.stop();
  await settle(clock);
  assert.equal(state(b), 'Idle');
  assert.match(b.speaker.peerStatus()[0]?.lastError ?? '', /6\/2.*speaker shutting down/);
  assert.equal(b.events.at(-1)?.event, 'withdraw', 'Cease without GR withdraws the routes');
  await b.speaker.stop();
});

test('eBGP with 4-octet AS: AS_PATH carries our AS, next hop is the session address', async () => {
  const { clock, a, b } = await pair({ a: { asn: 4200000001 }, b: { asn: 65001 } });
  assert.equal(state(b), 'Established');
  a.speaker.announce('10.244.2.0/26');
  await settle(clock);
  assert.deepEqual(b.events[0], {
    event: 'add',
    prefix: '10.244.2.0/26',
    family: 'ipv4-unicast',
    nextHops: ['10.0.0.1'],
    peer: '10.0.0.1',
    asPath: [4200000001],
  });
  await a.speaker.stop();
  await b.speaker.stop();
});

test('hold timer expiry tears the session down and withdraws', async () => {
  const { clock, net, a, b } = await pair({ ap: { holdTimeSec: 9 }, bp: { holdTimeSec: 9 } });
  a.speaker.announce('10.244.3.0/26');
  await settle(clock);
  assert.equal(b.events.length, 1);
  net.partition('10.0.0.1', '10.0.0.2');
  await advance(clock, 9000);
  assert.equal(state(b), 'Idle');
  assert.equal(b.speaker.peerStatus()[0]?.lastError, 'hold timer expired');
  assert.deepEqual(b.speaker.peerStatus()[0]?.notificationsOut, { '4/0': 1 });
  assert.equal(b.events.at(-1)?.event, 'withdraw');
  a.speaker.removePeer('10.0.0.2');
  b.speaker.removePeer('10.0.0.1');
  await a.speaker.stop();
  await b.speaker.stop();
});

test('hold time 0 on one side: no keepalives, session stays up', async () => {
  const { clock, net, a, b } = await pair({ ap: { holdTimeSec: 0 } });
  assert.equal(state(a), 'Established');
  const written = () => net.conns.reduce((n, c) => n + c.written.length, 0);
  const before = written();
  await advance(clock, 600_000, 10_000);
  assert.equal(written(), before, 'nothing sent in 10 minutes');
  assert.equal(state(b), 'Established');
  assert.equal(b.speaker.peerStatus()[0]?.holdTimeSec, 0);
  await a.speaker.stop();
  await b.speaker.stop();
});

test('keepalives every hold/3 keep an idle session up', async () => {
  const { clock, a, b } = await pair({ ap: { holdTimeSec: 9 }, bp: { holdTimeSec: 9 } });
  await advance(clock, 60_000);
  assert.equal(state(a), 'Established');
  assert.ok((b.speaker.peerStatus()[0]?.messagesIn ?? 0) > 10);
  await a.speaker.stop();
  await b.speaker.stop();
});

const gr = { gracefulRestart: { restartTimeSec: 30 } };

test('graceful restart helper: routes kept stale across a reset, refreshed by End-of-RIB', async () => {
  const { clock, net, a, b } = await pair({ a: gr, b: gr });
  a.speaker.announce('10.244.4.0/26');
  await settle(clock);
  assert.equal(b.events.length, 1);
  net.cut('10.0.0.1', '10.0.0.2'); // TCP reset, no NOTIFICATION
  await settle(clock);
  assert.equal(state(b), 'Idle');
  assert.equal(b.events.length, 1, 'no withdraw while the peer restarts');
  assert.equal(b.speaker.peerStatus()[0]?.staleRoutes, 1);
  assert.equal(b.speaker.bestRoutes()[0]?.stale, true);
  await advance(clock, 8000);
  assert.equal(state(b), 'Established');
  assert.equal(b.speaker.bestRoutes()[0]?.stale, false, 'End-of-RIB replaced the stale route');
  assert.equal(b.speaker.peerStatus()[0]?.staleRoutes, 0);
  assert.equal(b.events.filter((e) => e.event === 'withdraw').length, 0);
  await a.speaker.stop();
  await b.speaker.stop();
});

test('graceful restart helper: stale routes dropped when the restart time runs out', async () => {
  const { clock, net, a, b } = await pair({ a: gr, b: gr });
  a.speaker.announce('10.244.5.0/26');
  await settle(clock);
  net.refuse.add('10.0.0.1');
  net.refuse.add('10.0.0.2');
  a.speaker.shutdownPeer('10.0.0.2'); // a stays away (its NOTIFICATION is lost with the cut below)
  net.cut('10.0.0.1', '10.0.0.2');
  await settle(clock);
  await advance(clock, 29_000);
  assert.equal(b.events.filter((e) => e.event === 'withdraw').length, 0);
  await advance(clock, 2000);
  assert.equal(b.events.at(-1)?.event, 'withdraw');
  await a.speaker.stop();
  await b.speaker.stop();
});

test('route reflector: client routes reflected to other clients with ORIGINATOR_ID and CLUSTER_LIST', async () => {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  const rr = node(net, clock, { routerId: '10.0.0.10', routeReflector: { clusterId: '1.1.1.1' } }, [
    { address: '10.0.0.1', asn: 64512, routeReflectorClient: true, ...fast },
    { address: '10.0.0.2', asn: 64512, routeReflectorClient: true, ...fast },
    { address: '10.0.0.3', asn: 64512, ...fast },
  ]);
  const c1 = node(net, clock, { routerId: '10.0.0.1' }, [{ address: '10.0.0.10', asn: 64512, ...fast }]);
  const c2 = node(net, clock, { routerId: '10.0.0.2' }, [{ address: '10.0.0.10', asn: 64512, ...fast }]);
  const nc = node(net, clock, { routerId: '10.0.0.3' }, [{ address: '10.0.0.10', asn: 64512, ...fast }]);
  for (const n of [rr, c1, c2, nc]) await n.speaker.start();
  await settle(clock);
  c1.speaker.announce('10.244.6.0/26');
  nc.speaker.announce('10.244.7.0/26');
  await settle(clock);
  assert.deepEqual(c2.events.map((e) => [e.prefix, e.nextHops]).sort(), [
    ['10.244.6.0/26', ['10.0.0.1']],
    ['10.244.7.0/26', ['10.0.0.3']],
  ]);
  assert.deepEqual(
    nc.events.map((e) => [e.prefix, e.nextHops]),
    [['10.244.6.0/26', ['10.0.0.1']]],
  );
  assert.deepEqual(
    c1.events.map((e) => e.prefix),
    ['10.244.7.0/26'],
    'the originator does not get its own route back',
  );
  for (const n of [rr, c1, c2, nc]) await n.speaker.stop();
});

test('maximum prefixes: Cease 6/1 and reconnect after idle hold', async () => {
  const { clock, a, b } = await pair({ bp: { maxPrefixes: { limit: 1 } } });
  a.speaker.announce('10.244.8.0/26');
  a.speaker.announce('10.244.9.0/26');
  await settle(clock);
  assert.deepEqual(b.speaker.peerStatus()[0]?.notificationsOut, { '6/1': 1 });
  assert.notEqual(state(b), 'Established');
  await b.speaker.stop();
  await a.speaker.stop();
});

test('max prefixes with discard keeps the session and ignores the excess', async () => {
  const { clock, a, b } = await pair({ bp: { maxPrefixes: { limit: 1, action: 'discard' } } });
  a.speaker.announce('10.244.8.0/26');
  a.speaker.announce('10.244.9.0/26');
  await settle(clock);
  assert.equal(state(b), 'Established');
  assert.equal(b.speaker.peerStatus()[0]?.prefixesAccepted, 1);
  await b.speaker.stop();
  await a.speaker.stop();
});

test('soft reset: ROUTE-REFRESH makes the peer re-send its routes', async () => {
  const { clock, a, b } = await pair();
  a.speaker.announce('10.244.10.0/26');
  await settle(clock);
  const before = a.speaker.peerStatus()[0]?.updatesOut ?? 0;
  b.speaker.resetPeer('10.0.0.1');
  await settle(clock);
  assert.ok((a.speaker.peerStatus()[0]?.updatesOut ?? 0) > before, 'a re-sent its Adj-RIB-Out');
  assert.equal(state(b), 'Established');
  assert.equal(b.events.length, 1, 'an identical re-advertisement is not a best-route change');
  await a.speaker.stop();
  await b.speaker.stop();
});

test('passive peers: the passive side never connects; both passive never meet', async () => {
  const p1 = await pair({ ap: { passive: true } });
  assert.equal(state(p1.a), 'Established');
  await p1.a.speaker.stop();
  await p1.b.speaker.stop();
  const p2 = await pair({ ap: { passive: true }, bp: { passive: true } });
  await advance(p2.clock, 10_000);
  assert.equal(state(p2.a), 'Active');
  assert.equal(p2.net.conns.length, 0);
  await p2.a.speaker.stop();
  await p2.b.speaker.stop();
});

test('administrative shutdown sends the RFC 9003 communication; enable brings it back', async () => {
  const { clock, a, b } = await pair();
  a.speaker.shutdownPeer('10.0.0.2', 'maintenance window');
  await settle(clock);
  assert.equal(state(a), 'Idle');
  assert.match(b.speaker.peerStatus()[0]?.lastError ?? '', /6\/2: maintenance window/);
  a.speaker.enablePeer('10.0.0.2');
  await advance(clock, 5000);
  assert.equal(state(a), 'Established');
  await a.speaker.stop();
  await b.speaker.stop();
});

test('export filter by prefix and import filter by community', async () => {
  const { clock, a, b } = await pair({
    ap: { exportFilter: { rules: [{ action: 'reject', prefixes: [{ prefix: '10.99.0.0/16', le: 32 }] }] } },
    bp: { importFilter: { rules: [{ action: 'reject', communities: ['65000:666'] }] } },
  });
  a.speaker.announce('10.99.1.0/24');
  a.speaker.announce('10.244.11.0/26', { communities: ['65000:666'] });
  a.speaker.announce('10.244.12.0/26', { communities: ['65000:1'] });
  await settle(clock);
  assert.deepEqual(
    b.events.map((e) => e.prefix),
    ['10.244.12.0/26'],
  );
  assert.deepEqual([b.speaker.peerStatus()[0]?.prefixesReceived, b.speaker.peerStatus()[0]?.prefixesAccepted], [2, 1]);
  await a.speaker.stop();
  await b.speaker.stop();
});

test('route reflector with 34 clients (peer slots past one 30-bit word): every change reaches each client once', async () => {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  const addr = (i: number) => `10.0.1.${i + 1}`;
  const n = 34;
  const rr = node(
    net,
    clock,
    { routerId: '10.0.0.10', routeReflector: { clusterId: '1.1.1.1' } },
    Array.from({ length: n }, (_, i) => ({ address: addr(i), asn: 64512, routeReflectorClient: true, ...fast })),
  );
  const clients = Array.from({ length: n }, (_, i) =>
    node(net, clock, { routerId: addr(i) }, [{ address: '10.0.0.10', asn: 64512, ...fast }]),
  );
  await rr.speaker.start();
  for (const c of clients) await c.speaker.start();
  await settle(clock, 40);
  const first = clients[0] as Node;
  const last = clients[n - 1] as Node;
  const seen = (c: Node) => c.events.map((e) => `${e.event}:${e.nextHops.join(',')}`);
  first.speaker.announce('10.244.9.0/26');
  await settle(clock);
  last.speaker.announce('10.244.9.0/26', { localPref: 200 });
  await settle(clock);
  last.speaker.withdraw('10.244.9.0/26');
  await settle(clock);
  assert.deepEqual(seen(first), [], 'the originator never hears its own route');
  // The last client had the first one's route, lost it to its own (split horizon: withdrawn
  // towards it), and got it back.
  assert.deepEqual(seen(last), [`add:${addr(0)}`, 'withdraw:', `add:${addr(0)}`]);
  for (const c of clients.slice(1, n - 1))
    assert.deepEqual(seen(c), [`add:${addr(0)}`, `replace:${addr(n - 1)}`, `replace:${addr(0)}`]);
  const adv = rr.speaker.peerStatus().map((p) => p.prefixesAdvertised);
  assert.deepEqual(adv, [0, ...new Array<number>(n - 1).fill(1)]);
  await rr.speaker.stop();
  for (const c of clients) await c.speaker.stop();
});

test('eBGP single hop: a peer off the connected networks is neither dialled nor accepted unless multihop is set', async () => {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  net.offLink.add('10.9.0.2').add('10.9.0.1');
  const a = node(net, clock, { routerId: '10.9.0.1', asn: 65001 }, [{ address: '10.9.0.2', asn: 65002, ...fast }]);
  const b = node(net, clock, { routerId: '10.9.0.2', asn: 65002 }, [{ address: '10.9.0.1', asn: 65001, ...fast }]);
  await a.speaker.start();
  await b.speaker.start();
  await advance(clock, 10_000);
  for (const n of [a, b]) {
    const st = n.speaker.peerStatus()[0];
    assert.notEqual(st?.state, 'Established');
    assert.match(st?.lastError ?? '', /directly connected/);
  }
  assert.equal(net.conns.length, 0, 'no connection was attempted');
  // The same pair with multihop on both sides comes up.
  const net2 = new FakeNetwork();
  net2.offLink.add('10.9.0.2').add('10.9.0.1');
  const c = node(net2, clock, { routerId: '10.9.0.1', asn: 65001 }, [
    { address: '10.9.0.2', asn: 65002, multihop: 2, ...fast },
  ]);
  const d = node(net2, clock, { routerId: '10.9.0.2', asn: 65002 }, [
    { address: '10.9.0.1', asn: 65001, multihop: 2, ...fast },
  ]);
  await c.speaker.start();
  await d.speaker.start();
  await advance(clock, 3000);
  assert.equal(c.speaker.peerStatus()[0]?.state, 'Established');
  // Only one side with multihop: it dials, the other refuses the connection.
  const net3 = new FakeNetwork();
  net3.offLink.add('10.9.0.2').add('10.9.0.1');
  const e = node(net3, clock, { routerId: '10.9.0.1', asn: 65001 }, [
    { address: '10.9.0.2', asn: 65002, multihop: 2, ...fast },
  ]);
  const f = node(net3, clock, { routerId: '10.9.0.2', asn: 65002 }, [
    { address: '10.9.0.1', asn: 65001, passive: true, ...fast },
  ]);
  await e.speaker.start();
  await f.speaker.start();
  await advance(clock, 5000);
  assert.ok(net3.conns.length > 0, 'the multihop side dialled');
  assert.notEqual(f.speaker.peerStatus()[0]?.state, 'Established');
  for (const n of [a, b, c, d, e, f]) await n.speaker.stop();
});

test('onLinkOf: interface networks decide what is directly connected', () => {
  const nets = ['10.99.0.1/24', 'fd99::1/64', 'fe80::1/64'];
  assert.ok(onLinkOf('10.99.0.2', nets));
  assert.ok(!onLinkOf('10.99.1.2', nets));
  assert.ok(onLinkOf('fd99::2', nets));
  assert.ok(onLinkOf('fe80::abcd', nets));
  assert.ok(!onLinkOf('fd98::2', nets));
  assert.ok(!onLinkOf('not-an-ip', nets));
});

test('ECMP: the same prefix from two eBGP peers gives two next hops', async () => {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  const x = node(net, clock, { routerId: '10.0.0.1', asn: 65001 }, [{ address: '10.0.0.3', asn: 64512, ...fast }]);
  const y = node(net, clock, { routerId: '10.0.0.2', asn: 65002 }, [{ address: '10.0.0.3', asn: 64512, ...fast }]);
  const z = node(net, clock, { routerId: '10.0.0.3' }, [
    { address: '10.0.0.1', asn: 65001, ...fast },
    { address: '10.0.0.2', asn: 65002, ...fast },
  ]);
  for (const n of [x, y, z]) await n.speaker.start();
  await settle(clock);
  x.speaker.announce('10.50.0.0/24');
  y.speaker.announce('10.50.0.0/24');
  await settle(clock);
  assert.deepEqual(z.events.at(-1)?.nextHops, ['10.0.0.1', '10.0.0.2']);
  for (const n of [x, y, z]) await n.speaker.stop();
});

// ---------------------------------------------------------------- raw peer

/** A hand-driven peer on the fake network, for malformed input. */
async function rawPeer(clock: ManualClock) {
  const net = new FakeNetwork();
  const s = node(net, clock, { routerId: '10.0.0.1' }, [{ address: '10.0.0.2', asn: 65002, passive: true, ...fast }]);
  await s.speaker.start();
  const conn = net.host('10.0.0.2').connect({ host: '10.0.0.1', port: 179 }) as FakeConn;
  const got: BgpMessage[] = [];
  const framer = new Framer();
  conn.on('data', (d) => {
    for (const f of framer.push(d).frames) {
      const r = decodeMessage(f, makeContext());
      if (r.ok) got.push(r.msg);
    }
  });
  await settle(clock);
  conn.write(
    encodeMessage(
      buildOpen({ asn: 65002, bgpId: '10.0.0.2', holdTimeSec: 90, families: ['ipv4-unicast'] }),
      DEFAULT_CONTEXT,
    ),
  );
  conn.write(encodeMessage(KEEPALIVE, DEFAULT_CONTEXT));
  await settle(clock);
  return { s, conn, got, net };
}

test('RFC 7606: invalid ORIGIN -> treat-as-withdraw, session stays up', async () => {
  const clock = new ManualClock();
  const { s, conn } = await rawPeer(clock);
  assert.equal(state(s), 'Established');
  const ctx = makeContext();
  const attrs = { origin: 'igp' as const, asPath: [{ type: 'sequence' as const, asns: [65002] }], nextHop: '10.0.0.2' };
  conn.write(encodeMessage(announceUpdate('ipv4-unicast', attrs, ['10.60.0.0/24']), ctx));
  await settle(clock);
  assert.equal(s.events.length, 1);
  const bad = encodeMessage(announceUpdate('ipv4-unicast', attrs, ['10.60.0.0/24']), ctx);
  const i = bad.indexOf(Buffer.from([0x40, 0x01, 0x01, 0x00]));
  bad[i + 3] = 7; // ORIGIN 7 is invalid
  conn.write(bad);
  await settle(clock);
  assert.equal(state(s), 'Established');
  assert.equal(s.events.at(-1)?.event, 'withdraw');
  await s.speaker.stop();
});

test('malformed message (bad marker) -> NOTIFICATION 1/1 and session reset', async () => {
  const clock = new ManualClock();
  const { s, conn, got } = await rawPeer(clock);
  const k = encodeMessage(KEEPALIVE, DEFAULT_CONTEXT);
  k[0] = 0;
  conn.write(k);
  await settle(clock);
  assert.notEqual(state(s), 'Established');
  const n = got.find((m) => m.type === 'notification');
  assert.deepEqual(n && n.type === 'notification' ? [n.code, n.subcode] : [], [1, 1]);
  await s.speaker.stop();
});

test('a connection from an unknown address is refused', async () => {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  const s = node(net, clock, { routerId: '10.0.0.1' }, []);
  await s.speaker.start();
  const c = net.host('10.9.9.9').connect({ host: '10.0.0.1', port: 179 }) as FakeConn;
  await settle(clock);
  assert.equal(c.closed, true);
  await s.speaker.stop();
});

test('connect failures back off (idle hold doubles) and recover when the peer appears', async () => {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  const a = node(net, clock, { routerId: '10.0.0.1' }, [{ address: '10.0.0.2', asn: 64512, ...fast }]);
  await a.speaker.start();
  await advance(clock, 5000);
  assert.equal(state(a), 'Active');
  const b = node(net, clock, { routerId: '10.0.0.2' }, [{ address: '10.0.0.1', asn: 64512, passive: true, ...fast }]);
  await b.speaker.start();
  await advance(clock, 3000);
  assert.equal(state(a), 'Established');
  await a.speaker.stop();
  await b.speaker.stop();
});

test('peers added and removed at runtime; removal withdraws their routes (Cease 6/3)', async () => {
  const { clock, a, b } = await pair();
  a.speaker.announce('10.244.13.0/26');
  await settle(clock);
  assert.equal(b.events.length, 1);
  b.speaker.removePeer('10.0.0.1');
  await settle(clock);
  assert.equal(b.events.at(-1)?.event, 'withdraw');
  assert.match(a.speaker.peerStatus()[0]?.lastError ?? '', /6\/3/);
  assert.throws(() => b.speaker.removePeer('10.0.0.1'), { name: 'SpeakerError', kind: 'unknown-peer' } as never);
  b.speaker.addPeer({ address: '10.0.0.1', asn: 64512, ...fast });
  await advance(clock, 10_000);
  assert.equal(state(b), 'Established');
  await a.speaker.stop();
  await b.speaker.stop();
});

// ---------------------------------------------------------------- restarting speaker (RFC 4724 §4.1)

/**
 * A restarting speaker (R bit, selection deferral) with one hand-driven eBGP peer on the fake
 * network. `peerGr`: the peer advertises graceful restart (optionally with its own R bit).
 */
async function restartingWithRawPeer(clock: ManualClock, peerGr: 'none' | 'helper' | 'restarting') {
  const net = new FakeNetwork();
  const s = node(
    net,
    clock,
    { routerId: '10.0.0.1', gracefulRestart: { restartTimeSec: 120, restarting: true, selectionDeferralSec: 60 } },
    [{ address: '10.0.0.2', asn: 65002, passive: true, ...fast }],
  );
  s.speaker.announce('10.244.1.0/26');
  await s.speaker.start();
  const conn = net.host('10.0.0.2').connect({ host: '10.0.0.1', port: 179 }) as FakeConn;
  const got: BgpMessage[] = [];
  const framer = new Framer();
  conn.on('data', (d) => {
    for (const f of framer.push(d).frames) {
      const r = decodeMessage(f, makeContext());
      if (r.ok) got.push(r.msg);
    }
  });
  await settle(clock);
  const open = buildOpen({
    asn: 65002,
    bgpId: '10.0.0.2',
    holdTimeSec: 90,
    families: ['ipv4-unicast'],
    ...(peerGr === 'none'
      ? {}
      : {
          gracefulRestart: { restartTimeSec: 120, restarting: peerGr === 'restarting', forwardingPreserved: true },
        }),
  });
  conn.write(encodeMessage(open, DEFAULT_CONTEXT));
  conn.write(encodeMessage(KEEPALIVE, DEFAULT_CONTEXT));
  await settle(clock);
  const ctx = makeContext();
  const attrs = { origin: 'igp' as const, asPath: [{ type: 'sequence' as const, asns: [65002] }], nextHop: '10.0.0.2' };
  const sendRoute = () => conn.write(encodeMessage(announceUpdate('ipv4-unicast', attrs, ['10.60.0.0/24']), ctx));
  const sendEor = () => conn.write(encodeMessage({ type: 'update', withdrawn: [], attrs: {}, nlri: [] }, ctx));
  const updates = () => got.filter((m): m is UpdateMessage => m.type === 'update');
  return { s, conn, got, updates, sendRoute, sendEor };
}

test('restarting speaker: advertisement and route events wait for the peer End-of-RIB, then table + End-of-RIB', async () => {
  const clock = new ManualClock();
  const r = await restartingWithRawPeer(clock, 'helper');
  assert.equal(state(r.s), 'Established');
  const sentOpen = r.got.find((m) => m.type === 'open');
  const grCap =
    sentOpen?.type === 'open' ? sentOpen.capabilities.find((c) => c.type === 'graceful-restart') : undefined;
  assert.equal(grCap?.type === 'graceful-restart' && grCap.restarting, true, 'our OPEN carries the R bit');
  r.sendRoute();
  await advance(clock, 10_000);
  assert.equal(r.s.speaker.status().selectionDeferred, true);
  assert.deepEqual(r.updates(), [], 'nothing advertised (not even End-of-RIB) before the peer End-of-RIB');
  assert.equal(r.s.events.length, 0, 'no route events while deferring');
  assert.equal(r.s.speaker.bestRoutes().length, 2, 'the Loc-RIB fills meanwhile');

  r.sendEor();
  await settle(clock);
  assert.equal(r.s.speaker.status().selectionDeferred, undefined);
  assert.deepEqual(
    r.s.events.map((e) => [e.event, e.prefix, e.nextHops]),
    [['add', '10.60.0.0/24', ['10.0.0.2']]],
  );
  const ups = r.updates();
  assert.deepEqual(
    ups.flatMap((u) => u.nlri.map((p) => `${p.prefix}/${p.len}`)),
    ['10.244.1.0/26'],
    'our table goes out once deferral ends (the peer never gets its own route back)',
  );
  assert.ok(ups.length >= 2 && isEndOfRib(ups.at(-1) as UpdateMessage), 'End-of-RIB follows the table');
  assert.equal(ups.filter((u) => isEndOfRib(u)).length, 1);
  await r.s.speaker.stop();
});

test('restarting speaker: the selection deferral timer ends deferral when End-of-RIB never comes', async () => {
  const clock = new ManualClock();
  const r = await restartingWithRawPeer(clock, 'helper');
  r.sendRoute();
  await advance(clock, 55_000);
  assert.deepEqual(r.updates(), []);
  assert.equal(r.s.events.length, 0);
  await advance(clock, 6_000);
  assert.equal(r.s.speaker.status().selectionDeferred, undefined);
  assert.deepEqual(
    r.s.events.map((e) => e.prefix),
    ['10.60.0.0/24'],
  );
  const ups = r.updates();
  assert.deepEqual(
    ups.flatMap((u) => u.nlri.map((p) => `${p.prefix}/${p.len}`)),
    ['10.244.1.0/26'],
  );
  assert.ok(isEndOfRib(ups.at(-1) as UpdateMessage));
  await r.s.speaker.stop();
});

for (const peerGr of ['none', 'restarting'] as const) {
  test(`restarting speaker: a peer ${peerGr === 'none' ? 'without GR' : 'that is restarting too'} does not hold deferral`, async () => {
    const clock = new ManualClock();
    const r = await restartingWithRawPeer(clock, peerGr);
    assert.equal(state(r.s), 'Established');
    assert.equal(r.s.speaker.status().selectionDeferred, undefined);
    assert.deepEqual(
      r.updates().flatMap((u) => u.nlri.map((p) => `${p.prefix}/${p.len}`)),
      ['10.244.1.0/26'],
    );
    const eors = r.updates().filter((u) => isEndOfRib(u)).length;
    assert.equal(eors, peerGr === 'none' ? 0 : 1, 'End-of-RIB only when GR was negotiated');
    r.sendRoute();
    await settle(clock);
    assert.deepEqual(
      r.s.events.map((e) => e.prefix),
      ['10.60.0.0/24'],
    );
    await r.s.speaker.stop();
  });
}

// ---------------------------------------------------------------- run-time reconfiguration (applyConfig)

test('applyConfig: a peer added and one removed; the unchanged session stays up (same session, no flap)', async () => {
  const clock = new ManualClock();
  const net = new FakeNetwork();
  const pb: PeerConfig = { address: '10.0.0.2', asn: 64512, ...fast };
  const pc: PeerConfig = { address: '10.0.0.3', asn: 64512, ...fast };
  const pd: PeerConfig = { address: '10.0.0.4', asn: 64512, ...fast };
  const a = node(net, clock, { routerId: '10.0.0.1' }, [pb, pc]);
  const b = node(net, clock, { routerId: '10.0.0.2' }, [{ address: '10.0.0.1', asn: 64512, ...fast }]);
  const c = node(net, clock, { routerId: '10.0.0.3' }, [{ address: '10.0.0.1', asn: 64512, ...fast }]);
  const d = node(net, clock, { routerId: '10.0.0.4' }, [{ address: '10.0.0.1', asn: 64512, ...fast }]);
  for (const n of [a, b, c, d]) await n.speaker.start();
  a.speaker.announce('10.244.1.0/26');
  await advance(clock, 5000);
  const st = (n: Node, peer: string) => n.speaker.peerStatus().find((x) => x.address === peer);
  assert.equal(st(a, '10.0.0.2')?.state, 'Established');
  assert.equal(st(a, '10.0.0.3')?.state, 'Established');
  assert.equal(st(a, '10.0.0.4'), undefined);
  const establishedAt = st(a, '10.0.0.2')?.establishedAt;
  const liveBefore = net.conns.filter((x) => !x.closed && x.remoteAddress === '10.0.0.2');
  const diff = a.speaker.applyConfig({
    peers: [pd, structuredClone(pb)],
    announce: [
      { prefix: '10.244.1.0/26', options: {} },
      { prefix: '10.244.2.0/26', options: {} },
    ],
  });
  assert.deepEqual(diff.addPeers, [pd]);
  assert.deepEqual(diff.removePeers, ['10.0.0.3']);
  assert.deepEqual(diff.unchangedPeers, ['10.0.0.2']);
  assert.deepEqual(diff.announce, [{ prefix: '10.244.2.0/26', options: {} }]);
  await advance(clock, 5000);
  assert.equal(st(a, '10.0.0.3'), undefined, 'removed');
  assert.match(st(c, '10.0.0.1')?.lastError ?? '', /6\/3/, 'the removed peer got Cease 6/3 (peer de-configured)');
  assert.equal(st(a, '10.0.0.4')?.state, 'Established', 'added peer comes up');
  assert.equal(st(a, '10.0.0.2')?.state, 'Established');
  assert.equal(st(a, '10.0.0.2')?.establishedAt, establishedAt, 'unchanged session: same Established time');
  assert.equal(st(a, '10.0.0.2')?.flaps, 0);
  assert.equal(st(b, '10.0.0.1')?.flaps, 0);
  assert.ok(
    liveBefore.every((x) => !x.closed),
    'the connection of the unchanged peer is the same, still open',
  );
  assert.deepEqual(
    b.events.map((e) => [e.event, e.prefix]),
    [
      ['add', '10.244.1.0/26'],
      ['add', '10.244.2.0/26'],
    ],
    'the unchanged peer gets only the new announcement (nothing withdrawn or re-sent)',
  );
  assert.deepEqual(d.events.map((e) => e.prefix).sort(), ['10.244.1.0/26', '10.244.2.0/26']);
  // Applying the same config again changes nothing.
  const again = a.speaker.applyConfig({
    peers: [pb, pd],
    announce: [
      { prefix: '10.244.2.0/26', options: {} },
      { prefix: '10.244.1.0/26', options: {} },
    ],
  });
  assert.deepEqual(
    [again.addPeers, again.removePeers, again.changePeers, again.announce, again.withdraw],
    [[], [], [], [], []],
  );
  for (const n of [a, b, c, d]) await n.speaker.stop();
});

test('applyConfig: changed peer replaced, shutdown/enable and description in place, withdrawal; admin shutdown kept when unchanged', async () => {
  const { clock, a, b } = await pair();
  a.speaker.announce('10.244.1.0/26');
  a.speaker.announce('10.244.2.0/26');
  await settle(clock);
  const pb: PeerConfig = { address: '10.0.0.2', asn: 64512, ...fast };
  const announce = [{ prefix: '10.244.1.0/26', options: {} }];
  // Description only: in place, no flap.
  let d = a.speaker.applyConfig({ peers: [{ ...pb, description: 'rack 7' }], announce });
  assert.equal(d.changePeers[0]?.action, 'update');
  assert.deepEqual(d.withdraw, ['10.244.2.0/26']);
  await settle(clock);
  assert.equal(a.speaker.peerStatus()[0]?.description, 'rack 7');
  assert.equal(a.speaker.peerStatus()[0]?.flaps, 0);
  assert.deepEqual(b.events.at(-1), {
    event: 'withdraw',
    prefix: '10.244.2.0/26',
    family: 'ipv4-unicast',
    nextHops: [],
  });
  // Shutdown in the config: Cease 6/2, peer stays configured.
  d = a.speaker.applyConfig({ peers: [{ ...pb, description: 'rack 7', shutdown: true }], announce });
  assert.equal(d.changePeers[0]?.action, 'shutdown');
  await settle(clock);
  assert.equal(a.speaker.peerStatus()[0]?.adminShutdown, true);
  assert.match(b.speaker.peerStatus()[0]?.lastError ?? '', /6\/2/);
  d = a.speaker.applyConfig({ peers: [{ ...pb, description: 'rack 7' }], announce });
  assert.equal(d.changePeers[0]?.action, 'enable');
  await advance(clock, 10_000);
  assert.equal(state(a), 'Established');
  // An admin shutdown (status server) survives a reload that does not change the peer.
  a.speaker.shutdownPeer('10.0.0.2', 'maintenance');
  d = a.speaker.applyConfig({ peers: [{ ...pb, description: 'rack 7' }], announce });
  assert.deepEqual(d.unchangedPeers, ['10.0.0.2']);
  assert.equal(a.speaker.peerStatus()[0]?.adminShutdown, true);
  a.speaker.enablePeer('10.0.0.2');
  await advance(clock, 10_000);
  const flaps = a.speaker.peerStatus()[0]?.flaps ?? 0;
  // Hold time changed: replaced (new session, hold time renegotiated).
  d = a.speaker.applyConfig({ peers: [{ ...pb, description: 'rack 7', holdTimeSec: 30 }], announce });
  assert.equal(d.changePeers[0]?.action, 'replace');
  await advance(clock, 10_000);
  assert.equal(state(a), 'Established');
  assert.equal(a.speaker.peerStatus()[0]?.holdTimeSec, 30);
  assert.equal(a.speaker.peerStatus()[0]?.flaps, 0, 'a replaced peer is a new peer (counters start again)');
  assert.ok(flaps >= 1);
  await a.speaker.stop();
  await b.speaker.stop();
});

test('applyConfig: an invalid new config throws SpeakerError and changes nothing', async () => {
  const { clock, a, b } = await pair();
  a.speaker.announce('10.244.1.0/26');
  await settle(clock);
  const before = a.speaker.status();
  assert.throws(
    () =>
      a.speaker.applyConfig({
        peers: [
          {
            address: '10.0.0.9',
            asn: 1,
            importFilter: { rules: [{ action: 'accept', prefixes: [{ prefix: 'bad' }] }] },
          },
        ],
        announce: [],
      }),
    { name: 'SpeakerError', kind: 'invalid-config' } as never,
  );
  assert.throws(
    () => a.speaker.applyConfig({ peers: [], announce: [{ prefix: '10.0.0.0/8', options: { communities: ['x:y'] } }] }),
    { name: 'SpeakerError', kind: 'invalid-config' } as never,
  );
  const after = a.speaker.status();
  assert.deepEqual(
    after.peers.map((p) => [p.address, p.state]),
    before.peers.map((p) => [p.address, p.state]),
  );
  assert.deepEqual(after.announced, before.announced);
  await a.speaker.stop();
  await b.speaker.stop();
});
