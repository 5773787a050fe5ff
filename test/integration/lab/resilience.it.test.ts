/**
 * Faults through `petrelctl lab`, as an operator would repeat them:
 *  - etcd restarted (`lab restart-etcd --down-ms 4000`): while it is down the kernels keep every
 *    route and pods keep reaching each other; afterwards the lab is healthy again, a new pod gets
 *    an address (IPAM back) and `ipam check` is clean.
 *  - a node's agent stopped for good (`lab kill-agent`, never started again): its node record's
 *    lease expires and the other nodes withdraw its block's route from their kernels, while the
 *    routes between the remaining nodes stay.
 *  - `lab down` leaves no namespace, process or directory.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { LabSummary } from '../../../agent/lab/report.js';
import { listNetns, pidAlive } from '../../../agent/lab/sh.js';
import type { LabState } from '../../../agent/lab/state.js';
import { CLUSTER_BINS } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { labFailure, PETRELCTL, run } from '../../helpers/petrelctl.js';
import { waitFor } from '../../helpers/process.js';

const skip = needs('root', 'netns', 'etcd', 'etcdctl', 'cni-plugins', CLUSTER_BINS);
const NAME = `it${process.pid}-r`;
const lab = (cmd: string, ...args: string[]) => run(PETRELCTL, ['lab', cmd, '--name', NAME, ...args], {}, 240_000);
const state = () => JSON.parse(readFileSync(`/run/petrel-lab/${NAME}/state.json`, 'utf8')) as LabState;
const status = async () => JSON.parse((await lab('status', '--json')).stdout) as LabSummary;

/** Destinations of the proto-80 routes in a node's kernel. */
async function kernelRoutes(node: string): Promise<string[]> {
  const r = await lab('exec', node, '--', 'ip', '-j', 'route', 'show', 'proto', '80');
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { dst: string }[]).map((x) => x.dst);
}

describe('lab faults: etcd restarted, an agent stopped for good', { skip }, () => {
  let made: { netns: string[]; pids: number[] } | undefined;
  after(async () => {
    await lab('down');
  });

  test('etcd down for 4 s: routes and pod traffic stay; afterwards healthy, IPAM works, ipam check clean', async () => {
    const up = await lab('up', '--nodes', '3', '--pods-per-node', '1', '--mode', 'never');
    assert.equal(up.code, 0, labFailure(up));
    const before = await kernelRoutes('node-1');
    assert.ok(before.length >= 3, `node-1 routes: ${before}`);
    const restart = lab('restart-etcd', '--down-ms', '4000');
    await new Promise((r) => setTimeout(r, 1500)); // etcd is down now
    const e = state().etcd;
    assert.ok(e && !pidAlive(e.pid), 'etcd is down');
    assert.deepEqual((await kernelRoutes('node-1')).sort(), [...before].sort(), 'routes kept while etcd is down');
    const pods = state().pods;
    const to = pods.find((p) => p.node === 'node-2');
    assert.ok(to);
    // One TCP exchange pod-1-1 -> node-2's pod while etcd is down (a one-shot server there).
    const server = lab(
      'exec',
      to.name,
      '--',
      process.execPath,
      '-e',
      "setTimeout(() => process.exit(3), 15000); require('net').createServer((s) => s.end('hi', () => process.exit(0))).listen(7778)",
    );
    let got = '';
    for (let i = 0; i < 40 && got !== 'hi'; i++) {
      const c = await lab('exec', 'pod-1-1', '--', 'bash', '-c', `exec 3<>/dev/tcp/${to.ip}/7778 && head -c 2 <&3`);
      got = c.stdout;
      if (got !== 'hi') await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(got, 'hi', `pod-1-1 -> ${to.ip}:7778 while etcd is down`);
    assert.equal((await server).code, 0);
    const r = await restart;
    assert.equal(r.code, 0, r.stderr);
    await waitFor('lab healthy after the etcd restart', async () => (await lab('status')).code === 0, 60_000, 1000);
    const add = await lab('add-pod', 'node-2');
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /on node-2: 10\.244\./);
    const check = await lab('exec', 'node-1', '--', 'petrelctl', 'ipam', 'check');
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
  });

  test("node-3's agent stopped for good: its block's route leaves node-1 and node-2; theirs stay", async () => {
    const s = await status();
    const blocksOf = (n: string) => s.nodes.find((x) => x.name === n)?.blocks ?? [];
    const gone = blocksOf('node-3');
    const kept = [...blocksOf('node-1'), ...blocksOf('node-2')];
    assert.ok(gone.length > 0 && kept.length > 0, JSON.stringify(s.nodes));
    const k = await lab('kill-agent', 'node-3');
    assert.equal(k.code, 0, k.stderr);
    const t0 = performance.now();
    await waitFor(
      "node-3's blocks gone from node-1 and node-2",
      async () => {
        for (const n of ['node-1', 'node-2']) {
          const routes = await kernelRoutes(n);
          if (gone.some((b) => routes.includes(b))) return false;
        }
        return true;
      },
      120_000,
      1000,
    );
    const took = (performance.now() - t0) / 1000;
    assert.ok(took > 5, `withdrawn after ${took.toFixed(1)} s: not before the lease could expire`);
    assert.ok((await kernelRoutes('node-1')).includes(blocksOf('node-2')[0] as string), 'node-1 -> node-2 stays');
    assert.ok((await kernelRoutes('node-2')).includes(blocksOf('node-1')[0] as string), 'node-2 -> node-1 stays');
    const after = await status();
    assert.equal(after.healthy, false, 'a node without its agent is not healthy');
    assert.equal(after.nodes.find((n) => n.name === 'node-3')?.alive, false);
    const st = state();
    made = { netns: st.netns, pids: [st.etcd?.pid ?? 0, ...st.nodes.flatMap((n) => (n.agentPid ? [n.agentPid] : []))] };
  });

  test('lab down leaves nothing it made', async () => {
    assert.ok(made, 'the state from the tests before');
    const d = await lab('down');
    assert.equal(d.code, 0, d.stderr);
    const left = new Set(await listNetns());
    assert.deepEqual(
      made.netns.filter((n) => left.has(n)),
      [],
    );
    for (const p of made.pids) assert.ok(!pidAlive(p), `pid ${p} ended`);
    assert.equal(existsSync(`/run/petrel-lab/${NAME}`), false);
  });
});
