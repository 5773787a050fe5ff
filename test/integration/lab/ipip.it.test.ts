/**
 * `petrelctl lab up --mode ipip|ipip-crosssubnet` through its command line: the nodes are real-kernel
 * qemu guests (this machine's kernel has no ipip) on the lab's fabric bridge, each running
 * petrel-agent, with pods wired by the real plugin inside the guest.
 *
 *   ipip:             3 guests healthy (sessions, matrix, IP proto 4 on the wire); `BLOCK via NODE dev
 *                     tunl0 onlink` on every node for every other node's block, tunl0 an ipip device
 *                     with the node's tunnel address; lab exec into a node and a pod; kill-agent makes
 *                     the lab unhealthy and start-agent heals it; add-pod/rm-pod with `ipam check` clean.
 *   ipip-crosssubnet: node-3 on another subnet behind the fabric's router: node-1 reaches node-2's
 *                     block directly on eth0, node-3's through tunl0; the matrix is all OK.
 *   down:             no qemu, keeper, namespace or directory left.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { LabSummary } from '../../../agent/lab/report.js';
import { pidAlive } from '../../../agent/lab/sh.js';
import { CLUSTER_BINS } from '../../helpers/cluster.js';
import { assertGone, labCli, madeBy } from '../../helpers/lab.js';
import { needs } from '../../helpers/needs.js';
import { labFailure } from '../../helpers/petrelctl.js';

const skip = needs('root', 'netns', 'qemu', 'etcd', 'etcdctl', CLUSTER_BINS);
const IPIP = `ip${process.pid}-a`;
const CROSS = `ip${process.pid}-x`;

const { lab, stateOf, status, statusHealthy: healthy } = labCli(420_000);
const statusHealthy = (name: string) => healthy(name, 90_000);
const exec = (name: string, target: string, ...cmd: string[]) => lab('exec', '--name', name, target, '--', ...cmd);

async function downAndGone(name: string): Promise<void> {
  const m = madeBy(stateOf(name));
  assert.ok(m.pids.length >= 5, `etcd, keeper and 3 qemu recorded: ${m.pids.join(' ')}`);
  const r = await lab('down', '--name', name);
  assert.equal(r.code, 0, r.stderr);
  assertGone(m);
}

/** Petrel's routes (proto 80) of a node, one line each, from inside its guest. */
async function routes(name: string, node: string): Promise<string[]> {
  const r = await exec(name, node, 'ip', '-o', 'route', 'show', 'proto', '80');
  assert.equal(r.code, 0, r.stderr);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter(Boolean);
}

function assertHealthy(s: LabSummary, code: number, encap: 'ipip' | 'plain'): void {
  assert.equal(code, 0, s.problems.join('; '));
  assert.equal(s.nodes.length, 3);
  for (const n of s.nodes) {
    assert.equal(n.sessions.length, 2, `${n.name}: a session to each other node`);
    assert.ok(
      n.sessions.every((x) => x.state === 'Established'),
      JSON.stringify(n.sessions),
    );
    assert.equal(n.blocks.length, 1, `${n.name} holds a block`);
  }
  assert.ok(s.matrix.length >= 6, 'every ordered pair of pods');
  assert.ok(
    s.matrix.every((p) => p.ok),
    JSON.stringify(s.matrix.filter((p) => !p.ok)),
  );
  assert.equal(s.path?.seen, s.path?.expected, `path ${s.path?.line}`);
  if (encap === 'ipip') assert.equal(s.path?.seen, 'ipip', s.path?.line);
}

describe('petrelctl lab with qemu guests (IPIP modes)', { skip, concurrency: false, timeout: 1_500_000 }, () => {
  after(async () => {
    await lab('down', '--name', IPIP);
    await lab('down', '--name', CROSS);
  });

  test('lab up --mode ipip: 3 guests healthy, IP proto 4 on the wire, tunl0 routes onlink', async () => {
    const r = await lab('up', '--name', IPIP, '--mode', 'ipip', '--nodes', '3', '--pods-per-node', '1');
    assert.equal(r.code, 0, `lab up: ${labFailure(r)}`);
    assert.match(r.stdout, /3 qemu guests/);
    assert.match(r.stdout, /\nhealthy\n/);
    const st = stateOf(IPIP);
    for (const n of st.nodes) {
      assert.ok(n.guest, `${n.name} is a guest`);
      assert.equal(n.netns, '', `${n.name} has no namespace on this machine`);
      assert.ok(pidAlive(n.guest.pid), `${n.name}: qemu runs`);
    }
    const { code, s } = await status(IPIP);
    assertHealthy(s, code, 'ipip');
    for (const n of s.nodes) {
      const mine = await routes(IPIP, n.name);
      for (const other of s.nodes.filter((x) => x.name !== n.name))
        for (const b of other.blocks)
          assert.ok(
            mine.includes(`${b} via ${other.ip} dev tunl0 onlink`),
            `${n.name}: ${b} via ${other.ip} dev tunl0 onlink in\n${mine.join('\n')}`,
          );
      for (const b of n.blocks) assert.ok(mine.includes(`blackhole ${b}`), `${n.name}: own block blackholed`);
    }
    const link = await exec(IPIP, 'node-2', 'ip', '-d', '-o', 'link', 'show', 'tunl0');
    assert.match(link.stdout, /ipip /, link.stdout);
    const list = await exec(IPIP, 'node-1', 'petrelctl', 'node', 'list', '--json');
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as { name: string; tunnelAddresses: { ipip?: string } }[];
    const addr = await exec(IPIP, 'node-2', 'ip', '-4', '-o', 'addr', 'show', 'tunl0');
    const t2 = rows.find((x) => x.name === 'node-2')?.tunnelAddresses.ipip;
    assert.ok(t2, JSON.stringify(rows));
    assert.ok(addr.stdout.includes(`inet ${t2}/32`), `node-2 tunl0 holds its tunnel address ${t2}: ${addr.stdout}`);
  });

  test('lab exec into a guest node and a pod in it; an unknown target is a usage error', async () => {
    const st = await exec(IPIP, 'node-1', 'petrelctl', 'node', 'status');
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /Petrel agent on node-1: ready/);
    assert.equal((st.stdout.match(/Established/g) ?? []).length, 2);
    const pod = stateOf(IPIP).pods[0];
    assert.ok(pod);
    const a = await exec(IPIP, pod.name, 'ip', '-4', '-o', 'addr', 'show', 'eth0');
    assert.match(a.stdout, new RegExp(`inet ${pod.ip.replace(/\./g, '\\.')}/32`));
    const fail = await exec(IPIP, 'node-1', 'sh', '-c', 'exit 7');
    assert.equal(fail.code, 7, 'the exit status of the command in the guest');
    assert.equal((await exec(IPIP, 'node-9', 'true')).code, 2);
  });

  test('kill-agent: unhealthy with the session down; start-agent: healthy again', async () => {
    const k = await lab('kill-agent', '--name', IPIP, 'node-2');
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, /node-2: agent pid \d+ killed/);
    const down = await status(IPIP);
    assert.equal(down.code, 1, 'unhealthy while an agent is down');
    assert.match(down.s.problems.join('\n'), /node-2: agent not running/);
    const n1 = down.s.nodes.find((n) => n.name === 'node-1');
    assert.ok(n1?.sessions.some((x) => x.peer.startsWith('10.99.') && x.state !== 'Established'));
    const st = await lab('start-agent', '--name', IPIP, 'node-2');
    assert.equal(st.code, 0, st.stderr);
    const { code, s } = await statusHealthy(IPIP);
    assertHealthy(s, code, 'ipip');
  });

  test('add-pod on node-2 reaches every pod; rm-pod; ipam check clean', async () => {
    const r = await lab('add-pod', '--name', IPIP, 'node-2');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pod-2-2 on node-2: 10\.244\./);
    let { code, s } = await status(IPIP);
    assert.equal(code, 0, s.problems.join('; '));
    assert.equal(s.matrix.filter((p) => p.to === 'pod-2-2' && p.ok).length, 3, 'the new pod answers every other pod');
    const rm = await lab('rm-pod', '--name', IPIP, 'pod-2-2');
    assert.equal(rm.code, 0, rm.stderr);
    ({ code, s } = await status(IPIP));
    assert.equal(s.pods.length, 3);
    assert.equal(code, 0, s.problems.join('; '));
    const gone = await exec(IPIP, 'node-2', 'ip', 'netns', 'list');
    assert.doesNotMatch(gone.stdout, /pod-2-2/, 'the pod netns in the guest is deleted');
    const check = await exec(IPIP, 'node-1', 'petrelctl', 'ipam', 'check');
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
    assert.match(check.stdout, /0 problems/);
  });

  test('lab down: no qemu, keeper, namespace or directory left', async () => {
    await downAndGone(IPIP);
  });

  test('lab up --mode ipip-crosssubnet: same subnet direct on eth0, the other subnet through tunl0', async () => {
    const r = await lab('up', '--name', CROSS, '--mode', 'ipip-crosssubnet', '--nodes', '3', '--pods-per-node', '1');
    assert.equal(r.code, 0, `lab up: ${labFailure(r)}`);
    const { code, s } = await status(CROSS);
    assertHealthy(s, code, 'plain');
    const byName = new Map(s.nodes.map((n) => [n.name, n]));
    const [n1, n2, n3] = ['node-1', 'node-2', 'node-3'].map((x) => byName.get(x));
    assert.ok(n1 && n2 && n3);
    assert.match(n3.ip, /^10\.98\./, 'node-3 is on the routed subnet');
    const mine = await routes(CROSS, 'node-1');
    for (const b of n2.blocks) assert.ok(mine.includes(`${b} via ${n2.ip} dev eth0`), mine.join('\n'));
    for (const b of n3.blocks) assert.ok(mine.includes(`${b} via ${n3.ip} dev tunl0 onlink`), mine.join('\n'));
    await downAndGone(CROSS);
  });
});
