/**
 * Interop with GoBGP 3 (gobgpd in a netns, driven through the gobgp CLI): eBGP with a 4-octet AS
 * and iBGP, IPv4 + IPv6 both ways, withdrawals both ways, route refresh, hold timer expiry,
 * graceful restart both ways (GoBGP as helper while we restart; `gobgpd -r` restarting while we
 * help), Cease on SIGTERM.
 *
 * What each mode covers:
 * - both modes: session up, prefixes both ways (AS path checked in eBGP), withdrawals both ways,
 *   route refresh (ours to GoBGP), Cease on SIGTERM.
 * - eBGP only: hold timer expiry, GoBGP restarting gracefully, us restarting gracefully. Timers
 *   and graceful restart do not depend on the AS relation, so in iBGP these cases are reported as
 *   skipped ("does not apply: ...", lib.ts onlyWhen) rather than repeated.
 *
 * Route refresh is one-way here: GoBGP answers our ROUTE-REFRESH, but never sends one. It keeps
 * every received path in its Adj-RIB-In, so `gobgp neighbor ADDR softresetin` only re-runs its
 * import policy over that table (pkg/server/server.go softResetIn); there is no command that puts
 * a ROUTE-REFRESH on the wire.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type GobgpPeer, startGobgp } from '../../helpers/bgp-peers.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import {
  gobgpConfigFor,
  holdTimerExpiry,
  onlyWhen,
  type Petrel,
  type PetrelConfig,
  peerRestartsGracefully,
  startPetrel,
  type Topo,
  twoNodes,
} from './lib.js';

const skip = needs('root', 'netns', 'gobgpd');
const OUR4 = '10.244.1.0/26';
const OUR4B = '10.244.2.0/26';
const OUR6 = 'fd00:10:244:1::/122';
const THEIR4 = '10.55.2.0/24';
const THEIR6 = 'fd55:2::/64';
/** Announced by GoBGP until its graceful restart; the restarted GoBGP no longer has it. */
const THEIR4_GONE = '10.55.12.0/24';

async function gobgpHas(g: GobgpPeer, prefix: string): Promise<boolean> {
  const out = await g.gobgp('global', 'rib', '-a', prefix.includes(':') ? 'ipv6' : 'ipv4');
  return out.includes(prefix);
}
const waitGobgp = (g: GobgpPeer, prefix: string, present = true, ms = 20_000) =>
  waitFor(`${prefix} ${present ? 'in' : 'gone from'} GoBGP`, async () => (await gobgpHas(g, prefix)) === present, ms);

function ourConfig(asn: number, peerAs: number, o: Partial<PetrelConfig> = {}): PetrelConfig {
  return {
    asn,
    routerId: '10.99.0.1',
    listen: { address: '10.99.0.1', port: 179 },
    nextHop: { ipv6: 'fd99::1' },
    gracefulRestart: { restartTimeSec: 60 },
    peers: [
      { address: '10.99.0.2', asn: peerAs, holdTimeSec: 6, connectRetrySec: 1, idleHoldSec: 1, idleHoldMaxSec: 2 },
    ],
    announce: [OUR4, OUR4B, OUR6],
    ...o,
  };
}

for (const mode of ['eBGP (4-octet AS)', 'iBGP'] as const) {
  const ebgp = mode !== 'iBGP';
  const ourAs = ebgp ? 4200000001 : 64512;
  const theirAs = ebgp ? 64513 : 64512;
  describe(`GoBGP, ${mode}`, { skip }, () => {
    /** Cases run in eBGP only: iBGP would repeat them exactly (skipped there with this reason). */
    const onlyEbgp = onlyWhen(
      ebgp,
      'covered in eBGP mode: timers and graceful restart do not depend on the AS relation',
    );
    let topo: Topo;
    let gobgp: GobgpPeer;
    let us: Petrel;
    const gobgpConf = (adminDown = false) =>
      gobgpConfigFor({
        routerId: '10.99.0.2',
        asn: theirAs,
        neighbor: '10.99.0.1',
        neighborAs: ourAs,
        holdTimeSec: 6,
        gracefulRestart: true,
        adminDown,
      });
    before(async () => {
      topo = await twoNodes();
      gobgp = await startGobgp(topo.theirs, gobgpConf());
      for (const p of [THEIR4, THEIR4_GONE])
        await gobgp.gobgp('global', 'rib', '-a', 'ipv4', 'add', p, 'nexthop', '10.99.0.2');
      await gobgp.gobgp('global', 'rib', '-a', 'ipv6', 'add', THEIR6, 'nexthop', 'fd99::2');
      us = await startPetrel(topo.ours, ourConfig(ourAs, theirAs));
    });
    after(async () => {
      if (process.env.PETREL_IT_DEBUG) process.stderr.write(us?.daemon.output() ?? '');
      await us?.stop().catch(() => {});
      await gobgp?.stop();
      await topo?.destroy();
    });

    test('session establishes', async () => {
      await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 20_000);
      assert.match(await gobgp.gobgp('neighbor'), /10\.99\.0\.1\s+\d+\s+\S+\s+Establ/);
    });

    test('our IPv4 and IPv6 prefixes are in GoBGP', async () => {
      await waitGobgp(gobgp, OUR4);
      await waitGobgp(gobgp, OUR6);
      const v4 = await gobgp.gobgp('global', 'rib', '-a', 'ipv4', OUR4);
      assert.match(v4, /10\.99\.0\.1/);
      if (ebgp) assert.match(v4, /4200000001/);
      assert.match(await gobgp.gobgp('global', 'rib', '-a', 'ipv6', OUR6), /fd99::1/);
    });

    test("GoBGP's prefixes are in our stream", async () => {
      await us.waitRoute(THEIR4);
      await us.waitRoute(THEIR6);
      assert.deepEqual(us.routes().get(THEIR4), ['10.99.0.2']);
      assert.deepEqual(us.routes().get(THEIR6), ['fd99::2']);
    });

    test('route refresh: `petrelctl bgp refresh` sends ROUTE-REFRESH, GoBGP re-sends its routes', async () => {
      const refreshes = async () =>
        Number(/Refresh:\s+\d+\s+(\d+)/.exec(await gobgp.gobgp('neighbor', '10.99.0.1'))?.[1] ?? -1);
      const before = await refreshes();
      const updatesBefore = (await us.status()).peers[0]?.updatesIn ?? 0;
      const r = await us.ctl('refresh', '10.99.0.2');
      assert.equal(r.code, 0, r.stderr);
      await waitFor('GoBGP received ROUTE-REFRESH', async () => (await refreshes()) > before, 10_000);
      await waitFor(
        'GoBGP re-sent',
        async () => ((await us.status()).peers[0]?.updatesIn ?? 0) > updatesBefore,
        10_000,
      );
      assert.ok(us.routes().has(THEIR4));
    });

    test('withdraw propagates both ways', async () => {
      writeFileSync(
        join(us.dir, 'bgp.json'),
        JSON.stringify({
          status: { address: '127.0.0.1', port: 9179 },
          ...ourConfig(ourAs, theirAs, { announce: [OUR4, OUR6] }),
        }),
      );
      us.daemon.proc.kill('SIGHUP');
      await waitGobgp(gobgp, OUR4B, false);
      await gobgp.gobgp('global', 'rib', '-a', 'ipv4', 'del', THEIR4);
      await us.waitRoute(THEIR4, false);
      await gobgp.gobgp('global', 'rib', '-a', 'ipv4', 'add', THEIR4, 'nexthop', '10.99.0.2');
      await us.waitRoute(THEIR4);
    });

    onlyEbgp('hold timer expiry tears the session down and withdraws', async () => {
      await holdTimerExpiry(topo, us, [THEIR4]);
    });

    onlyEbgp(
      'GoBGP restarts gracefully (kill -9, gobgpd -r): its routes stay until its End-of-RIB, which drops the one it no longer has',
      {
        skip: needs('tshark'),
      },
      async () => {
        await peerRestartsGracefully(topo, us, {
          kept: [THEIR4, THEIR6],
          dropped: [THEIR4_GONE],
          crash: () => gobgp.daemon.proc.kill('SIGKILL'),
          restart: async () => {
            await gobgp.stop();
            // -r sets the Restart State bit. The neighbor starts administratively down so that the
            // routes (gobgpd has no static routes in its config) are back in its RIB before the session.
            gobgp = await startGobgp(topo.theirs, gobgpConf(true), 50051, ['-r']);
            await gobgp.gobgp('global', 'rib', '-a', 'ipv4', 'add', THEIR4, 'nexthop', '10.99.0.2');
            await gobgp.gobgp('global', 'rib', '-a', 'ipv6', 'add', THEIR6, 'nexthop', 'fd99::2');
            await gobgp.gobgp('neighbor', '10.99.0.1', 'enable');
          },
        });
      },
    );

    onlyEbgp('we restart gracefully: GoBGP keeps our routes until our End-of-RIB', async () => {
      await waitGobgp(gobgp, OUR4);
      await us.kill();
      await waitFor('GoBGP sees the session down', async () => !/Establ/.test(await gobgp.gobgp('neighbor')), 15_000);
      assert.ok(await gobgpHas(gobgp, OUR4), 'kept as stale');
      us = await startPetrel(
        topo.ours,
        ourConfig(ourAs, theirAs, { gracefulRestart: { restartTimeSec: 60, restarting: true }, announce: [OUR6] }),
      );
      await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 20_000);
      await waitGobgp(gobgp, OUR4, false, 15_000);
      await waitGobgp(gobgp, OUR6);
    });

    test('SIGTERM sends Cease; GoBGP logs it and drops our routes at once; we exit 0', async () => {
      await waitGobgp(gobgp, OUR6);
      assert.equal(await us.stop(), 0);
      // Without the Cease, GoBGP (graceful restart helper) would keep our routes as stale for 60 s.
      await waitGobgp(gobgp, OUR6, false, 3000);
      assert.match(gobgp.daemon.output(), /msg="received notification" Code=6 .*Subcode=2/);
      assert.match(gobgp.daemon.output(), /msg="Peer Down" .*Reason="notification-received code 6\(cease\) subcode 2/);
    });
  });
}
