/**
 * Interop with FRR 8 (zebra + bgpd started inside the netns with their own config, pid and socket
 * paths): eBGP with a 4-octet AS and iBGP, IPv4 + IPv6 both ways, withdrawals both ways, route
 * refresh both ways, hold timer expiry, graceful restart both ways, Cease on SIGTERM.
 *
 * What each mode covers:
 * - both modes: session up, prefixes both ways (IPv4 and IPv6), withdrawals both ways, route
 *   refresh both ways, Cease on SIGTERM.
 * - eBGP only: hold timer expiry, FRR restarting gracefully, us restarting gracefully. Timers and
 *   graceful restart do not depend on the AS relation, so in iBGP these cases are reported as
 *   skipped ("does not apply: ...", lib.ts onlyWhen) rather than repeated.
 *
 * FRR as the restarting speaker: bgpd is killed (-9) and started again while zebra stays up.
 * bgpd sets the Restart State (R) bit in every OPEN while its startup timer runs (`t_startup`,
 * armed for the restart time, 120 s by default, when the BGP instance is created; bgp_open.c), and
 * the F bit per family with `bgp graceful-restart preserve-fw-state`. No zebra/bgpd `-K` is needed
 * for that: `-K` only makes zebra keep the kernel routes of a restarting client.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import type { Netns } from '../../helpers/netns.js';
import { type Daemon, waitFor } from '../../helpers/process.js';
import {
  holdTimerExpiry,
  onlyWhen,
  type Petrel,
  type PetrelConfig,
  peerRestartsGracefully,
  startPetrel,
  type Topo,
  tempConfig,
  twoNodes,
} from './lib.js';

const skip = needs('root', 'netns', 'frr');
const OUR4 = '10.244.1.0/26';
const OUR4B = '10.244.2.0/26';
const OUR6 = 'fd00:10:244:1::/122';
const THEIR4 = '10.55.4.0/24';
const THEIR6 = 'fd55:4::/64';
/** Announced by FRR until its graceful restart; the restarted bgpd no longer has it. */
const THEIR4_GONE = '10.55.14.0/24';

interface Frr {
  /** One or more commands (each a `-c`), e.g. a configure sequence. */
  vtysh(...cmds: string[]): Promise<string>;
  /** SIGKILL bgpd (no NOTIFICATION; zebra stays up): a crash, for graceful restart tests. */
  killBgpd(): Promise<void>;
  /** Starts bgpd again, originating `networks4` (and THEIR6). */
  startBgpd(networks4: string[]): Promise<void>;
  stop(): Promise<void>;
}

function frrConfig(localAs: number, peerAs: number, networks4: string[]): string {
  return [
    'frr defaults traditional',
    'hostname frr',
    'log stdout',
    `router bgp ${localAs}`,
    ' bgp router-id 10.99.0.2',
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ' no bgp default ipv4-unicast',
    ' bgp graceful-restart',
    ' bgp graceful-restart preserve-fw-state',
    ` neighbor 10.99.0.1 remote-as ${peerAs}`,
    ' neighbor 10.99.0.1 timers 2 6',
    ' neighbor 10.99.0.1 timers connect 1',
    ' address-family ipv4 unicast',
    ...networks4.map((n) => `  network ${n}`),
    '  neighbor 10.99.0.1 activate',
    ' exit-address-family',
    ' address-family ipv6 unicast',
    `  network ${THEIR6}`,
    '  neighbor 10.99.0.1 activate',
    ' exit-address-family',
    '',
  ].join('\n');
}

async function startFrr(ns: Netns, localAs: number, peerAs: number): Promise<Frr> {
  const { dir, file } = tempConfig('frr', 'frr.conf', frrConfig(localAs, peerAs, [THEIR4, THEIR4_GONE]));
  writeFileSync(join(dir, 'vtysh.conf'), '');
  // FRR drops privileges to its own user (which is in the frrvty group): let it own the dir.
  await ns.exec('chown', ['-R', 'frr:frr', dir]);
  const common = ['-f', file, '-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-u', 'frr', '-g', 'frr'];
  const vtysh = async (...cmds: string[]) => {
    const r = await ns.exec('vtysh', ['--vty_socket', dir, '--config_dir', dir, ...cmds.flatMap((c) => ['-c', c])], {
      timeoutMs: 10_000,
    });
    if (r.code !== 0) throw new Error(`vtysh ${cmds.join('; ')}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  let bgpd: Daemon | undefined;
  const zebra: Daemon = ns.spawn('/usr/lib/frr/zebra', [...common, '-i', join(dir, 'zebra.pid')]);
  const stop = async () => {
    await bgpd?.stop(3000);
    await zebra.stop(3000);
    rmSync(dir, { recursive: true, force: true });
  };
  const startBgpd = async (networks4: string[]) => {
    writeFileSync(file, frrConfig(localAs, peerAs, networks4));
    await ns.exec('chown', ['frr:frr', file]);
    const d = ns.spawn('/usr/lib/frr/bgpd', [...common, '-i', join(dir, 'bgpd.pid'), '-p', '179']);
    bgpd = d;
    await waitFor('bgpd vty', async () => {
      if (d.exited()) throw new Error(`bgpd exited: ${d.output()}`);
      return (await vtysh('show bgp summary')).includes('10.99.0.1');
    });
  };
  try {
    await waitFor('zebra socket', () => {
      if (zebra.exited()) throw new Error(`zebra exited: ${zebra.output()}`);
      return existsSync(join(dir, 'zserv.api'));
    });
    await startBgpd([THEIR4, THEIR4_GONE]);
  } catch (err) {
    await stop();
    throw err;
  }
  const killBgpd = async () => {
    bgpd?.proc.kill('SIGKILL');
    await bgpd?.stop();
  };
  return { vtysh, killBgpd, startBgpd, stop };
}

interface FrrPath {
  stale?: boolean;
}
async function frrPaths(f: Frr, prefix: string): Promise<FrrPath[]> {
  const out = await f.vtysh(`show bgp ${prefix.includes(':') ? 'ipv6' : 'ipv4'} unicast ${prefix} json`);
  const j = JSON.parse(out || '{}') as { paths?: FrrPath[] };
  return j.paths ?? [];
}
async function frrHas(f: Frr, prefix: string): Promise<boolean> {
  return (await frrPaths(f, prefix)).length > 0;
}
const waitFrr = (f: Frr, prefix: string, present = true, ms = 20_000) =>
  waitFor(`${prefix} ${present ? 'in' : 'gone from'} FRR`, async () => (await frrHas(f, prefix)) === present, ms);
async function frrNeighbor(f: Frr): Promise<Record<string, unknown>> {
  const j = JSON.parse(await f.vtysh('show bgp neighbors 10.99.0.1 json')) as Record<string, Record<string, unknown>>;
  return j['10.99.0.1'] ?? {};
}

for (const mode of ['eBGP (4-octet AS)', 'iBGP'] as const) {
  const ebgp = mode.startsWith('eBGP');
  const ourAs = ebgp ? 4200000001 : 64512;
  const theirAs = ebgp ? 64513 : 64512;
  const cfg = (o: Partial<PetrelConfig> = {}): PetrelConfig => ({
    asn: ourAs,
    routerId: '10.99.0.1',
    listen: { address: '10.99.0.1', port: 179 },
    nextHop: { ipv6: 'fd99::1' },
    gracefulRestart: { restartTimeSec: 60 },
    peers: [
      { address: '10.99.0.2', asn: theirAs, holdTimeSec: 6, connectRetrySec: 1, idleHoldSec: 1, idleHoldMaxSec: 2 },
    ],
    announce: [OUR4, OUR4B, OUR6],
    ...o,
  });
  describe(`FRR, ${mode}`, { skip }, () => {
    /** Cases run in eBGP only: iBGP would repeat them exactly (skipped there with this reason). */
    const onlyEbgp = onlyWhen(
      ebgp,
      'covered in eBGP mode: timers and graceful restart do not depend on the AS relation',
    );
    let topo: Topo;
    let frr: Frr;
    let us: Petrel;
    before(async () => {
      topo = await twoNodes();
      frr = await startFrr(topo.theirs, theirAs, ourAs);
      us = await startPetrel(topo.ours, cfg());
    });
    after(async () => {
      if (process.env.PETREL_IT_DEBUG) process.stderr.write(us?.daemon.output() ?? '');
      await us?.stop().catch(() => {});
      await frr?.stop();
      await topo?.destroy();
    });

    test('session establishes', async () => {
      await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 30_000);
      const j = JSON.parse(await frr.vtysh('show bgp neighbors 10.99.0.1 json')) as Record<
        string,
        { bgpState?: string }
      >;
      assert.equal(j['10.99.0.1']?.bgpState, 'Established');
    });

    test('our IPv4 and IPv6 prefixes are in FRR', async () => {
      await waitFrr(frr, OUR4);
      await waitFrr(frr, OUR6);
    });

    test("FRR's prefixes are in our stream", async () => {
      await us.waitRoute(THEIR4);
      await us.waitRoute(THEIR6);
      assert.deepEqual(us.routes().get(THEIR4), ['10.99.0.2']);
    });

    test('withdraw propagates both ways', async () => {
      writeFileSync(
        join(us.dir, 'bgp.json'),
        JSON.stringify({ status: { address: '127.0.0.1', port: 9179 }, ...cfg({ announce: [OUR4, OUR6] }) }),
      );
      us.daemon.proc.kill('SIGHUP');
      await waitFrr(frr, OUR4B, false);
      await frr.vtysh(
        'configure terminal',
        `router bgp ${theirAs}`,
        'address-family ipv4 unicast',
        `no network ${THEIR4}`,
      );
      await us.waitRoute(THEIR4, false);
      await frr.vtysh(
        'configure terminal',
        `router bgp ${theirAs}`,
        'address-family ipv4 unicast',
        `network ${THEIR4}`,
      );
      await us.waitRoute(THEIR4);
    });

    test('route refresh both ways: FRR soft in (we re-send), and ours (FRR re-sends)', async () => {
      const before = (await us.status()).peers[0]?.updatesOut ?? 0;
      await frr.vtysh('clear bgp 10.99.0.1 soft in');
      await waitFor('re-sent', async () => ((await us.status()).peers[0]?.updatesOut ?? 0) > before, 10_000);
      const inBefore = (await us.status()).peers[0]?.updatesIn ?? 0;
      const r = await us.ctl('refresh', '10.99.0.2');
      assert.equal(r.code, 0, r.stderr);
      await waitFor('FRR re-sent', async () => ((await us.status()).peers[0]?.updatesIn ?? 0) > inBefore, 10_000);
      const n = await frrNeighbor(frr);
      const rr = (n.messageStats as { routeRefreshRecv?: number } | undefined)?.routeRefreshRecv ?? 0;
      assert.ok(rr >= 1, `FRR counted our ROUTE-REFRESH: ${JSON.stringify(n.messageStats)}`);
      assert.equal((await us.status()).peers[0]?.state, 'Established');
    });

    onlyEbgp('hold timer expiry tears the session down and withdraws', async () => {
      await holdTimerExpiry(topo, us, [THEIR6]);
    });

    onlyEbgp(
      'FRR restarts gracefully (kill -9 bgpd): its routes stay until its End-of-RIB, which drops the one it no longer has',
      {
        skip: needs('tshark'),
      },
      async () => {
        await peerRestartsGracefully(topo, us, {
          kept: [THEIR4, THEIR6],
          dropped: [THEIR4_GONE],
          crash: () => frr.killBgpd(),
          restart: () => frr.startBgpd([THEIR4]),
        });
      },
    );

    onlyEbgp(
      'we restart gracefully: FRR keeps our routes (stale) until our End-of-RIB, which drops the one we no longer have',
      async () => {
        await waitFrr(frr, OUR4);
        await waitFrr(frr, OUR6);
        await us.kill();
        await waitFor(
          'FRR sees the session down',
          async () => (await frrNeighbor(frr)).bgpState !== 'Established',
          15_000,
        );
        for (const p of [OUR4, OUR6]) {
          const paths = await frrPaths(frr, p);
          assert.ok(
            paths.length === 1 && paths[0]?.stale === true,
            `${p} kept as stale by FRR: ${JSON.stringify(paths)}`,
          );
        }
        us = await startPetrel(
          topo.ours,
          cfg({ gracefulRestart: { restartTimeSec: 60, restarting: true }, announce: [OUR4B, OUR6] }),
        );
        await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 20_000);
        await waitFrr(frr, OUR4, false, 15_000);
        await waitFrr(frr, OUR4B);
        await waitFor('OUR6 refreshed', async () => {
          const paths = await frrPaths(frr, OUR6);
          return paths.length === 1 && paths[0]?.stale !== true;
        });
      },
    );

    test('SIGTERM sends Cease; FRR records it and drops our routes at once; we exit 0', async () => {
      const announced = (await us.status()).announced;
      const mine4 = announced.find((p) => !p.includes(':')) ?? assert.fail('no IPv4 prefix announced');
      await waitFrr(frr, mine4);
      await waitFrr(frr, OUR6);
      assert.equal(await us.stop(), 0);
      // Without the Cease, FRR (graceful restart helper) would keep our routes as stale for 60 s.
      await waitFrr(frr, mine4, false, 3000);
      await waitFrr(frr, OUR6, false, 3000);
      const n = await frrNeighbor(frr);
      assert.equal(n.lastNotificationReason, 'Cease/Administrative Shutdown', JSON.stringify(n));
      assert.equal(n.lastResetDueTo, 'BGP Notification received');
    });
  });
}
