/**
 * Agent start-up faults on a 2-node cluster:
 *  - etcd unreachable when the agent starts: it keeps retrying, `/readyz` answers 503 with the
 *    reason, a CNI ADD gets code 11 (and leaks nothing); when etcd is back the agent registers,
 *    becomes ready and pods get addresses.
 *  - a second node claiming the first node's address: one clear line, exit 1, no route programmed.
 *  - `/metrics` reports the sessions, the Loc-RIB and the routes programmed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CLUSTER_BINS, type Cluster, startCluster } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import { waitReady, waitRoutes } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', CLUSTER_BINS);
const POOL = '10.244.0.0/16';

describe('agent start-up: etcd away, duplicate address, metrics', { skip }, () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({ nodes: 2, pools: [{ name: 'default', cidr: POOL, blockSize: 26 }], startAgents: false });
  });
  after(async () => {
    await c?.stop();
  });

  const curl = async (node: number, path: string) => {
    const r = await c.exec(node, 'curl', [
      '-s',
      '-o',
      '-',
      '-w',
      '\n%{http_code}',
      '--max-time',
      '5',
      `http://127.0.0.1:9099${path}`,
    ]);
    const i = r.stdout.lastIndexOf('\n');
    return { code: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
  };

  test('etcd unreachable at start: retrying, /readyz 503 with the reason, CNI ADD code 11; recovers when etcd returns', async () => {
    await c.etcd.stop();
    const n1 = c.node(1);
    try {
      await n1.startAgent();
      // First "registering", then the failed attempt's reason (the etcd error), retried.
      const r = (await waitFor(
        'readyz names the failed registration',
        async () => {
          const x = await curl(1, '/readyz');
          return /registration: /.test(x.body) ? x : undefined;
        },
        30_000,
        250,
      )) as { code: number; body: string };
      assert.equal(r.code, 503);
      assert.equal((await curl(1, '/healthz')).code, 200, 'alive while not ready');
      await assert.rejects(c.addPod(1, 'early'), /"code":11/);
      await delay(1500);
      assert.ok(n1.agent && !n1.agent.exited(), 'the agent keeps running while etcd is away');
    } finally {
      await c.etcd.restart();
    }
    await waitReady(c, n1, 60_000);
    const p = await c.addPod(1, 'later');
    assert.match(p.ip, /^10\.244\./);
  });

  test('a node claiming another node address: one clear line, exit 1, no route programmed', async () => {
    const n2 = c.node(2);
    const other = c.node(1);
    await assert.rejects(
      n2.startAgent(['--ip', `${other.ip}/24`]).then(async () => {
        await waitFor('agent exits', () => n2.agent?.exited() ?? true, 30_000, 100);
        if (n2.agent && !n2.agent.exited()) throw new Error('still running');
        throw new Error(n2.log());
      }),
      (err: Error) => /is already used by node node-1/.test(err.message),
    );
    assert.deepEqual(await c.routes(n2), [], 'nothing programmed on node-2');
    await n2.stopAgent();
  });

  test('/metrics: peer up, Loc-RIB prefixes, routes programmed, IPAM requests', async () => {
    const n2 = c.node(2);
    await n2.startAgent();
    await c.addPod(2, 'm');
    await waitRoutes(c, POOL, 'Never', 60_000);
    await waitReady(c, n2, 60_000);
    const m = (await curl(2, '/metrics')).body;
    assert.match(m, /petrel_bgp_peer_up\{peer="10\.99\.0\.11",type="node-to-node mesh"\} 1/);
    assert.match(m, /petrel_bgp_loc_rib_prefixes [1-9]/);
    assert.match(m, /petrel_routes_programmed [2-9]/);
    assert.match(m, /petrel_ipam_requests_total\{op="assign",result="ok"\} [1-9]/);
    assert.match(m, /petrel_reconcile_duration_seconds_count [1-9]/);
  });
});
