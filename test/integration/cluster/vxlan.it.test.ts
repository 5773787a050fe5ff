/**
 * Three nodes on one bridge plus one behind a router (another subnet), two pools: VXLAN Always and
 * VXLAN CrossSubnet. Route shape per mode, the petrel.vxlan device with its neighbour and FDB
 * entries, TCP in every direction per pool, VXLAN on the wire only where the mode says, and VXLAN
 * routes that do not depend on BGP (an agent with --networking-backend none).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLUSTER_BINS, type Cluster, type Pod, startCluster, UPLINK } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import { echoServer, nodeList, tcp, tcpMatrix, waitRoutes } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', CLUSTER_BINS);
const ALWAYS = '10.246.0.0/16';
const CROSS = '10.247.0.0/16';

interface LinkDetail {
  ifname: string;
  mtu: number;
  address: string;
  operstate: string;
  flags: string[];
  linkinfo?: { info_kind: string; info_data?: { id?: number; port?: number; local?: string } };
}

describe('cluster: 3 nodes + 1 behind a router, VXLAN Always and CrossSubnet', { skip }, () => {
  let c: Cluster;
  const always: Pod[] = [];
  const cross: Pod[] = [];
  before(async () => {
    c = await startCluster({
      nodes: 3,
      routerNodes: 1,
      pools: [
        { name: 'vx', cidr: ALWAYS, blockSize: 29, vxlanMode: 'Always' },
        { name: 'vxcs', cidr: CROSS, blockSize: 29, vxlanMode: 'CrossSubnet' },
      ],
    });
    for (const n of c.nodes) {
      const a = await c.addPod(n, `vx-${n.index}`, { pools: ['vx'] });
      const b = await c.addPod(n, `cs-${n.index}`, { pools: ['vxcs'] });
      await echoServer(c, a.netns, a.name);
      await echoServer(c, b.netns, b.name);
      always.push(a);
      cross.push(b);
    }
  });
  after(async () => {
    await c?.stop();
  });

  test('VXLAN Always: every other node block via its VTEP dev petrel.vxlan onlink', async () => {
    await waitRoutes(c, ALWAYS, 'VXLAN');
  });

  test('VXLAN CrossSubnet: direct on the same subnet, petrel.vxlan across the router', async () => {
    await waitRoutes(c, CROSS, 'VXLANCrossSubnet');
    // node-1 and node-4 are on different subnets: the VXLAN route; node-1 to node-2 direct.
    const infos = await nodeList(c);
    const b2 = infos.find((i) => i.name === 'node-2')?.blocks.find((b) => b.startsWith('10.247.'));
    const b4 = infos.find((i) => i.name === 'node-4')?.blocks.find((b) => b.startsWith('10.247.'));
    const r1 = await c.routes(1);
    assert.equal(r1.find((r) => r.dst === b2)?.dev, UPLINK);
    assert.equal(r1.find((r) => r.dst === b4)?.dev, 'petrel.vxlan');
  });

  test('petrel.vxlan: VNI 4096, port 4789, the node VTEP address, a neighbour and FDB entry per remote node', async () => {
    const infos = await nodeList(c);
    for (const n of c.nodes) {
      const me = infos.find((i) => i.name === n.name);
      assert.ok(me?.tunnelAddresses.vxlan && me.vxlanMac, `${n.name} record: ${JSON.stringify(me)}`);
      const [link] = JSON.parse(await n.ns.ip('-d', '-j', 'link', 'show', 'petrel.vxlan')) as LinkDetail[];
      assert.ok(link);
      assert.equal(link.linkinfo?.info_kind, 'vxlan');
      assert.equal(link.linkinfo?.info_data?.id, 4096);
      assert.equal(link.linkinfo?.info_data?.port, 4789);
      assert.equal(link.linkinfo?.info_data?.local, n.ip);
      assert.equal(link.address, me.vxlanMac.toLowerCase());
      assert.ok(link.flags.includes('UP'), `petrel.vxlan on ${n.name} is up`);
      assert.equal(link.mtu, 1450, 'uplink MTU 1500 minus 50');
      const addrs = JSON.parse(await n.ns.ip('-j', 'addr', 'show', 'dev', 'petrel.vxlan')) as {
        addr_info: { local: string }[];
      }[];
      assert.ok(addrs[0]?.addr_info.some((a) => a.local === me.tunnelAddresses.vxlan));
      const neigh = JSON.parse(await n.ns.ip('-j', 'neigh', 'show', 'dev', 'petrel.vxlan')) as {
        dst: string;
        lladdr: string;
        state: string[];
      }[];
      const fdb = JSON.parse(
        (await n.ns.exec('bridge', ['-j', 'fdb', 'show', 'dev', 'petrel.vxlan'])).stdout || '[]',
      ) as {
        mac: string;
        dst?: string;
      }[];
      for (const other of infos.filter((i) => i.name !== n.name)) {
        const peer = c.node(other.name);
        const ne = neigh.find((x) => x.dst === other.tunnelAddresses.vxlan);
        assert.equal(ne?.lladdr, other.vxlanMac?.toLowerCase(), `${n.name} neighbour for ${other.name}`);
        assert.ok(ne?.state.includes('PERMANENT'), `${n.name}: static neighbour ${JSON.stringify(ne)}`);
        const fe = fdb.find((x) => x.mac === other.vxlanMac?.toLowerCase());
        assert.equal(fe?.dst, peer.ip, `${n.name} FDB entry for ${other.name}: ${JSON.stringify(fdb)}`);
      }
    }
  });

  test('TCP pod <-> pod in every direction and node -> remote pod, VXLAN Always pool', async () => {
    await waitRoutes(c, ALWAYS, 'VXLAN');
    assert.equal(await tcpMatrix(always, c.nodes), 24);
  });

  test('TCP pod <-> pod in every direction and node -> remote pod, VXLAN CrossSubnet pool', async () => {
    await waitRoutes(c, CROSS, 'VXLANCrossSubnet');
    assert.equal(await tcpMatrix(cross, c.nodes), 24);
  });

  test('on the wire: CrossSubnet is plain IP on the same subnet and UDP 4789 across the router', async () => {
    // A pod pair on the bridge: the packets to the pod address leave node-1 unencapsulated.
    const cap = async (fn: () => Promise<void>) => {
      const d = c.spawn(c.node(1).ns, 'tcpdump', ['-l', '-n', '-i', UPLINK, 'udp port 4789 or tcp port 7000']);
      await waitFor('tcpdump listening', () => d.output().includes('listening on'), 10_000);
      await fn();
      await new Promise((r) => setTimeout(r, 500));
      await c.kill(d);
      return d.output();
    };
    const near = await cap(async () => {
      await tcp(cross[0]!.netns, cross[1]!.ip);
    });
    assert.match(
      near,
      new RegExp(`${cross[0]!.ip.replaceAll('.', '\\.')}\\.\\d+ > ${cross[1]!.ip.replaceAll('.', '\\.')}\\.7000`),
    );
    assert.doesNotMatch(near, /4789/);
    const far = await cap(async () => {
      await tcp(cross[0]!.netns, cross[3]!.ip);
    });
    assert.match(
      far,
      new RegExp(`${c.node(1).ip.replaceAll('.', '\\.')}\\.\\d+ > ${c.node(4).ip.replaceAll('.', '\\.')}\\.4789`),
    );
  });

  test('VXLAN routes come from etcd: an agent without BGP (--networking-backend none) keeps them and learns new blocks', async () => {
    const n1 = c.node(1);
    await n1.stopAgent();
    await n1.startAgent(['--networking-backend', 'none']);
    // A new block on node-3 (the /29 holds 8 addresses, its tunnel address is one of them).
    const blocks = async () =>
      (await nodeList(c)).find((i) => i.name === 'node-3')?.blocks.filter((b) => b.startsWith('10.246.')) ?? [];
    const had = (await blocks()).length;
    let extra: Pod | undefined;
    for (let i = 0; i < 10 && (await blocks()).length === had; i++)
      extra = await c.addPod(3, `vx-extra-${i}`, { pools: ['vx'] });
    assert.equal((await blocks()).length, had + 1);
    await waitRoutes(c, ALWAYS, 'VXLAN');
    await waitRoutes(c, CROSS, 'VXLANCrossSubnet');
    assert.ok(extra);
    await echoServer(c, extra.netns, extra.name);
    assert.equal(await tcp(always[0]!.netns, extra.ip), `${extra.name} ${always[0]!.ip}`);
  });
});
