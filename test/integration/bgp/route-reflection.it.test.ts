/**
 * Route reflection (RFC 4456) with real routers on one LAN (10.99.0.0/24 through a bridge):
 * two of our speakers as clients of a BIRD 2 route reflector, and BIRD + GoBGP as clients of ours.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type BirdPeer, type GobgpPeer, startBird, startGobgp } from '../../helpers/bgp-peers.js';
import { needs } from '../../helpers/needs.js';
import type { Netns } from '../../helpers/netns.js';
import { waitFor } from '../../helpers/process.js';
import { bird2Config, gobgpConfigFor, lan, type Petrel, startPetrel } from './lib.js';

const client = (routerId: string, rr: string, announce: string[]) => ({
  asn: 64512,
  routerId,
  listen: { address: routerId, port: 179 },
  nextHop: { ipv6: `fd99::${routerId.split('.')[3]}` },
  peers: [{ address: rr, asn: 64512, connectRetrySec: 1, idleHoldSec: 1 }],
  announce,
});

describe('two Petrel speakers as clients of a BIRD 2 route reflector', {
  skip: needs('root', 'netns', 'bird2'),
}, () => {
  let net: { nodes: Netns[]; destroy(): Promise<void> };
  let rr: BirdPeer;
  let a: Petrel;
  let b: Petrel;
  before(async () => {
    net = await lan(3);
    const [n0, n1, n2] = net.nodes as [Netns, Netns, Netns];
    const peer = (addr: string, name: string) => ({
      name,
      routerId: '10.99.0.1',
      localAddress: '10.99.0.1',
      localAs: 64512,
      neighbor: addr,
      neighborAs: 64512,
      extra: 'rr client; rr cluster id 1.1.1.1;',
    });
    rr = await startBird(n0, bird2Config(peer('10.99.0.2', 'a'), [peer('10.99.0.3', 'b')]));
    a = await startPetrel(n1, client('10.99.0.2', '10.99.0.1', ['10.244.1.0/26', 'fd00:10:244:1::/122']));
    b = await startPetrel(n2, client('10.99.0.3', '10.99.0.1', ['10.244.2.0/26']));
  });
  after(async () => {
    await a?.stop().catch(() => {});
    await b?.stop().catch(() => {});
    await rr?.stop();
    await net?.destroy();
  });

  test("each client learns the other's routes with the originating client as next hop", async () => {
    await b.waitRoute('10.244.1.0/26');
    await b.waitRoute('fd00:10:244:1::/122');
    await a.waitRoute('10.244.2.0/26');
    assert.deepEqual(b.routes().get('10.244.1.0/26'), ['10.99.0.2']);
    assert.deepEqual(b.routes().get('fd00:10:244:1::/122'), ['fd99::2']);
    assert.deepEqual(a.routes().get('10.244.2.0/26'), ['10.99.0.3']);
    assert.equal(a.routes().has('10.244.1.0/26'), false, 'a client does not get its own route back');
  });

  test('a withdraw is reflected', async () => {
    await a.stop();
    await b.waitRoute('10.244.1.0/26', false, 10_000);
  });
});

describe('BIRD 2 and GoBGP as clients of our route reflector', {
  skip: needs('root', 'netns', 'bird2', 'gobgpd'),
}, () => {
  let net: { nodes: Netns[]; destroy(): Promise<void> };
  let us: Petrel;
  let bird: BirdPeer;
  let gobgp: GobgpPeer;
  before(async () => {
    net = await lan(3);
    const [n0, n1, n2] = net.nodes as [Netns, Netns, Netns];
    us = await startPetrel(n0, {
      asn: 64512,
      routerId: '10.99.0.1',
      listen: { address: '10.99.0.1', port: 179 },
      routeReflector: { clusterId: '1.1.1.1' },
      peers: [
        { address: '10.99.0.2', asn: 64512, routeReflectorClient: true, connectRetrySec: 1, idleHoldSec: 1 },
        { address: '10.99.0.3', asn: 64512, routeReflectorClient: true, connectRetrySec: 1, idleHoldSec: 1 },
      ],
      announce: ['10.244.9.0/26'],
    });
    bird = await startBird(
      n1,
      bird2Config({
        routerId: '10.99.0.2',
        localAddress: '10.99.0.2',
        localAs: 64512,
        neighbor: '10.99.0.1',
        neighborAs: 64512,
        static4: ['10.55.5.0/24'],
      }),
    );
    gobgp = await startGobgp(
      n2,
      gobgpConfigFor({ routerId: '10.99.0.3', asn: 64512, neighbor: '10.99.0.1', neighborAs: 64512 }),
    );
    await gobgp.gobgp('global', 'rib', '-a', 'ipv4', 'add', '10.55.6.0/24', 'nexthop', '10.99.0.3');
  });
  after(async () => {
    await us?.stop().catch(() => {});
    await bird?.stop();
    await gobgp?.stop();
    await net?.destroy();
  });

  test("BIRD's route reaches GoBGP with ORIGINATOR_ID and our cluster ID", async () => {
    await waitFor(
      '10.55.5.0/24 in GoBGP',
      async () => (await gobgp.gobgp('global', 'rib', '-a', 'ipv4')).includes('10.55.5.0/24'),
      20_000,
    );
    const detail = await gobgp.gobgp('global', 'rib', '-a', 'ipv4', '10.55.5.0/24', '-j');
    if (process.env.PETREL_IT_DEBUG) process.stderr.write(detail);
    assert.match(detail, /"type":9,"value":"10\.99\.0\.2"/, 'ORIGINATOR_ID is the BIRD client');
    assert.match(detail, /"type":10,"value":\["1\.1\.1\.1"\]/, 'CLUSTER_LIST is our cluster ID');
  });

  test("GoBGP's route reaches BIRD with the next hop unchanged and a CLUSTER_LIST", async () => {
    await waitFor(
      '10.55.6.0/24 in BIRD',
      async () => (await bird.birdc('show', 'route', 'protocol', 'petrel')).includes('10.55.6.0/24'),
      20_000,
    );
    const all = await bird.birdc('show', 'route', 'all', 'for', '10.55.6.0/24');
    assert.match(all, /BGP.next_hop: 10\.99\.0\.3/);
    assert.match(all, /BGP.originator_id: 10\.99\.0\.3/);
    assert.match(all, /BGP.cluster_list: 1\.1\.1\.1/);
  });

  test('both clients see our own route; the stream shows both client routes', async () => {
    await us.waitRoute('10.55.5.0/24');
    await us.waitRoute('10.55.6.0/24');
    assert.match(await bird.birdc('show', 'route', 'all'), /10\.244\.9\.0\/26/);
    assert.match(await gobgp.gobgp('global', 'rib', '-a', 'ipv4'), /10\.244\.9\.0\/26/);
  });
});
