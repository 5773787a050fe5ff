/**
 * Interop with FRR 8 (zebra + bgpd started inside the netns with their own config, pid and socket
 * paths): eBGP with a 4-octet AS and iBGP, IPv4 + IPv6 both ways, withdrawals both ways, route
 * refresh, hold timer expiry.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import type { Netns } from '../../helpers/netns.js';
import { type Daemon, waitFor } from '../../helpers/process.js';
import { type Petrel, type PetrelConfig, startPetrel, type Topo, tempConfig, twoNodes } from './lib.js';

const skip = needs('root', 'netns', 'frr');
const OUR4 = '10.244.1.0/26';
const OUR4B = '10.244.2.0/26';
const OUR6 = 'fd00:10:244:1::/122';
const THEIR4 = '10.55.4.0/24';
const THEIR6 = 'fd55:4::/64';

interface Frr {
  /** One or more commands (each a `-c`), e.g. a configure sequence. */
  vtysh(...cmds: string[]): Promise<string>;
  stop(): Promise<void>;
}

async function startFrr(ns: Netns, localAs: number, peerAs: number): Promise<Frr> {
  const conf = [
    'frr defaults traditional',
    'hostname frr',
    'log stdout',
    `router bgp ${localAs}`,
    ' bgp router-id 10.99.0.2',
    ' no bgp ebgp-requires-policy',
    ' no bgp network import-check',
    ' no bgp default ipv4-unicast',
    ' bgp graceful-restart',
    ` neighbor 10.99.0.1 remote-as ${peerAs}`,
    ' neighbor 10.99.0.1 timers 2 6',
    ' neighbor 10.99.0.1 timers connect 1',
    ' address-family ipv4 unicast',
    `  network ${THEIR4}`,
    '  neighbor 10.99.0.1 activate',
    ' exit-address-family',
    ' address-family ipv6 unicast',
    `  network ${THEIR6}`,
    '  neighbor 10.99.0.1 activate',
    ' exit-address-family',
    '',
  ].join('\n');
  const { dir, file } = tempConfig('frr', 'frr.conf', conf);
  writeFileSync(join(dir, 'vtysh.conf'), '');
  // FRR drops privileges to its own user (which is in the frrvty group): let it own the dir.
  await ns.exec('chown', ['-R', 'frr:frr', dir]);
  const common = ['-f', file, '-z', join(dir, 'zserv.api'), '--vty_socket', dir, '-u', 'frr', '-g', 'frr'];
  const zebra: Daemon = ns.spawn('/usr/lib/frr/zebra', [...common, '-i', join(dir, 'zebra.pid')]);
  await waitFor('zebra socket', () => {
    if (zebra.exited()) throw new Error(`zebra exited: ${zebra.output()}`);
    return existsSync(join(dir, 'zserv.api'));
  });
  const bgpd: Daemon = ns.spawn('/usr/lib/frr/bgpd', [...common, '-i', join(dir, 'bgpd.pid'), '-p', '179']);
  const vtysh = async (...cmds: string[]) => {
    const r = await ns.exec('vtysh', ['--vty_socket', dir, '--config_dir', dir, ...cmds.flatMap((c) => ['-c', c])], {
      timeoutMs: 10_000,
    });
    if (r.code !== 0) throw new Error(`vtysh ${cmds.join('; ')}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const stop = async () => {
    await bgpd.stop(3000);
    await zebra.stop(3000);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('bgpd vty', async () => {
      if (bgpd.exited()) throw new Error(`bgpd exited: ${bgpd.output()}`);
      return (await vtysh('show bgp summary')).includes('10.99.0.1');
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { vtysh, stop };
}

async function frrHas(f: Frr, prefix: string): Promise<boolean> {
  const out = await f.vtysh(`show bgp ${prefix.includes(':') ? 'ipv6' : 'ipv4'} unicast ${prefix} json`);
  const j = JSON.parse(out || '{}') as { paths?: unknown[] };
  return (j.paths?.length ?? 0) > 0;
}
const waitFrr = (f: Frr, prefix: string, present = true, ms = 20_000) =>
  waitFor(`${prefix} ${present ? 'in' : 'gone from'} FRR`, async () => (await frrHas(f, prefix)) === present, ms);

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
    /** Cases run in one mode only: the other mode would repeat them exactly. */
    const onlyEbgp = ebgp ? test : (..._: unknown[]) => {};
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

    test('route refresh: FRR soft in, and ours', async () => {
      const before = (await us.status()).peers[0]?.updatesOut ?? 0;
      await frr.vtysh('clear bgp 10.99.0.1 soft in');
      await waitFor('re-sent', async () => ((await us.status()).peers[0]?.updatesOut ?? 0) > before, 10_000);
      assert.equal((await us.ctl('refresh', '10.99.0.2')).code, 0);
      assert.equal((await us.status()).peers[0]?.state, 'Established');
    });

    onlyEbgp('hold timer expiry tears the session down and withdraws', async () => {
      await topo.theirs.ip('link', 'set', 'veth-them', 'down');
      try {
        await us.waitRoute(THEIR6, false, 15_000);
        assert.equal((await us.status()).peers[0]?.lastError, 'hold timer expired');
      } finally {
        await topo.theirs.ip('link', 'set', 'veth-them', 'up');
      }
      await us.waitRoute(THEIR6, true, 30_000);
    });
  });
}
