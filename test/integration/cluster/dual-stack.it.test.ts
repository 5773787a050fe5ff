/**
 * Dual stack on three nodes: every node has 10.99.0.x and fd99::x; an IPv4 and an IPv6 pool in
 * Never mode (IPv6 routes learned over MP-BGP, `via NODE6 dev eth0`), and an IPv6 pool in VXLAN
 * mode (petrel.vxlan6, `via VTEP6 dev petrel.vxlan6 onlink`). TCP over IPv6 in every direction.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLUSTER_BINS, type Cluster, type Pod, startCluster } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { echoServer, nodeList, tcpMatrix, waitRoutes } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', CLUSTER_BINS);
const V4 = '10.244.0.0/16';
const V6 = 'fd00:10:244::/48';
const V6VX = 'fd00:10:245::/48';

describe('cluster: dual stack, IPv6 direct and VXLAN', { skip }, () => {
  let c: Cluster;
  const dual: Pod[] = [];
  const vx6: Pod[] = [];
  before(async () => {
    c = await startCluster({
      nodes: 3,
      ipv6: true,
      pools: [
        { name: 'v4', cidr: V4 },
        { name: 'v6', cidr: V6 },
        { name: 'v6vx', cidr: V6VX, vxlanMode: 'Always' },
      ],
    });
    for (const n of c.nodes) {
      const d = await c.addPod(n, `dual-${n.index}`, { pools: ['v4', 'v6'], assignIpv4: true, assignIpv6: true });
      assert.ok(d.ip && d.ip6, `dual-stack pod got ${d.ip} and ${d.ip6}`);
      const v = await c.addPod(n, `v6vx-${n.index}`, { pools: ['v6vx'], assignIpv4: false, assignIpv6: true });
      assert.ok(v.ip6 && !v.ip);
      await echoServer(c, d.netns, d.name);
      await echoServer(c, v.netns, v.name);
      dual.push(d);
      vx6.push(v);
    }
  });
  after(async () => {
    await c?.stop();
  });

  test('node records carry both addresses', async () => {
    const infos = await nodeList(c);
    for (const n of c.nodes) {
      const i = infos.find((x) => x.name === n.name);
      assert.equal(i?.ipv4, n.cidr);
      assert.equal(i?.ipv6, n.cidr6);
    }
  });

  test('IPv4 and IPv6 Never pools: BLOCK via the node address of the family dev eth0', async () => {
    await waitRoutes(c, V4, 'Never');
    await waitRoutes(c, V6, 'Never');
  });

  test('IPv6 VXLAN pool: BLOCK via VTEP6 dev petrel.vxlan6 onlink', async () => {
    await waitRoutes(c, V6VX, 'VXLAN');
    const [link] = JSON.parse(await c.node(1).ns.ip('-d', '-j', 'link', 'show', 'petrel.vxlan6')) as {
      mtu: number;
      linkinfo?: { info_data?: { id?: number; port?: number; local6?: string } };
    }[];
    assert.equal(link?.linkinfo?.info_data?.id, 4096);
    assert.equal(link?.linkinfo?.info_data?.local6, c.node(1).ip6);
    assert.equal(link?.mtu, 1430, 'uplink MTU 1500 minus 70 (VXLAN over IPv6)');
  });

  test('TCP over IPv4 and IPv6 between dual-stack pods in every direction, and node -> remote pod', async () => {
    await waitRoutes(c, V4, 'Never');
    await waitRoutes(c, V6, 'Never');
    assert.equal(await tcpMatrix(dual, c.nodes, 4), 12);
    assert.equal(await tcpMatrix(dual, c.nodes, 6), 12);
  });

  test('TCP over IPv6 VXLAN in every direction, and node -> remote pod', async () => {
    await waitRoutes(c, V6VX, 'VXLAN');
    assert.equal(await tcpMatrix(vx6, c.nodes, 6), 12);
  });
});
