/**
 * The cluster harness itself (test/helpers/cluster.ts): stop() leaves no process in any of the
 * cluster's namespaces (agents and what they forked, etcd, pods' servers), no namespace and no
 * temp dir; a start that fails halfway cleans up the same way before rejecting.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { describe, test } from 'node:test';
import { CLUSTER_BINS, startCluster } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { run } from '../../helpers/netns.js';
import { echoServer } from './lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', CLUSTER_BINS);

/** PIDs of every process whose network namespace is one of `inodes`. */
function processesIn(inodes: Set<number>): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${d}/ns/net`));
      if (m && inodes.has(Number(m[1]))) out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const mine = async () =>
  (await run('ip', ['netns', 'list'])).stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(`petrel-t-${process.pid}-`));

async function children(): Promise<string[]> {
  const r = await run('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]);
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/\bps -o\b/.test(l));
}

describe('cluster harness', { skip }, () => {
  test('stop() ends every process in the cluster namespaces and deletes them and the temp dir', async () => {
    const c = await startCluster({ nodes: 2, pools: [{ name: 'p', cidr: '10.244.0.0/16', vxlanMode: 'Always' }] });
    let inodes = new Set<number>();
    try {
      const pod = await c.addPod(1, 'h-1');
      await echoServer(c, pod.netns, pod.name);
      const all = [c.fabric, ...c.nodes.map((n) => n.ns), pod.netns];
      inodes = new Set(all.map((ns) => statSync(ns.path).ino));
      // Agents, etcd and the echo server run there now.
      assert.ok(processesIn(inodes).length >= 4, `processes in the cluster: ${processesIn(inodes).length}`);
    } finally {
      await c.stop();
    }
    assert.deepEqual(processesIn(inodes), [], 'no process left in a cluster namespace');
    assert.deepEqual(await mine(), [], 'no namespace left');
    assert.equal(existsSync(c.tmp), false, 'temp dir removed');
    assert.deepEqual(await children(), [], 'no child process left');
  });

  test('a start that fails halfway (node-1 agent running, node-2 agent refuses its flags) cleans up before rejecting', async () => {
    const before = await mine();
    await assert.rejects(
      startCluster({
        nodes: 2,
        pools: [{ name: 'p', cidr: '10.244.0.0/16' }],
        agentArgs: (n) => (n.index === 2 ? ['--as', 'not-a-number'] : []),
      }),
      /node-2 agent exited/,
    );
    await assert.rejects(startCluster({ nodes: 1, pools: [{ name: 'bad', cidr: '10.244.0.0/33' }] }), /pool add bad/);
    assert.deepEqual(await mine(), before, 'no namespace left');
    assert.deepEqual(await children(), [], 'no child process left (etcd stopped)');
  });
});
