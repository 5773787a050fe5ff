/**
 * Faults on a 3-node cluster (Never mode: the routes come from BGP, so a dropped session is what
 * could lose packets): agent kill -9 and restart under a TCP probe loop with zero failures, and an
 * etcd restart (routes and traffic stay while etcd is away; the agents recover when it returns).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CLUSTER_BINS, type Cluster, type Pod, startCluster } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { echoServer, probeLoop, tcp, waitReady, waitRoutes } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', CLUSTER_BINS);
const POOL = '10.244.0.0/16';

describe('cluster faults: agent kill -9, etcd restart', { skip }, () => {
  let c: Cluster;
  const pods: Pod[] = [];
  before(async () => {
    c = await startCluster({ nodes: 3, pools: [{ name: 'default', cidr: POOL, blockSize: 26 }] });
    for (const n of c.nodes) {
      const p = await c.addPod(n, `app-${n.index}`);
      await echoServer(c, p.netns, p.name);
      pods.push(p);
    }
    await waitRoutes(c, POOL, 'Never');
    for (const n of c.nodes) await waitReady(c, n);
  });
  after(async () => {
    await c?.stop();
  });

  for (const victim of [1, 2]) {
    test(`kill -9 of node-${victim}'s agent and a restart lose no pod-to-pod connection`, async (t) => {
      const probes = [
        await probeLoop(c, pods[0]!.netns, pods[1]!.ip),
        await probeLoop(c, pods[1]!.netns, pods[0]!.ip),
        await probeLoop(c, pods[2]!.netns, pods[victim - 1]!.ip),
      ];
      await delay(1000);
      const n = c.node(victim);
      const before = await c.routes(n);
      await n.killAgent();
      // Down for a while (peers see the session drop), routes stay in the kernel meanwhile.
      await delay(3000);
      assert.deepEqual(
        (await c.routes(n)).map((r) => r.dst).sort(),
        before.map((r) => r.dst).sort(),
        'routes stay while the agent is dead',
      );
      await n.startAgent();
      await waitReady(c, n);
      await waitRoutes(c, POOL, 'Never');
      await delay(2000);
      for (const p of probes) {
        const r = await p.finish();
        t.diagnostic(`probe: ${r.ok} ok, ${r.fail} failed`);
        assert.ok(r.ok > 20, `the probe ran (${r.ok} ok)`);
        assert.equal(r.fail, 0, `failed connections: ${r.errors.join(', ')}\n${c.logs(20)}`);
      }
    });
  }

  test('etcd restart: routes and traffic stay while it is away, the agents recover when it is back', async (t) => {
    const probe = await probeLoop(c, pods[0]!.netns, pods[2]!.ip);
    const before = await Promise.all(c.nodes.map((n) => c.routes(n)));
    await c.etcd.stop();
    t.diagnostic(`etcd stopped at ${new Date().toISOString()}`);
    await delay(6000);
    const during = await Promise.all(c.nodes.map((n) => c.routes(n)));
    assert.deepEqual(during, before, 'kernel routes unchanged while etcd is down');
    assert.equal(await tcp(pods[1]!.netns, pods[0]!.ip), `${pods[0]!.name} ${pods[1]!.ip}`);
    await c.etcd.restart();
    t.diagnostic(`etcd back at ${new Date().toISOString()}`);
    for (const n of c.nodes) await waitReady(c, n, 60_000);
    // The sync resumed: a pool made now is used, and its new block routed everywhere.
    await c.petrelctlOk('ipam', 'pool', 'add', 'after', '--cidr', '10.250.0.0/16');
    const p = await c.addPod(2, 'after-1', { pools: ['after'] });
    await echoServer(c, p.netns, p.name);
    await waitRoutes(c, '10.250.0.0/16', 'Never', 30_000);
    assert.equal(await tcp(pods[0]!.netns, p.ip), `${p.name} ${pods[0]!.ip}`);
    const r = await probe.finish();
    t.diagnostic(`probe: ${r.ok} ok, ${r.fail} failed`);
    assert.equal(r.fail, 0, `failed connections: ${r.errors.join(', ')}`);
  });
});
