/**
 * Interop with BIRD 2 (the upstream daemon): eBGP with a 4-octet AS and iBGP, IPv4 in classic
 * UPDATE fields and IPv6 in MP_REACH, withdrawals both ways, route refresh both ways, hold timer
 * expiry, graceful restart in both directions, Cease on SIGTERM. Each topology lives in its own
 * netns pair.
 *
 * What each mode covers:
 * - eBGP (4-octet AS): everything above: session, prefixes both ways with next hops and AS path,
 *   route refresh both ways, withdrawals both ways, hold timer expiry, graceful restart both
 *   ways, Cease on SIGTERM.
 * - iBGP: what differs with the AS relation: routes both ways with LOCAL_PREF and an empty AS
 *   path, and the status server and metrics reporting the session. Timers, refresh and graceful
 *   restart do not depend on the AS relation; the eBGP suite covers them once.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BirdPeer, startBird } from '../../helpers/bgp-peers.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import {
  bird2Config,
  holdTimerExpiry,
  httpGet,
  type Petrel,
  type PetrelConfig,
  peerRestartsGracefully,
  startPetrel,
  type Topo,
  twoNodes,
} from './lib.js';

const skip = needs('root', 'netns', 'bird2');
const OUR4 = '10.244.1.0/26';
const OUR4B = '10.244.2.0/26';
const OUR6 = 'fd00:10:244:1::/122';
const THEIR4 = '10.55.1.0/24';
/** Announced by BIRD until its graceful restart; the restarted BIRD no longer has it. */
const THEIR4_GONE = '10.55.11.0/24';
const THEIR6 = 'fd55:1::/64';

async function birdHas(b: BirdPeer, prefix: string): Promise<boolean> {
  try {
    return (await b.birdc('show', 'route', 'for', prefix, 'protocol', 'petrel')).includes(prefix);
  } catch (err) {
    if (String(err).includes('Network not found')) return false; // birdc exits 1 then
    throw err;
  }
}
const waitBird = (b: BirdPeer, prefix: string, present = true, ms = 20_000) =>
  waitFor(`${prefix} ${present ? 'in' : 'gone from'} BIRD`, async () => (await birdHas(b, prefix)) === present, ms);

function ourConfig(
  asn: number,
  peerAs: number,
  o: Partial<PetrelConfig> = {},
  peer: Record<string, unknown> = {},
): PetrelConfig {
  return {
    asn,
    routerId: '10.99.0.1',
    listen: { address: '10.99.0.1', port: 179 },
    nextHop: { ipv6: 'fd99::1' },
    gracefulRestart: { restartTimeSec: 60 },
    peers: [
      {
        address: '10.99.0.2',
        asn: peerAs,
        holdTimeSec: 6,
        connectRetrySec: 1,
        idleHoldSec: 1,
        idleHoldMaxSec: 2,
        ...peer,
      },
    ],
    announce: [OUR4, OUR4B, OUR6],
    ...o,
  };
}

describe('BIRD 2, eBGP with a 4-octet AS', { skip }, () => {
  let topo: Topo;
  let bird: BirdPeer;
  let us: Petrel;
  const birdConf = (static4 = [THEIR4, THEIR4_GONE]) =>
    bird2Config({
      routerId: '10.99.0.2',
      localAddress: '10.99.0.2',
      localAs: 64513,
      neighbor: '10.99.0.1',
      neighborAs: 4200000001,
      holdTimeSec: 6,
      static4,
      static6: [THEIR6],
      ipv6NextHop: 'fd99::2',
      gracefulRestart: true,
    });
  before(async () => {
    topo = await twoNodes();
    bird = await startBird(topo.theirs, birdConf());
    us = await startPetrel(topo.ours, ourConfig(4200000001, 64513));
  });
  after(async () => {
    if (process.env.PETREL_IT_DEBUG) process.stderr.write(us?.daemon.output() ?? '');
    await us?.stop().catch(() => {});
    await bird?.stop();
    await topo?.destroy();
  });

  test('session establishes (4-octet AS both ways)', async () => {
    await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 20_000);
    const proto = await bird.birdc('show', 'protocols', 'all', 'petrel');
    assert.match(proto, /Established/);
    assert.match(proto, /Neighbor AS:\s+4200000001/);
  });

  test('our IPv4 and IPv6 prefixes are in BIRD with our next hops and AS path', async () => {
    await waitBird(bird, OUR4);
    await waitBird(bird, OUR6);
    const all = await bird.birdc('show', 'route', 'all', 'for', OUR4, 'protocol', 'petrel');
    assert.match(all, /BGP.as_path: 4200000001/);
    assert.match(all, /BGP.next_hop: 10\.99\.0\.1/);
    const all6 = await bird.birdc('show', 'route', 'all', 'for', OUR6, 'protocol', 'petrel');
    assert.match(all6, /BGP.next_hop: fd99::1/);
  });

  test("BIRD's prefixes are in our best-route stream", async () => {
    await us.waitRoute(THEIR4);
    await us.waitRoute(THEIR6);
    assert.deepEqual(us.routes().get(THEIR4), ['10.99.0.2']);
    assert.deepEqual(us.routes().get(THEIR6), ['fd99::2']);
    const line = us.lines.find((l) => l.prefix === THEIR4);
    assert.deepEqual(line?.asPath, [64513]);
  });

  test('route refresh: BIRD asks (reload in), we re-send our routes', async () => {
    const before = (await us.status()).peers[0]?.updatesOut ?? 0;
    await bird.birdc('reload', 'in', 'petrel');
    await waitFor('UPDATEs re-sent', async () => ((await us.status()).peers[0]?.updatesOut ?? 0) > before, 10_000);
    assert.ok(await birdHas(bird, OUR4));
  });

  test('withdraw propagates both ways (our SIGHUP reload, BIRD disabling its statics)', async () => {
    const cfg = ourConfig(4200000001, 64513, { announce: [OUR4, OUR6] });
    writeFileSync(join(us.dir, 'bgp.json'), JSON.stringify({ status: { address: '127.0.0.1', port: 9179 }, ...cfg }));
    us.daemon.proc.kill('SIGHUP');
    await waitBird(bird, OUR4B, false);
    assert.ok(await birdHas(bird, OUR4));
    await bird.birdc('disable', 's4');
    await us.waitRoute(THEIR4, false);
    await bird.birdc('enable', 's4');
    await us.waitRoute(THEIR4);
  });

  test('route refresh: `petrelctl bgp refresh` sends ROUTE-REFRESH, BIRD re-sends its routes', async () => {
    const inBefore = (await us.status()).peers[0]?.updatesIn ?? 0;
    const r = await us.ctl('refresh', '10.99.0.2');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('BIRD re-sent', async () => ((await us.status()).peers[0]?.updatesIn ?? 0) > inBefore, 10_000);
    assert.equal((await us.status()).peers[0]?.state, 'Established');
    assert.ok(us.routes().has(THEIR4));
  });

  test('BIRD restarts gracefully (kill -9, bird -R): its routes stay until its End-of-RIB, which drops the one it no longer has', {
    skip: needs('tshark'),
  }, async () => {
    await peerRestartsGracefully(topo, us, {
      kept: [THEIR4, THEIR6],
      dropped: [THEIR4_GONE],
      crash: () => bird.daemon.proc.kill('SIGKILL'),
      restart: async () => {
        await bird.stop();
        bird = await startBird(topo.theirs, birdConf([THEIR4]), ['-R']); // -R: graceful restart recovery
      },
    });
  });

  test('hold timer expiry tears the session down and withdraws', async () => {
    await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 20_000);
    const st = await holdTimerExpiry(topo, us, [THEIR4]);
    assert.equal(st?.notificationsOut['4/0'], 1);
  });

  test('we restart gracefully (kill -9, restarting): BIRD keeps our routes, End-of-RIB removes the ones we no longer have', async () => {
    await waitBird(bird, OUR4);
    await us.kill();
    await waitFor(
      'BIRD sees the session down',
      async () => !(await bird.birdc('show', 'protocols', 'petrel')).includes('Established'),
      15_000,
    );
    assert.ok(
      await birdHas(bird, OUR4),
      `kept as stale by BIRD: ${await bird.birdc('show', 'protocols', 'all', 'petrel')}`,
    );
    us = await startPetrel(
      topo.ours,
      ourConfig(4200000001, 64513, { gracefulRestart: { restartTimeSec: 60, restarting: true }, announce: [OUR6] }),
    );
    await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 20_000);
    await waitBird(bird, OUR4, false, 15_000);
    await waitBird(bird, OUR6, true, 5000).catch(async (err) => {
      throw new Error(
        `${err}: ${await bird.birdc('show', 'route', 'all', 'protocol', 'petrel')} ${await bird.birdc('show', 'protocols', 'all', 'petrel')}`,
      );
    });
  });

  test('SIGTERM sends Cease; BIRD drops our routes at once and logs the shutdown', async () => {
    assert.equal(await us.stop(), 0);
    await waitBird(bird, OUR6, false, 5000);
    const proto = await bird.birdc('show', 'protocols', 'all', 'petrel');
    assert.match(proto, /Administrative shutdown|Received: .*shut/i);
  });
});

describe('BIRD 2, iBGP', { skip }, () => {
  let topo: Topo;
  let bird: BirdPeer;
  let us: Petrel;
  before(async () => {
    topo = await twoNodes();
    bird = await startBird(
      topo.theirs,
      bird2Config({
        routerId: '10.99.0.2',
        localAddress: '10.99.0.2',
        localAs: 64512,
        neighbor: '10.99.0.1',
        neighborAs: 64512,
        static4: [THEIR4],
        static6: [THEIR6],
        ipv6NextHop: 'fd99::2',
      }),
    );
    us = await startPetrel(topo.ours, ourConfig(64512, 64512));
  });
  after(async () => {
    await us?.stop().catch(() => {});
    await bird?.stop();
    await topo?.destroy();
  });

  test('routes flow both ways with LOCAL_PREF and an empty AS path', async () => {
    await waitBird(bird, OUR4);
    await waitBird(bird, OUR6);
    const all = await bird.birdc('show', 'route', 'all', 'for', OUR4, 'protocol', 'petrel');
    assert.match(all, /BGP.local_pref: 100/);
    assert.match(all, /BGP.as_path: *\n/);
    await us.waitRoute(THEIR4);
    await us.waitRoute(THEIR6);
    assert.deepEqual(us.routes().get(THEIR4), ['10.99.0.2']);
  });

  test('status and metrics report the session', async () => {
    const st = await us.status();
    const p = st.peers[0];
    assert.equal(p?.state, 'Established');
    assert.equal(p?.isIbgp, true);
    assert.equal(p?.prefixesAccepted, 2);
    assert.equal(p?.prefixesAdvertised, 3);
    const r = await httpGet(topo.ours, 'http://127.0.0.1:9179/metrics');
    assert.match(r.stdout, /bgp_peer_state\{peer="10.99.0.2",session_state="Established"\} 1/);
    assert.match(r.stdout, /bgp_routes_accepted\{peer="10.99.0.2",route_family="ipv4-unicast"\} 1/);
    assert.match(r.stdout, /bgp_received_update_total\{peer="10.99.0.2"\} \d+/);
  });
});
