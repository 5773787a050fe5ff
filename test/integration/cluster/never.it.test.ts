/**
 * Three nodes on one bridge, a pool in Never mode (routes learned over the agents' BGP mesh):
 * route shape, TCP in every direction, a second block, a borrowed /32, natOutgoing, drift repair,
 * `petrelctl node rm` of a stopped node.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CLUSTER_BINS,
  type Cluster,
  OUTSIDE_IP,
  type Pod,
  SEA_DIR,
  startCluster,
  UPLINK,
} from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import { agentStatus, echoServer, nodeList, tcp, tcpMatrix, waitRoutes } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', CLUSTER_BINS);
const POOL = '10.244.0.0/16';
const TINY = '10.245.0.0/29';

describe('cluster: 3 nodes, pool in Never mode', { skip }, () => {
  let c: Cluster;
  const pods: Pod[] = [];
  before(async () => {
    c = await startCluster({
      nodes: 3,
      leaseTtlSec: 6,
      pools: [
        { name: 'default', cidr: POOL, blockSize: 29, natOutgoing: true },
        // One block only: the second node to ask borrows from the first node's block.
        { name: 'tiny', cidr: TINY, blockSize: 29 },
      ],
    });
    for (const n of c.nodes) {
      const p = await c.addPod(n, `web-${n.index}`, { pools: ['default'] });
      await echoServer(c, p.netns, p.name);
      pods.push(p);
    }
  });
  after(async () => {
    await c?.stop();
  });

  test('each node holds a blackhole for its block and `BLOCK via NODEIP dev eth0` for every other', async () => {
    const infos = await waitRoutes(c, POOL, 'Never');
    for (const n of c.nodes) {
      const mine = infos.find((i) => i.name === n.name);
      assert.equal(mine?.blocks.length, 1, `${n.name} blocks: ${JSON.stringify(mine)}`);
      const routes = await c.routes(n);
      // No tunnel device or encapsulated route in Never mode.
      assert.ok(!routes.some((r) => r.dev === 'petrel.vxlan' || r.dev === 'tunl0'), JSON.stringify(routes));
    }
  });

  test('the agents write their routes through petrel-netlink when it is packaged (--route-writer auto)', async () => {
    const want = existsSync(join(SEA_DIR, 'petrel-netlink')) ? 'netlink' : 'iproute2';
    for (const n of c.nodes) {
      const st = (await agentStatus(c, n)) as { dataplane?: { routeWriter?: string } };
      assert.equal(st.dataplane?.routeWriter, want, n.name);
    }
  });

  test('TCP pod <-> pod across nodes in every direction, and node -> remote pod', async () => {
    await waitRoutes(c, POOL, 'Never');
    const n = await tcpMatrix(pods, c.nodes);
    assert.equal(n, 12);
  });

  test('a second block claimed after the first fills is routed', async () => {
    const node1 = c.node(1);
    const first = (await nodeList(c)).find((i) => i.name === node1.name)?.blocks ?? [];
    assert.equal(first.length, 1);
    let extra: Pod | undefined;
    // A /29 holds 8 addresses; web-1 has one. Keep adding until node-1 owns a second block.
    for (let i = 0; i < 10; i++) {
      extra = await c.addPod(node1, `fill-${i}`, { pools: ['default'] });
      const now = (await nodeList(c)).find((x) => x.name === node1.name)?.blocks ?? [];
      if (now.length === 2) break;
    }
    const blocks = (await nodeList(c)).find((x) => x.name === node1.name)?.blocks ?? [];
    assert.equal(blocks.length, 2, `node-1 blocks ${blocks.join(',')}`);
    assert.ok(extra && !first.some((b) => b.split('/')[0] === extra?.ip), `${extra?.ip} should be in the new block`);
    await waitRoutes(c, POOL, 'Never');
    await echoServer(c, extra.netns, extra.name);
    assert.equal(await tcp(pods[1]!.netns, extra.ip), `${extra.name} ${pods[1]!.ip}`);
    assert.equal(await tcp(pods[2]!.netns, extra.ip), `${extra.name} ${pods[2]!.ip}`);
  });

  test('a borrowed address gets a /32 towards the borrowing node on every other node', async () => {
    const owner = await c.addPod(1, 'tiny-1', { pools: ['tiny'] });
    const borrower = await c.addPod(2, 'tiny-2', { pools: ['tiny'] });
    const infos = await nodeList(c);
    assert.deepEqual(
      infos.find((i) => i.name === 'node-1')?.blocks.filter((b) => b.startsWith('10.245.')),
      [TINY],
    );
    assert.deepEqual(
      infos.find((i) => i.name === 'node-2')?.blocks.filter((b) => b.startsWith('10.245.')),
      [],
    );
    for (const n of [c.node(1), c.node(3)]) {
      await waitFor(
        `${n.name}: ${borrower.ip}/32 via node-2`,
        async () => {
          const r = (await c.routes(n)).find((x) => x.dst === borrower.ip);
          return r?.gateway === c.node(2).ip && r.dev === UPLINK;
        },
        15_000,
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(await c.routes(n))}\n${c.logs(20)}`);
      });
    }
    await echoServer(c, borrower.netns, borrower.name);
    await echoServer(c, owner.netns, owner.name);
    assert.equal(await tcp(owner.netns, borrower.ip), `${borrower.name} ${owner.ip}`);
    assert.equal(await tcp(pods[2]!.netns, borrower.ip), `${borrower.name} ${pods[2]!.ip}`);
    assert.equal(await tcp(borrower.netns, owner.ip), `${owner.name} ${borrower.ip}`);
  });

  test('natOutgoing: a pod reaching outside every pool is seen with its node address', async () => {
    // The fabric namespace stands for the outside world; it has no route to any pod.
    await echoServer(c, c.fabric, 'outside', 7001, OUTSIDE_IP);
    for (const p of pods) assert.equal(await tcp(p.netns, OUTSIDE_IP, 7001), `outside ${p.node.ip}`);
    const nft = await c.exec(1, 'nft', ['list', 'table', 'ip', 'petrel']);
    assert.equal(nft.code, 0, nft.stderr);
    assert.match(nft.stdout, /10\.244\.0\.0\/16/);
    assert.doesNotMatch(nft.stdout, /10\.245\.0\.0\/29/, 'the tiny pool has no natOutgoing');
  });

  test('a route deleted by hand comes back within about a second', async (t) => {
    await waitRoutes(c, POOL, 'Never');
    const n1 = c.node(1);
    const route = (await c.routes(n1)).find((r) => r.gateway === c.node(2).ip);
    assert.ok(route, 'node-1 has a route to node-2');
    await n1.ns.ip('route', 'del', route.dst, 'proto', '80');
    const t0 = performance.now();
    await waitFor(
      `${route.dst} back on node-1`,
      async () => (await c.routes(n1)).some((r) => r.dst === route.dst),
      5000,
      20,
    );
    const ms = performance.now() - t0;
    t.diagnostic(`route repaired after ${ms.toFixed(0)} ms`);
    assert.ok(ms < 1500, `repaired after ${ms.toFixed(0)} ms`);
  });

  test('petrelctl node rm of a stopped node releases its blocks and its routes go', async () => {
    const n3 = c.node(3);
    const before3 = (await nodeList(c)).find((i) => i.name === n3.name);
    assert.ok(before3 && before3.blocks.length > 0);
    await pods[2]!.remove();
    await n3.stopAgent();
    // SIGTERM leaves the lease to expire (graceful restart): refused until it does.
    const early = await c.petrelctl('node', 'rm', n3.name);
    if (early.code === 0) {
      assert.fail(`node rm of a node whose lease is alive succeeded: ${early.stdout}`);
    }
    await waitFor(
      `${n3.name} lease gone`,
      async () => !(await nodeList(c)).find((i) => i.name === n3.name)?.alive,
      20_000,
      500,
    );
    await c.petrelctlOk('node', 'rm', n3.name);
    const after = await nodeList(c);
    assert.equal(
      after.find((i) => i.name === n3.name),
      undefined,
    );
    const show = JSON.parse(await c.petrelctlOk('ipam', 'show', '--json')) as {
      pools: { blocks: { cidr: string; affinity?: string | null }[] }[];
    };
    const left = show.pools.flatMap((p) => p.blocks).filter((b) => before3.blocks.includes(b.cidr));
    assert.deepEqual(left, [], 'node-3 blocks released');
    for (const n of [c.node(1), c.node(2)]) {
      await waitFor(
        `${n.name} drops routes to node-3`,
        async () => !(await c.routes(n)).some((r) => before3.blocks.includes(r.dst)),
        15_000,
        200,
      );
    }
  });
});
