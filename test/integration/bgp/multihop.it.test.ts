/**
 * eBGP single hop vs multihop, and the per-peer source address, against BIRD 2 two hops away:
 *
 *   us (AS 65001)              router (ip_forward)              bird (AS 65002)
 *   u0 10.97.1.1/24  ------  r1 10.97.1.254/24
 *   lo 10.97.9.1/32           r2 10.97.2.254/24  ------  b0 10.97.2.2/24
 *
 * us and bird reach each other's subnet (and bird and the router reach 10.97.9.1) through the
 * router, so the peer is never on a directly connected network. BIRD has `multihop 2` and learns
 * the kernel routes of its namespace (no export to the kernel), so it resolves our next hop
 * recursively through the router.
 * - Without `multihop` on our side we never dial (no SYN from us on a capture of our link, while
 *   BIRD's SYNs are there), we refuse BIRD's connections, and status shows why.
 * - With `multihop: 2` the session comes up (both sides dialling; and with us passive, BIRD's
 *   connection is accepted), routes go both ways with our link address as next hop, and
 *   withdrawals propagate both ways.
 * - With `localAddress: 10.97.9.1` (and BIRD passive, so only our connection can make the
 *   session) BIRD sees the session from 10.97.9.1 and our route's next hop is 10.97.9.1.
 * Every namespace is created and deleted here; every process is stopped by PID.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type BirdPeer, birdConfig, type Capture, startBird, startCapture } from '../../helpers/bgp-peers.js';
import { needs } from '../../helpers/needs.js';
import { createNetns, type Netns, run, vethBetween } from '../../helpers/netns.js';
import { waitFor } from '../../helpers/process.js';
import { type Petrel, type PetrelConfig, startPetrel } from './lib.js';

const skip = needs('root', 'netns', 'bird2');

const US = '10.97.1.1';
const US_LO = '10.97.9.1';
const BIRD = '10.97.2.2';
const OUR4 = '10.244.1.0/26';
const OUR4B = '10.244.2.0/26';
const THEIR4 = '10.55.1.0/24';
const NOT_DIRECT = 'peer not on a directly connected network (eBGP without multihop)';
/** Logged by the speaker for each refused incoming connection. */
const REFUSED_LOG = 'connection refused: eBGP peer not on a directly connected network';

interface Topo {
  us: Netns;
  router: Netns;
  bird: Netns;
}

/** Creates the three namespaces (assigned before any link is made, so `after` can delete them). */
async function namespaces(into: Partial<Topo>): Promise<Topo> {
  into.us = await createNetns('mh-us');
  into.router = await createNetns('mh-rt');
  into.bird = await createNetns('mh-bird');
  return into as Topo;
}

/** Links, addresses and routes, all inside the namespaces. */
async function wireUp({ us, router, bird }: Topo): Promise<void> {
  await vethBetween(us, router, { aName: 'u0', bName: 'r1', aAddr: `${US}/24`, bAddr: '10.97.1.254/24' });
  await vethBetween(bird, router, { aName: 'b0', bName: 'r2', aAddr: `${BIRD}/24`, bAddr: '10.97.2.254/24' });
  await router.sysctl('net.ipv4.ip_forward', '1');
  await us.ip('addr', 'add', `${US_LO}/32`, 'dev', 'lo');
  await us.ip('route', 'add', '10.97.2.0/24', 'via', '10.97.1.254');
  await bird.ip('route', 'add', '10.97.1.0/24', 'via', '10.97.2.254');
  await bird.ip('route', 'add', `${US_LO}/32`, 'via', '10.97.2.254');
  await router.ip('route', 'add', `${US_LO}/32`, 'via', US);
}

/** BIRD 2 two hops from us: `multihop 2`, its static THEIR4 exported, kernel routes learned for next-hop resolution. */
function birdConf(o: { neighbor: string; passive?: boolean }): string {
  const bgp = birdConfig({
    routerId: BIRD,
    static4: [THEIR4],
    neighbors: [
      {
        name: 'petrel',
        localAddress: BIRD,
        localAs: 65002,
        address: o.neighbor,
        as: 65001,
        holdTimeSec: 6,
        passive: o.passive ?? false,
        extra: 'multihop 2; connect delay time 1;',
        // Only the static: the learned kernel routes are for next-hop resolution.
        exportStatements: 'if source != RTS_STATIC then reject;',
      },
    ],
  });
  return `${bgp}protocol kernel { ipv4 { import all; export none; }; learn; }\n`;
}

function ourConfig(peer: Record<string, unknown> = {}, announce = [OUR4, OUR4B]): PetrelConfig {
  return {
    asn: 65001,
    routerId: US,
    listen: { address: '0.0.0.0', port: 179 },
    peers: [
      { address: BIRD, asn: 65002, holdTimeSec: 6, connectRetrySec: 1, idleHoldSec: 1, idleHoldMaxSec: 2, ...peer },
    ],
    announce,
  };
}

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
const birdProto = (b: BirdPeer) => b.birdc('show', 'protocols', 'all', 'petrel');
/** Status polls spawn `petrelctl bgp status`: not more often than this. */
const STATUS_POLL_MS = 200;
const established = (us: Petrel, ms = 20_000) =>
  waitFor(
    'our session Established',
    async () => (await us.status()).peers[0]?.state === 'Established',
    ms,
    STATUS_POLL_MS,
  );

/** Connection-opening SYNs (SYN without ACK) in a capture, as `src -> dst:port`. */
async function synsIn(file: string): Promise<string[]> {
  const r = await run(
    'tshark',
    [
      '-r',
      file,
      '-Y',
      'tcp.flags.syn == 1 && tcp.flags.ack == 0',
      '-T',
      'fields',
      '-e',
      'ip.src',
      '-e',
      'ip.dst',
      '-e',
      'tcp.dstport',
    ],
    { timeoutMs: 30_000 },
  );
  if (r.code !== 0) throw new Error(`tshark -r ${file}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [src, dst, port] = l.split('\t');
      return `${src} -> ${dst}:${port}`;
    });
}

/** Established TCP connections in a namespace, as `local peer` pairs (ss -Htn). */
async function tcpEstablished(ns: Netns): Promise<string> {
  const r = await ns.exec('ss', ['-Htn', 'state', 'established'], { timeoutMs: 5000 });
  if (r.code !== 0) throw new Error(`ss: ${r.stderr}`);
  return r.stdout;
}

describe('eBGP two hops away (BIRD 2 behind a router): single hop vs multihop, source address', { skip }, () => {
  const made: Partial<Topo> = {};
  let topo: Topo;
  before(async () => {
    topo = await namespaces(made);
    await wireUp(topo);
  });
  after(async () => {
    await made.us?.delete();
    await made.router?.delete();
    await made.bird?.delete();
  });

  /** Runs `fn` with our speaker and BIRD started (in that order if `usFirst`), and stops both whatever happens. */
  async function withSession(
    o: { ours: PetrelConfig; bird: string; usFirst?: boolean },
    fn: (us: Petrel, bird: BirdPeer) => Promise<void>,
  ): Promise<void> {
    let us: Petrel | undefined;
    let bird: BirdPeer | undefined;
    try {
      if (o.usFirst) us = await startPetrel(topo.us, o.ours);
      bird = await startBird(topo.bird, o.bird);
      us ??= await startPetrel(topo.us, o.ours);
      await fn(us, bird);
    } catch (err) {
      const detail = [
        us ? `our status: ${JSON.stringify(await us.status().catch(() => undefined))}` : '',
        bird ? `BIRD: ${await birdProto(bird).catch((e) => String(e))}` : '',
        process.env.PETREL_IT_DEBUG && us ? us.daemon.output() : '',
      ];
      if (err instanceof Error) err.message += `\n${detail.filter(Boolean).join('\n')}`;
      throw err;
    } finally {
      await us?.stop().catch(() => us?.kill());
      await bird?.stop();
    }
  }

  test('without multihop: we never dial the peer and refuse its connections; status says why', {
    skip: needs('tshark'),
  }, async () => {
    let cap: Capture | undefined;
    try {
      cap = await startCapture(topo.us, 'u0');
      // We start first, so every connection BIRD makes reaches our listener (not a closed port).
      await withSession({ ours: ourConfig(), bird: birdConf({ neighbor: US }), usFirst: true }, async (us, bird) => {
        await waitFor(
          'lastError: not directly connected',
          async () => (await us.status()).peers[0]?.lastError === NOT_DIRECT,
          10_000,
          STATUS_POLL_MS,
        );
        // BIRD (multihop 2) dials us again and again; each connection is refused by the speaker.
        await waitFor(
          "two of BIRD's connections refused by us",
          () => us.daemon.output().split(REFUSED_LOG).length - 1 >= 2,
          20_000,
        );
        const st = (await us.status()).peers[0];
        assert.notEqual(st?.state, 'Established');
        assert.equal(st?.lastError, NOT_DIRECT);
        assert.equal(st?.messagesIn, 0, 'no BGP message was read from the peer');
        assert.doesNotMatch(await birdProto(bird), /Established/);
        assert.equal(await birdHas(bird, OUR4), false);
        assert.deepEqual(us.lines, [], 'nothing learned');
      });
      const syns = await synsIn(await cap.finish());
      assert.deepEqual(
        syns.filter((s) => s.startsWith(`${US} `) || s.startsWith(`${US_LO} `)),
        [],
        'we never opened a connection to the peer',
      );
      assert.ok(syns.includes(`${BIRD} -> ${US}:179`), `BIRD's SYNs are in the capture: ${syns.join(', ')}`);
    } finally {
      await cap?.stop();
    }
  });

  test('multihop 2: the session comes up through the router, routes go both ways, withdrawals propagate', async () => {
    await withSession({ ours: ourConfig({ multihop: 2 }), bird: birdConf({ neighbor: US }) }, async (us, bird) => {
      await established(us);
      assert.match(await birdProto(bird), /Established/);
      assert.equal((await us.status()).peers[0]?.localAddress, US);
      // Ours in BIRD: next hop our link address, resolved recursively through the router.
      await waitBird(bird, OUR4);
      await waitBird(bird, OUR4B);
      const all = await bird.birdc('show', 'route', 'all', 'for', OUR4, 'protocol', 'petrel');
      assert.match(all, /BGP\.next_hop: 10\.97\.1\.1\b/);
      assert.match(all, /BGP\.as_path: 65001\s/);
      assert.match(all, /via 10\.97\.2\.254 on b0/);
      // BIRD's in our stream.
      await us.waitRoute(THEIR4);
      assert.deepEqual(us.routes().get(THEIR4), [BIRD]);
      assert.deepEqual(us.lines.find((l) => l.prefix === THEIR4)?.asPath, [65002]);
      // Withdraw ours (SIGHUP reload without OUR4B), then BIRD's (static protocol disabled).
      const cfg = ourConfig({ multihop: 2 }, [OUR4]);
      writeFileSync(join(us.dir, 'bgp.json'), JSON.stringify({ status: { address: '127.0.0.1', port: 9179 }, ...cfg }));
      us.daemon.proc.kill('SIGHUP');
      await waitBird(bird, OUR4B, false, 10_000);
      assert.ok(await birdHas(bird, OUR4), 'the other prefix stays');
      await bird.birdc('disable', 's4');
      await us.waitRoute(THEIR4, false, 10_000);
      const st = (await us.status()).peers[0];
      assert.equal(st?.state, 'Established');
      assert.equal(st?.flaps, 0, 'withdrawn by UPDATEs, not by a session reset');
    });
  });

  test('multihop 2, we are passive: the connection BIRD makes is accepted', async () => {
    await withSession(
      { ours: ourConfig({ multihop: 2, passive: true }), bird: birdConf({ neighbor: US }), usFirst: true },
      async (us, bird) => {
        await established(us);
        assert.match(await birdProto(bird), /Established/);
        // BIRD's connection: our end is port 179.
        assert.match(await tcpEstablished(topo.us), /\b10\.97\.1\.1:179\s+10\.97\.2\.2:\d+/);
        await us.waitRoute(THEIR4);
        await waitBird(bird, OUR4);
        assert.ok(!us.daemon.output().includes(REFUSED_LOG), 'no connection refused');
      },
    );
  });

  test('localAddress 10.97.9.1: BIRD (passive) sees the session from it and our next hop is it', async () => {
    await withSession(
      { ours: ourConfig({ multihop: 2, localAddress: US_LO }), bird: birdConf({ neighbor: US_LO, passive: true }) },
      async (us, bird) => {
        await established(us);
        const proto = await birdProto(bird);
        assert.match(proto, /Established/);
        assert.match(proto, /Neighbor address:\s+10\.97\.9\.1\b/);
        // BIRD is passive: the connection is ours, from 10.97.9.1 to BIRD's port 179.
        assert.match(await tcpEstablished(topo.bird), /\b10\.97\.2\.2:179\s+10\.97\.9\.1:\d+/);
        assert.equal((await us.status()).peers[0]?.localAddress, US_LO);
        await waitBird(bird, OUR4);
        const all = await bird.birdc('show', 'route', 'all', 'for', OUR4, 'protocol', 'petrel');
        assert.match(all, /BGP\.next_hop: 10\.97\.9\.1\b/);
        assert.match(all, /via 10\.97\.2\.254 on b0/);
        await us.waitRoute(THEIR4);
        assert.deepEqual(us.routes().get(THEIR4), [BIRD]);
      },
    );
  });
});
