/**
 * Stopping an agent (Never mode, so the routes come from BGP and a session's end is what could
 * take them away):
 *  - SIGTERM: the agent exits 0 within 10 s and leaves its kernel routes; it closes its sessions
 *    without a NOTIFICATION, so the other nodes keep its block (graceful restart, stale routes) and
 *    pod traffic to it keeps flowing while it is down and after it is back.
 *  - Stopped for good: its routes leave the other nodes once its lease has expired and the
 *    graceful-restart time has passed; `petrelctl node rm` then releases its blocks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CLUSTER_BINS, type Cluster, type Pod, startCluster } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import { echoServer, nodeList, probeLoop, tcp, waitReady, waitRoutes } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', CLUSTER_BINS);
const POOL = '10.244.0.0/16';
const LEASE_TTL = 10;
const GR_TIME = 20;

describe('cluster shutdown: SIGTERM keeps routes (graceful restart), a node gone for good loses them', { skip }, () => {
  let c: Cluster;
  const pods: Pod[] = [];
  before(async () => {
    c = await startCluster({
      nodes: 3,
      pools: [{ name: 'default', cidr: POOL, blockSize: 26 }],
      setup: [['bgp', 'config', 'set', '--graceful-restart-time', String(GR_TIME)]],
      leaseTtlSec: LEASE_TTL,
    });
    for (const n of c.nodes) {
      const p = await c.addPod(n, `svc-${n.index}`);
      await echoServer(c, p.netns, p.name);
      pods.push(p);
    }
    await waitRoutes(c, POOL, 'Never');
    for (const n of c.nodes) await waitReady(c, n);
  });
  after(async () => {
    await c?.stop();
  });

  const blockOf = async (node: string) => (await nodeList(c)).find((n) => n.name === node)?.blocks ?? [];
  const hasRoute = async (on: number, dst: string) => (await c.routes(on)).some((r) => r.dst === dst);

  test('SIGTERM: exit 0 within 10 s, routes stay everywhere, traffic flows while down and after restart', async (t) => {
    const n2 = c.node(2);
    const [block] = await blockOf(n2.name);
    assert.ok(block, 'node-2 has a block');
    const probe = await probeLoop(c, pods[0]!.netns, pods[1]!.ip);
    await delay(500);
    const own = await c.routes(n2);
    const agent = n2.agent!;
    const t0 = performance.now();
    await n2.stopAgent();
    const ms = performance.now() - t0;
    t.diagnostic(`agent stopped in ${ms.toFixed(0)} ms, exit ${agent.proc.exitCode}`);
    assert.equal(agent.proc.exitCode, 0, `exit code 0\n${n2.log().slice(-2000)}`);
    assert.ok(ms < 10_000, `stopped in ${ms} ms`);
    assert.deepEqual(
      (await c.routes(n2)).map((r) => r.dst).sort(),
      own.map((r) => r.dst).sort(),
      'the stopped node keeps its kernel routes',
    );
    // Down for less than the lease TTL and the graceful-restart time: node-1 keeps the (stale) route.
    for (let i = 0; i < 4; i++) {
      await delay(1000);
      assert.ok(await hasRoute(1, block), `node-1 keeps ${block} while node-2 restarts (${i + 1} s)`);
    }
    await n2.startAgent();
    await waitReady(c, n2);
    await delay(1000);
    assert.ok(await hasRoute(1, block), 'and after the restart');
    const r = await probe.finish();
    t.diagnostic(`probe: ${r.ok} ok, ${r.fail} failed`);
    assert.ok(r.ok > 20, `the probe ran (${r.ok})`);
    assert.equal(r.fail, 0, `failed connections: ${r.errors.join(', ')}\n${c.logs(20)}`);
  });

  test('stopped for good: its routes leave the others after lease + restart time; node rm frees its blocks', async () => {
    const n3 = c.node(3);
    const blocks = await blockOf(n3.name);
    assert.ok(blocks.length > 0);
    await n3.stopAgent();
    // Right after the stop the route is still there (graceful restart).
    assert.ok(await hasRoute(1, blocks[0]!));
    await waitFor(
      `node-1 and node-2 drop ${blocks.join(', ')}`,
      async () => {
        for (const on of [1, 2]) for (const b of blocks) if (await hasRoute(on, b)) return false;
        return true;
      },
      (LEASE_TTL + GR_TIME) * 1000 + 30_000,
      500,
    );
    assert.equal((await nodeList(c)).find((n) => n.name === n3.name)?.alive, false);
    // The others still reach each other.
    assert.equal(await tcp(pods[0]!.netns, pods[1]!.ip), `${pods[1]!.name} ${pods[0]!.ip}`);
    // node rm of the stopped node: its blocks and addresses are released.
    await c.petrelctlOk('node', 'rm', n3.name);
    assert.equal(
      (await nodeList(c)).find((n) => n.name === n3.name),
      undefined,
      'the node record is gone',
    );
    const show = JSON.parse(await c.petrelctlOk('ipam', 'show', '--json')) as {
      pools: { blocks: { cidr: string; affinity?: string | null }[] }[];
    };
    const left = show.pools.flatMap((p) => p.blocks).filter((b) => blocks.includes(b.cidr));
    assert.deepEqual(left, [], 'node-3 blocks released');
  });
});
