/**
 * SIGHUP reload of `petrelctl bgp run` against real routers (issue 13): one LAN, our speaker
 * (10.99.0.1) with BIRD 2 at 10.99.0.2 (kept), GoBGP at 10.99.0.3 (removed by the reload) and a
 * second BIRD 2 at 10.99.0.4 (added by the reload). The reload must add and remove peers without
 * touching the kept session: same Established time on our side and on BIRD's (`show protocols`
 * since-time), no flap, only the new announcement sent to it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BirdPeer, type GobgpPeer, startBird, startGobgp } from '../../helpers/bgp-peers.js';
import { needs } from '../../helpers/needs.js';
import type { Netns } from '../../helpers/netns.js';
import { waitFor } from '../../helpers/process.js';
import { bird2Config, gobgpConfigFor, lan, type Petrel, startPetrel } from './lib.js';

const peer = (address: string) => ({ address, asn: 64512, connectRetrySec: 1, idleHoldSec: 1 });
const BASE = {
  asn: 64512,
  routerId: '10.99.0.1',
  listen: { address: '10.99.0.1', port: 179 },
  status: { address: '127.0.0.1', port: 9179 },
};

/** The `since` column of `birdc show protocols <name>` (BIRD resets it when the session changes state). */
async function birdSince(bird: BirdPeer): Promise<string> {
  const out = await bird.birdc('show', 'protocols', 'petrel');
  const line = out.split('\n').find((l) => l.startsWith('petrel'));
  assert.ok(line, `no petrel protocol in: ${out}`);
  const cols = line.trim().split(/\s+/);
  // name proto table state since info...
  assert.equal(cols[3], 'up', `BIRD session not up: ${line}`);
  return `${cols[4]} ${cols[5]}`;
}

/** BIRD's trace of the `petrel` protocol (its states and events), from its stderr. */
function birdTrace(bird: BirdPeer): string {
  return bird.daemon
    .output()
    .split('\n')
    .filter((l) => / petrel[:.]/.test(l))
    .slice(-40)
    .join('\n');
}

describe('petrelctl bgp run: SIGHUP adds and removes peers, the unchanged session stays Established', {
  skip: needs('root', 'netns', 'bird2', 'gobgpd'),
}, () => {
  let net: { nodes: Netns[]; destroy(): Promise<void> };
  let us: Petrel;
  let kept: BirdPeer;
  let removed: GobgpPeer;
  let added: BirdPeer;
  before(async () => {
    net = await lan(4);
    const [n0, n1, n2, n3] = net.nodes as [Netns, Netns, Netns, Netns];
    const bird = (id: string, static4: string) =>
      bird2Config({
        routerId: id,
        localAddress: id,
        localAs: 64512,
        neighbor: '10.99.0.1',
        neighborAs: 64512,
        static4: [static4],
      });
    // The kept BIRD traces its session's states and events to stderr: a since-time mismatch shows them.
    kept = await startBird(
      n1,
      `log stderr all;\ndebug protocols { states, events };\n${bird('10.99.0.2', '10.55.2.0/24')}`,
    );
    removed = await startGobgp(
      n2,
      gobgpConfigFor({ routerId: '10.99.0.3', asn: 64512, neighbor: '10.99.0.1', neighborAs: 64512 }),
    );
    await removed.gobgp('global', 'rib', '-a', 'ipv4', 'add', '10.55.3.0/24', 'nexthop', '10.99.0.3');
    added = await startBird(n3, bird('10.99.0.4', '10.55.4.0/24'));
    us = await startPetrel(n0, {
      ...BASE,
      peers: [peer('10.99.0.2'), peer('10.99.0.3')],
      announce: ['10.244.9.0/26'],
    });
  });
  after(async () => {
    await us?.stop().catch(() => {});
    await kept?.stop();
    await removed?.stop();
    await added?.stop();
    await net?.destroy();
  });

  test('SIGHUP with 10.99.0.3 removed and 10.99.0.4 added', async (t) => {
    const states = async () => new Map((await us.status()).peers.map((p) => [p.address, p]));
    await waitFor(
      'both initial sessions Established',
      async () => {
        const s = await states();
        return s.get('10.99.0.2')?.state === 'Established' && s.get('10.99.0.3')?.state === 'Established';
      },
      30_000,
    );
    await us.waitRoute('10.55.2.0/24');
    await us.waitRoute('10.55.3.0/24');
    await waitFor('our route in BIRD', async () =>
      (await kept.birdc('show', 'route', 'protocol', 'petrel')).includes('10.244.9.0/26'),
    );
    const before = (await states()).get('10.99.0.2');
    assert.ok(before?.establishedAt);
    const birdAtStart = await birdSince(kept);
    const updatesToKept = before.updatesOut;
    // Let time pass so a session re-established by the reload shows a later since-time. The baseline is
    // taken after the pause: what BIRD does in the moments after the session comes up (CI once showed its
    // since-time move by 12 ms, before any reload) is not what this test is about; it is reported below.
    await new Promise((r) => setTimeout(r, 1500));
    const birdBefore = await birdSince(kept);
    if (birdBefore !== birdAtStart)
      t.diagnostic(`BIRD's since-time moved before the reload (${birdAtStart} -> ${birdBefore}):\n${birdTrace(kept)}`);

    writeFileSync(
      join(us.dir, 'bgp.json'),
      JSON.stringify({
        ...BASE,
        peers: [peer('10.99.0.4'), peer('10.99.0.2')],
        announce: ['10.244.9.0/26', '10.244.10.0/26'],
      }),
    );
    us.daemon.proc.kill('SIGHUP');

    await waitFor(
      'added peer Established, removed peer gone',
      async () => {
        const s = await states();
        return s.get('10.99.0.4')?.state === 'Established' && !s.has('10.99.0.3');
      },
      30_000,
    );
    await us.waitRoute('10.55.4.0/24');
    await us.waitRoute('10.55.3.0/24', false, 10_000);
    await waitFor('new announcement in the kept BIRD', async () =>
      (await kept.birdc('show', 'route', 'protocol', 'petrel')).includes('10.244.10.0/26'),
    );
    await waitFor('both announcements in the added BIRD', async () => {
      const r = await added.birdc('show', 'route', 'protocol', 'petrel');
      return r.includes('10.244.9.0/26') && r.includes('10.244.10.0/26');
    });

    // The kept session: not reset on either side.
    const after = (await states()).get('10.99.0.2');
    assert.equal(after?.state, 'Established');
    assert.equal(after?.establishedAt, before.establishedAt, 'same Established time (same session)');
    assert.equal(after?.flaps, 0);
    assert.ok((after?.uptimeSec ?? 0) >= before.uptimeSec + 1, 'uptime kept counting');
    assert.equal(await birdSince(kept), birdBefore, `BIRD's session since-time unchanged; BIRD:\n${birdTrace(kept)}`);
    assert.equal(after?.updatesOut, updatesToKept + 1, 'the kept peer got one UPDATE: the new announcement');
    assert.ok(
      (await kept.birdc('show', 'route', 'protocol', 'petrel')).includes('10.244.9.0/26'),
      'the old announcement is still in BIRD',
    );

    // The removed peer: we closed its session (Cease 6/3, peer de-configured) and refuse it since.
    const neighbor = await removed.gobgp('neighbor', '10.99.0.1');
    assert.doesNotMatch(neighbor, /BGP state = established/i, neighbor);
    await waitFor(
      'our route withdrawn from GoBGP',
      async () => !(await removed.gobgp('global', 'rib', '-a', 'ipv4')).includes('10.244.9.0/26'),
    );
  });
});
