/**
 * BGP around a 3-node cluster (Never mode): BIRD 2 and GoBGP on the fabric as external peers
 * (`petrelctl bgp peer add`) receive every node's blocks with that node as next hop, and what they
 * send is not put in the nodes' kernels; then, at run time and without restarting an agent, the
 * route-reflector topology: the mesh off, node-1 a reflector (--route-reflector-cluster-id), every
 * node peering with it through `bgp peer add --node-selector --peer-selector`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type BirdPeer,
  birdConfig,
  type GobgpPeer,
  gobgpConfig,
  startBird,
  startGobgp,
} from '../../helpers/bgp-peers.js';
import { CLUSTER_BINS, type Cluster, type Pod, startCluster } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import { agentStatus, echoServer, nodeList, tcpMatrix, waitRoutes } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', 'bird2', 'gobgpd', CLUSTER_BINS);
const POOL = '10.244.0.0/16';
const BIRD_AS = 65001;
const GOBGP_AS = 65002;
/** What BIRD announces to the nodes: outside every pool, so no node may program it. */
const FOREIGN = '10.200.0.0/24';

describe('cluster BGP: external peers (BIRD 2, GoBGP), route reflector with the mesh off', { skip }, () => {
  let c: Cluster;
  let bird: BirdPeer | undefined;
  let gobgp: GobgpPeer | undefined;
  const pods: Pod[] = [];
  before(async () => {
    c = await startCluster({
      nodes: 3,
      pools: [{ name: 'default', cidr: POOL, blockSize: 26 }],
      agentArgs: (n) => (n.index === 1 ? ['--labels', 'rr=true', '--route-reflector-cluster-id', '224.0.0.1'] : []),
    });
    for (const n of c.nodes) {
      const p = await c.addPod(n, `bgp-${n.index}`);
      await echoServer(c, p.netns, p.name);
      pods.push(p);
    }
    const birdHost = await c.addHost('bird', 100);
    bird = await startBird(
      birdHost,
      birdConfig({
        routerId: birdHost.ip,
        static4: [FOREIGN],
        neighbors: c.nodes.map((n) => ({
          name: `node${n.index}`,
          localAddress: birdHost.ip,
          localAs: BIRD_AS,
          address: n.ip,
          as: 64512,
        })),
      }),
    );
    const gobgpHost = await c.addHost('gobgp', 101);
    gobgp = await startGobgp(
      gobgpHost,
      gobgpConfig({
        routerId: gobgpHost.ip,
        as: GOBGP_AS,
        neighbors: c.nodes.map((n) => ({ address: n.ip, as: 64512, families: ['ipv4-unicast'] })),
      }),
    );
    await c.petrelctlOk('bgp', 'peer', 'add', 'tor-bird', '--peer-ip', birdHost.ip, '--as', String(BIRD_AS));
    await c.petrelctlOk('bgp', 'peer', 'add', 'tor-gobgp', '--peer-ip', gobgpHost.ip, '--as', String(GOBGP_AS));
  });
  after(async () => {
    await bird?.stop();
    await gobgp?.stop();
    await c?.stop();
  });

  test('BIRD 2 receives every node block from that node, next hop the node address', async () => {
    const infos = await waitRoutes(c, POOL, 'Never');
    for (const n of c.nodes) {
      const blocks = infos.find((i) => i.name === n.name)?.blocks ?? [];
      assert.ok(blocks.length > 0);
      for (const b of blocks) {
        await waitFor(
          `BIRD has ${b} from ${n.name} via ${n.ip}`,
          async () => {
            const out = await bird!.birdc('show', 'route', b, 'protocol', `node${n.index}`);
            return out.includes(b) && out.includes(`via ${n.ip}`);
          },
          20_000,
          250,
        ).catch(async (err: Error) => {
          throw new Error(
            `${err.message}\n${await bird!.birdc('show', 'route')}\n${await bird!.birdc('show', 'protocols')}`,
          );
        });
      }
    }
  });

  test('GoBGP receives every node block from that node, next hop the node address', async () => {
    const infos = await nodeList(c);
    for (const n of c.nodes) {
      for (const b of infos.find((i) => i.name === n.name)?.blocks ?? []) {
        await waitFor(
          `GoBGP has ${b} from ${n.name} via ${n.ip}`,
          async () => {
            const out = await gobgp!.gobgp('neighbor', n.ip, 'adj-in', '-a', 'ipv4');
            return out.split('\n').some((l) => l.includes(b) && l.includes(n.ip));
          },
          20_000,
          250,
        ).catch(async (err: Error) => {
          throw new Error(
            `${err.message}\n${await gobgp!.gobgp('global', 'rib', '-a', 'ipv4')}\n${await gobgp!.gobgp('neighbor')}`,
          );
        });
      }
    }
  });

  test('the sessions to the external peers show as global peers, and their routes stay out of the kernel', async () => {
    for (const n of c.nodes) {
      const st = await agentStatus(c, n);
      for (const ip of ['10.99.0.100', '10.99.0.101']) {
        const p = st.peers.find((x) => x.address === ip);
        assert.equal(p?.state, 'Established', `${n.name} -> ${ip}: ${JSON.stringify(st.peers)}`);
        assert.match(p.type, /global/);
      }
    }
    assert.match(await bird!.birdc('show', 'route', FOREIGN), /10\.200\.0\.0\/24/);
    for (const n of c.nodes) {
      const all = JSON.parse(await n.ns.ip('-j', 'route', 'show')) as { dst: string }[];
      assert.ok(!all.some((r) => r.dst === FOREIGN), `${n.name} must not program ${FOREIGN}`);
    }
  });

  test('route reflector: mesh off at run time, every node peers with node-1 only, routes and TCP stay right', async () => {
    await c.petrelctlOk('bgp', 'peer', 'add', 'to-rr', '--node-selector', 'all()', '--peer-selector', "rr == 'true'");
    await c.petrelctlOk('bgp', 'config', 'set', '--node-mesh', 'off');
    const rr = c.node(1);
    let last = '';
    await waitFor(
      'the route-reflector topology',
      async () => {
        const sts = await Promise.all(c.nodes.map((n) => agentStatus(c, n)));
        last = JSON.stringify(sts.map((s) => s.peers));
        const nodePeers = (i: number) =>
          sts[i]!.peers.filter((p) => p.address.startsWith('10.99.0.1') && p.address.length === 10);
        // node-1 reflects to node-2 and node-3; node-2 and node-3 peer with node-1 only.
        const ok1 = ['10.99.0.12', '10.99.0.13'].every((a) =>
          nodePeers(0).some((p) => p.address === a && p.state === 'Established'),
        );
        const ok2 =
          nodePeers(1).length === 1 && nodePeers(1)[0]?.address === rr.ip && nodePeers(1)[0]?.state === 'Established';
        const ok3 =
          nodePeers(2).length === 1 && nodePeers(2)[0]?.address === rr.ip && nodePeers(2)[0]?.state === 'Established';
        return ok1 && ok2 && ok3 && !/mesh/.test(JSON.stringify(nodePeers(1)));
      },
      30_000,
      500,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${last}\n${c.logs(20)}`);
    });
    const st2 = await agentStatus(c, c.node(2));
    assert.match(st2.peers.find((p) => p.address === rr.ip)?.type ?? '', /route reflector|node-specific|global/);
    // node-2 learns node-3's block through the reflector with node-3 as next hop (not the reflector).
    await waitRoutes(c, POOL, 'Never', 30_000);
    assert.equal(await tcpMatrix(pods, c.nodes), 12);
  });
});
