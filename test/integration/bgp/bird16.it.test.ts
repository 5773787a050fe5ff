/**
 * Interop with BIRD 1.6 (what Calico runs): `bird` for IPv4 and `bird6` for IPv6, each with its
 * own session (IPv4 over IPv4 transport, IPv6 over IPv6 transport), as Calico's confd
 * generates. BIRD 1.6 decodes IPv4 only from the classic UPDATE fields, which is what we send.
 * Covered: iBGP and eBGP with a 4-octet AS, routes and withdrawals both ways, route refresh both
 * ways, hold timer expiry, graceful restart both ways (`bird -R` restarting while we help, and BIRD
 * helping while we restart), Cease on SIGTERM.
 *
 * What each mode covers:
 * - both modes: both sessions establish, our prefixes in BIRD (AS path: empty in iBGP, ours in
 *   eBGP), BIRD's prefixes in our stream, withdrawals both ways, route refresh both ways, Cease on
 *   SIGTERM.
 * - iBGP only (Calico's mesh): hold timer expiry, BIRD restarting gracefully, us restarting
 *   gracefully. Timers and graceful restart do not depend on the AS relation, so in eBGP these
 *   cases are reported as skipped ("does not apply: ...", lib.ts onlyWhen) rather than repeated.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BirdPeer, startBird, startCapture } from '../../helpers/bgp-peers.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import {
  assertPeerRestarted,
  BIRD16,
  holdTimerExpiry,
  onlyWhen,
  type Petrel,
  type PetrelConfig,
  readBgpCapture,
  startPetrel,
  type Topo,
  twoNodes,
} from './lib.js';

const skip = needs('root', 'netns', 'bird');
const OUR4 = '10.244.1.0/26';
const OUR4B = '10.244.2.0/26';
const OUR6 = 'fd00:10:244:1::/122';
const THEIR4 = '10.55.3.0/24';
const THEIR6 = 'fd55:3::/64';
/** Announced by bird / bird6 until their graceful restart; the restarted daemons no longer have them. */
const THEIR4_GONE = '10.55.13.0/24';
const THEIR6_GONE = 'fd55:13::/64';
const BIN4 = { bird: `${BIRD16}/bird`, birdc: `${BIRD16}/birdc` };
const BIN6 = { bird: `${BIRD16}/bird6`, birdc: `${BIRD16}/birdc6` };

function bird16Config(o: { v6: boolean; localAs: number; neighborAs: number; gone?: boolean }): string {
  const routes = o.v6
    ? [THEIR6, ...(o.gone === false ? [] : [THEIR6_GONE])]
    : [THEIR4, ...(o.gone === false ? [] : [THEIR4_GONE])];
  const local = o.v6 ? 'fd99::2' : '10.99.0.2';
  const neighbor = o.v6 ? 'fd99::1' : '10.99.0.1';
  return [
    'router id 10.99.0.2;',
    'protocol device {}',
    'protocol direct { interface "*"; }',
    `protocol static st { ${routes.map((r) => `route ${r} blackhole;`).join(' ')} }`,
    'protocol bgp petrel {',
    `  local ${local} as ${o.localAs};`,
    `  neighbor ${neighbor} as ${o.neighborAs};`,
    '  hold time 6; connect retry time 1; error wait time 1, 3;',
    '  graceful restart on;',
    '  import all; export where source = RTS_STATIC;',
    '}',
    '',
  ].join('\n');
}

async function has(b: BirdPeer, prefix: string): Promise<boolean> {
  try {
    return (await b.birdc('show', 'route', 'for', prefix, 'protocol', 'petrel')).includes(prefix);
  } catch (err) {
    if (String(err).includes('Network not found')) return false;
    throw err;
  }
}
const waitHas = (b: BirdPeer, prefix: string, present = true, ms = 20_000) =>
  waitFor(`${prefix} ${present ? 'in' : 'gone from'} BIRD 1.6`, async () => (await has(b, prefix)) === present, ms);

for (const mode of ['iBGP (Calico mesh)', 'eBGP (4-octet AS)'] as const) {
  const ebgp = mode.startsWith('eBGP');
  const ourAs = ebgp ? 4200000001 : 64512;
  const theirAs = ebgp ? 64513 : 64512;
  const cfg = (o: Partial<PetrelConfig> = {}): PetrelConfig => ({
    asn: ourAs,
    routerId: '10.99.0.1',
    listen: { address: '::', port: 179 },
    gracefulRestart: { restartTimeSec: 60 },
    peers: [
      {
        address: '10.99.0.2',
        asn: theirAs,
        families: ['ipv4'],
        holdTimeSec: 6,
        connectRetrySec: 1,
        idleHoldSec: 1,
        idleHoldMaxSec: 2,
      },
      {
        address: 'fd99::2',
        asn: theirAs,
        families: ['ipv6'],
        holdTimeSec: 6,
        connectRetrySec: 1,
        idleHoldSec: 1,
        idleHoldMaxSec: 2,
      },
    ],
    announce: [OUR4, OUR4B, OUR6],
    ...o,
  });

  describe(`BIRD 1.6, ${mode}`, { skip }, () => {
    /** Cases run in iBGP only: eBGP would repeat them exactly (skipped there with this reason). */
    const onlyIbgp = onlyWhen(
      !ebgp,
      'covered in iBGP mode: timers and graceful restart do not depend on the AS relation',
    );
    let topo: Topo;
    let bird4: BirdPeer;
    let bird6: BirdPeer;
    let us: Petrel;
    before(async () => {
      topo = await twoNodes();
      bird4 = await startBird(topo.theirs, bird16Config({ v6: false, localAs: theirAs, neighborAs: ourAs }), [], BIN4);
      bird6 = await startBird(topo.theirs, bird16Config({ v6: true, localAs: theirAs, neighborAs: ourAs }), [], BIN6);
      us = await startPetrel(topo.ours, cfg());
    });
    after(async () => {
      if (process.env.PETREL_IT_DEBUG) process.stderr.write(us?.daemon.output() ?? '');
      await us?.stop().catch(() => {});
      await bird4?.stop();
      await bird6?.stop();
      await topo?.destroy();
    });

    test('both sessions (IPv4 and IPv6 transport) establish', async () => {
      await waitFor(
        'Established x2',
        async () => (await us.status()).peers.every((p) => p.state === 'Established'),
        20_000,
      );
      // Both ends must say so: our view alone can precede BIRD's (or outlive a session it dropped).
      for (const b of [bird4, bird6]) {
        await waitFor(
          'BIRD 1.6 Established',
          async () => /Established/.test(await b.birdc('show', 'protocols', 'petrel')),
          10_000,
        );
      }
      const peers = (await us.status()).peers;
      const theirs = await Promise.all([bird4, bird6].map((b) => b.birdc('show', 'protocols', 'all', 'petrel')));
      assert.ok(
        peers.every((p) => p.state === 'Established'),
        `a session dropped right after establishing: ours ${JSON.stringify(peers.map((p) => [p.address, p.state, p.lastError]))}; BIRD:\n${theirs.join('\n')}`,
      );
    });

    test('our prefixes are in BIRD 1.6 (IPv4 from classic NLRI, IPv6 via bird6)', async () => {
      await waitHas(bird4, OUR4);
      await waitHas(bird6, OUR6);
      const all = await bird4.birdc('show', 'route', 'all', 'for', OUR4, 'protocol', 'petrel');
      assert.match(all, new RegExp(`BGP.as_path: ${ebgp ? '4200000001' : ''}\\s*\\n`));
      assert.match(all, /BGP.next_hop: 10\.99\.0\.1/);
    });

    test("BIRD 1.6's prefixes are in our stream", async () => {
      await us.waitRoute(THEIR4);
      await us.waitRoute(THEIR6);
      assert.deepEqual(us.routes().get(THEIR4), ['10.99.0.2']);
      assert.ok(us.routes().get(THEIR6)?.includes('fd99::2'));
    });

    test('withdraw propagates both ways', async () => {
      writeFileSync(
        join(us.dir, 'bgp.json'),
        JSON.stringify({ status: { address: '127.0.0.1', port: 9179 }, ...cfg({ announce: [OUR4, OUR6] }) }),
      );
      us.daemon.proc.kill('SIGHUP');
      await waitHas(bird4, OUR4B, false);
      await bird4.birdc('disable', 'st');
      await us.waitRoute(THEIR4, false);
      await bird4.birdc('enable', 'st');
      await us.waitRoute(THEIR4);
    });

    test('route refresh both ways', async () => {
      const before = (await us.status()).peers[0]?.updatesOut ?? 0;
      await bird4.birdc('reload', 'in', 'petrel');
      await waitFor('re-sent', async () => ((await us.status()).peers[0]?.updatesOut ?? 0) > before, 10_000);
      const inBefore = (await us.status()).peers[0]?.updatesIn ?? 0;
      assert.equal((await us.ctl('refresh', '10.99.0.2')).code, 0);
      await waitFor('BIRD re-sent', async () => ((await us.status()).peers[0]?.updatesIn ?? 0) > inBefore, 10_000);
    });

    onlyIbgp('hold timer expiry tears both sessions down and withdraws', async () => {
      await holdTimerExpiry(topo, us, [THEIR4, THEIR6]);
    });

    onlyIbgp(
      'bird and bird6 restart gracefully (kill -9, -R): their routes stay until their End-of-RIB, which drops the ones they no longer have',
      {
        skip: needs('tshark'),
      },
      async () => {
        await us.waitRoute(THEIR4_GONE);
        await us.waitRoute(THEIR6_GONE);
        const cap = await startCapture(topo.ours, 'veth-us');
        try {
          const fromLine = us.lines.length;
          const since = Date.now();
          bird4.daemon.proc.kill('SIGKILL');
          bird6.daemon.proc.kill('SIGKILL');
          await waitFor('both sessions down', async () =>
            (await us.status()).peers.every((p) => p.state !== 'Established'),
          );
          const down = (await us.status()).peers;
          assert.deepEqual(
            down.map((p) => p.staleRoutes),
            [2, 2],
            `routes kept as stale: ${JSON.stringify(down)}`,
          );
          for (const p of [THEIR4, THEIR4_GONE, THEIR6, THEIR6_GONE])
            assert.ok(us.routes().has(p), `${p} in our stream`);
          await bird4.stop();
          await bird6.stop();
          bird4 = await startBird(
            topo.theirs,
            bird16Config({ v6: false, localAs: theirAs, neighborAs: ourAs, gone: false }),
            ['-R'],
            BIN4,
          );
          bird6 = await startBird(
            topo.theirs,
            bird16Config({ v6: true, localAs: theirAs, neighborAs: ourAs, gone: false }),
            ['-R'],
            BIN6,
          );
          await us.waitRoute(THEIR4_GONE, false, 20_000);
          await us.waitRoute(THEIR6_GONE, false, 20_000);
          await waitFor('stale routes refreshed', async () =>
            (await us.status()).peers.every((p) => p.state === 'Established' && p.staleRoutes === 0),
          );
          const msgs = await readBgpCapture(await cap.finish());
          const check = { since, lines: us.lines, fromLine };
          assertPeerRestarted(msgs, { ...check, peer: '10.99.0.2', kept: [THEIR4], dropped: [THEIR4_GONE] });
          assertPeerRestarted(msgs, { ...check, peer: 'fd99::2', kept: [THEIR6], dropped: [THEIR6_GONE] });
          assert.ok(us.routes().has(THEIR4) && us.routes().has(THEIR6));
        } finally {
          await cap.stop();
        }
      },
    );

    onlyIbgp('we restart gracefully: BIRD 1.6 keeps our routes until End-of-RIB', async () => {
      await waitHas(bird4, OUR4);
      await us.kill();
      await waitFor(
        'BIRD sees the session down',
        async () => !(await bird4.birdc('show', 'protocols', 'petrel')).includes('Established'),
        15_000,
      );
      assert.ok(await has(bird4, OUR4), 'kept as stale');
      assert.ok(await has(bird6, OUR6), 'kept as stale (IPv6)');
      us = await startPetrel(
        topo.ours,
        cfg({ gracefulRestart: { restartTimeSec: 60, restarting: true }, announce: [OUR4B, OUR6] }),
      );
      await waitFor(
        'Established',
        async () => (await us.status()).peers.every((p) => p.state === 'Established'),
        20_000,
      );
      await waitHas(bird4, OUR4, false, 15_000);
      await waitHas(bird4, OUR4B);
      await waitHas(bird6, OUR6);
    });

    test('SIGTERM sends Cease to both sessions; BIRD 1.6 drops our routes at once; we exit 0', async () => {
      const announced = (await us.status()).announced;
      const mine4 = announced.find((p) => !p.includes(':')) ?? assert.fail('no IPv4 prefix announced');
      const mine6 = announced.find((p) => p.includes(':')) ?? assert.fail('no IPv6 prefix announced');
      await waitHas(bird4, mine4);
      await waitHas(bird6, mine6);
      assert.equal(await us.stop(), 0);
      // Without the Cease, BIRD (graceful restart on) would keep our routes as stale for 60 s.
      await waitHas(bird4, mine4, false, 3000);
      await waitHas(bird6, mine6, false, 3000);
      for (const b of [bird4, bird6])
        assert.match(await b.birdc('show', 'protocols', 'all', 'petrel'), /Received: Administrative shutdown/);
    });
  });
}
