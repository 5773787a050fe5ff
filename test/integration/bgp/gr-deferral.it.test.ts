/**
 * RFC 4724 §4.1 selection deferral, with us as the restarting speaker between two real
 * graceful-restart helpers on one LAN: BIRD 2 (10.99.0.2, AS 64513) and GoBGP (10.99.0.3,
 * AS 64514), both eBGP to us (10.99.0.1, AS 64512), so each learns the other's routes through us.
 * We are killed (-9) and started again with `gracefulRestart.restarting`. A tshark capture on our
 * interface sees both sessions on one clock, so the order of End-of-RIBs and UPDATEs is asserted
 * on the wire:
 * - while one GR peer has not sent End-of-RIB (GoBGP, its link held down), the other
 *   (BIRD, done) gets nothing from us: no route learned from GoBGP, none of ours, no End-of-RIB,
 *   and our stream emits nothing; GoBGP's End-of-RIB ends the deferral and the whole table goes out;
 * - if a GR peer never comes back (gobgpd stopped), the deferral ends when `selectionDeferralSec`
 *   runs out, and our End-of-RIB then drops BIRD's stale copies of what we no longer have.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type BirdPeer, type GobgpPeer, startBird, startCapture, startGobgp } from '../../helpers/bgp-peers.js';
import { needs } from '../../helpers/needs.js';
import type { Netns } from '../../helpers/netns.js';
import { waitFor } from '../../helpers/process.js';
import {
  bird2Config,
  gobgpConfigFor,
  lan,
  type Petrel,
  type PetrelConfig,
  readBgpCapture,
  startPetrel,
  type WireMsg,
  wire,
} from './lib.js';

const US = '10.99.0.1';
const BIRD = '10.99.0.2';
const GOBGP = '10.99.0.3';
const OUR4 = '10.244.1.0/26';
/** Announced by the first restarted speaker only. */
const OUR4_NEW = '10.244.3.0/26';
const OUR6 = 'fd00:10:244:1::/122';
const B4 = '10.55.1.0/24';
const B6 = 'fd55:1::/64';
const G4 = '10.55.2.0/24';
const G6 = 'fd55:2::/64';
/** Added to GoBGP while we are down: nobody has seen it from us yet. */
const G4_NEW = '10.55.22.0/24';
const DEFERRAL_SEC = 6;

/** Message counts by direction and type, for failure messages. */
function summary(msgs: WireMsg[], since: number): string {
  const n = new Map<string, number>();
  for (const m of msgs)
    if (m.t >= since) n.set(`${m.src}>${m.dst} ${m.type}`, (n.get(`${m.src}>${m.dst} ${m.type}`) ?? 0) + 1);
  return [...n].map(([k, v]) => `${k} x${v}`).join(', ') || 'empty';
}

function ourConfig(o: { restarting?: boolean; selectionDeferralSec?: number; announce?: string[] } = {}): PetrelConfig {
  const peer = (address: string, asn: number) => ({
    address,
    asn,
    holdTimeSec: 9,
    connectRetrySec: 1,
    idleHoldSec: 1,
    idleHoldMaxSec: 2,
  });
  return {
    asn: 64512,
    routerId: US,
    listen: { address: US, port: 179 },
    nextHop: { ipv6: 'fd99::1' },
    gracefulRestart: {
      restartTimeSec: 60,
      ...(o.restarting ? { restarting: true, selectionDeferralSec: o.selectionDeferralSec ?? 60 } : {}),
    },
    peers: [peer(BIRD, 64513), peer(GOBGP, 64514)],
    announce: o.announce ?? [OUR4, OUR6],
  };
}

/** End-of-RIB times from `src` since `since`, by family. */
function endOfRibs(msgs: WireMsg[], src: string, since: number): Partial<Record<'ipv4' | 'ipv6', number>> {
  const out: Partial<Record<'ipv4' | 'ipv6', number>> = {};
  for (const m of wire(msgs, { src, type: 'update', since })) if (m.endOfRib) out[m.endOfRib] ??= m.t;
  return out;
}

/** Both families' End-of-RIB from `src`; the time of the later one. */
function bothEndOfRibs(msgs: WireMsg[], src: string, since: number): number {
  const e = endOfRibs(msgs, src, since);
  assert.ok(
    e.ipv4 !== undefined && e.ipv6 !== undefined,
    `End-of-RIB for both families from ${src}: ${JSON.stringify(e)}`,
  );
  return Math.max(e.ipv4, e.ipv6);
}

/** Our UPDATEs to `dst` since `since` carry every prefix in `prefixes`, each family closed by an End-of-RIB after them. */
function assertTableThenEndOfRib(msgs: WireMsg[], dst: string, since: number, prefixes: string[]): void {
  const ups = wire(msgs, { src: US, dst, type: 'update', since });
  for (const p of prefixes) {
    const m = ups.find((u) => u.announced.includes(p));
    assert.ok(m, `${p} sent to ${dst}`);
    const fam = p.includes(':') ? 'ipv6' : 'ipv4';
    const eor = ups.find((u) => u.endOfRib === fam);
    assert.ok(eor, `our ${fam} End-of-RIB sent to ${dst}`);
    assert.ok(ups.indexOf(eor) > ups.indexOf(m), `our ${fam} End-of-RIB to ${dst} comes after ${p}`);
  }
}

describe('RFC 4724 selection deferral: restarting between BIRD 2 and GoBGP', {
  skip: needs('root', 'netns', 'bird2', 'gobgpd', 'tshark'),
}, () => {
  let net: { nodes: Netns[]; destroy(): Promise<void> };
  let bird: BirdPeer;
  let gobgp: GobgpPeer;
  let us: Petrel;
  const birdHas = async (prefix: string) => {
    try {
      return (await bird.birdc('show', 'route', 'for', prefix, 'protocol', 'petrel')).includes(prefix);
    } catch (err) {
      if (String(err).includes('Network not found')) return false;
      throw err;
    }
  };
  const gobgpHas = async (prefix: string) =>
    (await gobgp.gobgp('global', 'rib', '-a', prefix.includes(':') ? 'ipv6' : 'ipv4')).includes(prefix);
  const gobgpNode = () => net.nodes[2] as Netns;
  const peerState = async (address: string) => (await us.status()).peers.find((p) => p.address === address);
  /** Kill -9 our speaker and wait until BIRD sees the session down (it keeps our routes as stale). */
  const crash = async () => {
    await us.kill();
    await waitFor(
      'BIRD sees the session down',
      async () => !(await bird.birdc('show', 'protocols', 'petrel')).includes('Established'),
      15_000,
    );
  };

  before(async () => {
    net = await lan(3);
    const [n0, n1, n2] = net.nodes as [Netns, Netns, Netns];
    bird = await startBird(
      n1,
      bird2Config({
        routerId: BIRD,
        localAddress: BIRD,
        localAs: 64513,
        neighbor: US,
        neighborAs: 64512,
        holdTimeSec: 9,
        static4: [B4],
        static6: [B6],
        ipv6NextHop: 'fd99::2',
        gracefulRestart: true,
      }),
    );
    gobgp = await startGobgp(
      n2,
      gobgpConfigFor({
        routerId: GOBGP,
        asn: 64514,
        neighbor: US,
        neighborAs: 64512,
        holdTimeSec: 9,
        gracefulRestart: true,
      }),
    );
    await gobgp.gobgp('global', 'rib', '-a', 'ipv4', 'add', G4, 'nexthop', GOBGP);
    await gobgp.gobgp('global', 'rib', '-a', 'ipv6', 'add', G6, 'nexthop', 'fd99::3');
    us = await startPetrel(n0, ourConfig());
  });
  after(async () => {
    if (process.env.PETREL_IT_DEBUG) process.stderr.write(us?.daemon.output() ?? '');
    await us?.stop().catch(() => {});
    await bird?.stop();
    await gobgp?.stop();
    await net?.destroy();
  });

  test('before the restart, routes cross between BIRD and GoBGP through us', async () => {
    await waitFor('BIRD has GoBGP routes via us', async () => (await birdHas(G4)) && (await birdHas(G6)), 20_000);
    await waitFor('GoBGP has BIRD routes via us', async () => (await gobgpHas(B4)) && (await gobgpHas(B6)), 20_000);
    assert.ok((await birdHas(OUR4)) && (await gobgpHas(OUR4)));
  });

  test('restarting: BIRD gets nothing from us (no GoBGP route, none of ours, no End-of-RIB) until GoBGP has sent End-of-RIB', async () => {
    await crash();
    // GoBGP's session is held down (its link is down), and GoBGP gets a route nobody has seen from us yet.
    await gobgpNode().ip('link', 'set', 'eth0', 'down');
    await gobgp.gobgp('global', 'rib', '-a', 'ipv4', 'add', G4_NEW, 'nexthop', GOBGP);
    const cap = await startCapture(net.nodes[0] as Netns, 'eth0');
    try {
      const since = Date.now();
      us = await startPetrel(net.nodes[0] as Netns, ourConfig({ restarting: true, announce: [OUR4, OUR4_NEW, OUR6] }));
      await waitFor('BIRD re-established and its routes in our Loc-RIB', async () => {
        const p = await peerState(BIRD);
        return p?.state === 'Established' && p.prefixesAccepted === 2;
      });
      // A window with BIRD done and GoBGP not: nothing may move.
      const windowEnd = Date.now() + 2000;
      while (Date.now() < windowEnd) {
        const st = await us.status();
        assert.equal(st.selectionDeferred, true, 'still deferring');
        assert.notEqual(st.peers.find((p) => p.address === GOBGP)?.state, 'Established');
        assert.deepEqual(us.lines, [], 'no route events while deferring');
        assert.equal(await birdHas(OUR4_NEW), false, 'our new route not sent to BIRD yet');
        assert.equal(await birdHas(G4_NEW), false, "GoBGP's new route not in BIRD");
        await delay(200);
      }
      await gobgpNode().ip('link', 'set', 'eth0', 'up');
      await waitFor('BIRD has the table', async () => (await birdHas(G4_NEW)) && (await birdHas(OUR4_NEW)), 20_000);
      await waitFor('GoBGP has the table', async () => (await gobgpHas(B4)) && (await gobgpHas(OUR4_NEW)), 20_000);
      assert.notEqual((await us.status()).selectionDeferred, true, 'deferral over');
      for (const p of [B4, B6, G4, G6, G4_NEW]) await us.waitRoute(p);

      const msgs = await readBgpCapture(await cap.finish());
      const restart = wire(msgs, { src: US, type: 'open', since })[0];
      assert.ok(restart, 'our OPEN after the restart');
      for (const dst of [BIRD, GOBGP]) {
        const open = wire(msgs, { src: US, dst, type: 'open', since })[0];
        assert.equal(open?.gr?.restarting, true, `R bit in our first OPEN to ${dst}`);
      }
      const birdDone = bothEndOfRibs(msgs, BIRD, restart.t);
      const gobgpOpen = wire(msgs, { src: GOBGP, type: 'open', since })[0];
      assert.ok(gobgpOpen && gobgpOpen.t > birdDone, 'BIRD had sent End-of-RIB before GoBGP even connected');
      const gobgpDone = bothEndOfRibs(msgs, GOBGP, restart.t);
      const toBird = wire(msgs, { src: US, dst: BIRD, type: 'update', since });
      assert.ok(toBird.length > 0, 'UPDATEs to BIRD');
      assert.ok(
        (toBird[0] as WireMsg).t >= gobgpDone,
        `first UPDATE to BIRD ${Math.round(gobgpDone - (toBird[0] as WireMsg).t)} ms before GoBGP's End-of-RIB`,
      );
      assertTableThenEndOfRib(msgs, BIRD, since, [OUR4, OUR4_NEW, OUR6, G4, G4_NEW, G6]);
      const toGobgp = wire(msgs, { src: US, dst: GOBGP, type: 'update', since });
      assert.ok(toGobgp.length > 0 && (toGobgp[0] as WireMsg).t >= gobgpDone, 'UPDATEs to GoBGP after its End-of-RIB');
      assertTableThenEndOfRib(msgs, GOBGP, since, [OUR4, OUR4_NEW, OUR6, B4, B6]);
      assert.ok((us.lines[0]?.at ?? 0) >= gobgpDone, 'the first route event after the deferral');
    } finally {
      await gobgpNode().ip('link', 'set', 'eth0', 'up');
      await cap.stop();
    }
  });

  test(`restarting with a GR peer that never comes back: the deferral ends after selectionDeferralSec (${DEFERRAL_SEC} s), then our End-of-RIB drops BIRD's stale copies`, async () => {
    await waitFor('BIRD has GoBGP routes via us', async () => (await birdHas(G4_NEW)) && (await birdHas(G6)));
    await crash();
    await gobgp.stop(); // the router is gone: no session, no End-of-RIB
    const cap = await startCapture(net.nodes[0] as Netns, 'eth0');
    try {
      const since = Date.now();
      us = await startPetrel(
        net.nodes[0] as Netns,
        ourConfig({ restarting: true, selectionDeferralSec: DEFERRAL_SEC }),
      );
      await waitFor('BIRD re-established and its routes in our Loc-RIB', async () => {
        const p = await peerState(BIRD);
        return p?.state === 'Established' && p.prefixesAccepted === 2;
      });
      assert.ok(await birdHas(G4), "BIRD still has GoBGP's route from us as stale");
      for (;;) {
        const events = us.lines.length; // read first: deferral only ever goes from on to off
        if ((await us.status()).selectionDeferred !== true) break;
        assert.equal(events, 0, 'no route events while deferring');
        assert.ok(Date.now() < since + (DEFERRAL_SEC + 10) * 1000, 'the deferral did not end');
        await delay(100);
      }
      for (const p of [G4, G6, G4_NEW, OUR4_NEW])
        await waitFor(`${p} gone from BIRD (our End-of-RIB)`, async () => !(await birdHas(p)), 5000);
      assert.ok((await birdHas(OUR4)) && (await birdHas(OUR6)));
      await us.waitRoute(B4);
      await us.waitRoute(B6);

      const msgs = await readBgpCapture(await cap.finish());
      const birdDone = bothEndOfRibs(msgs, BIRD, since);
      const toBird = wire(msgs, { src: US, dst: BIRD, type: 'update', since });
      const first = toBird[0];
      assert.ok(first, `UPDATEs to BIRD; the capture since the start: ${summary(msgs, since)}`);
      assert.ok(
        first.t >= since + DEFERRAL_SEC * 1000,
        `first UPDATE to BIRD ${Math.round(first.t - since)} ms after the start, before the deferral timer`,
      );
      assert.ok(
        first.t <= since + (DEFERRAL_SEC + 5) * 1000,
        `first UPDATE ${Math.round(first.t - since)} ms after the start`,
      );
      assert.ok(birdDone < first.t - 500, "BIRD's End-of-RIB came well before: the deferral waited for GoBGP only");
      assertTableThenEndOfRib(msgs, BIRD, since, [OUR4, OUR6]);
      assert.deepEqual(
        toBird.flatMap((m) => m.announced).filter((p) => [G4, G6, G4_NEW].includes(p)),
        [],
        'no routes from the vanished GoBGP',
      );
      assert.ok((us.lines[0]?.at ?? 0) >= since + DEFERRAL_SEC * 1000, 'no route event before the deferral timer');
      assert.notEqual((await peerState(GOBGP))?.state, 'Established');
    } finally {
      await cap.stop();
    }
  });
});
