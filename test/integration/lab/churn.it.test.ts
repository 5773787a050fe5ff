/**
 * Pod churn through `petrelctl lab add-pod` / `rm-pod` as a user runs them: rounds of pods added on
 * every node and removed again, the matrix all OK after each round (`lab status --json`), and
 * `petrelctl ipam check` clean at the end with only the lab's own pods allocated. The lab is made
 * with a PATH that lacks /usr/sbin (as some containers and service units have): the agents still
 * find bridge, nft and sysctl there (VXLAN FDB entries and NAT rules failed without them).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { LabSummary } from '../../../agent/lab/report.js';
import { CLUSTER_BINS } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { labFailure, PETRELCTL, run } from '../../helpers/petrelctl.js';

const NAME = `it${process.pid}-c`;
const ROUNDS = 3;
const NO_SBIN = { PATH: '/usr/local/bin:/usr/bin:/bin' };
const lab = (...args: string[]) => run(PETRELCTL, ['lab', ...args], NO_SBIN, 240_000);

after(async () => {
  await lab('down', '--name', NAME);
});

test(`pod churn: ${ROUNDS} rounds of a pod added on every node and one removed per node, matrix right throughout, ipam check clean`, {
  skip: needs('root', 'netns', 'etcd', 'etcdctl', 'cni-plugins', CLUSTER_BINS),
}, async () => {
  const up = await lab('up', '--name', NAME, '--nodes', '3', '--pods-per-node', '1', '--mode', 'vxlan');
  assert.equal(up.code, 0, labFailure(up));
  let added = 0;
  let removed = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const adds = await Promise.all(['node-1', 'node-2', 'node-3'].map((n) => lab('add-pod', '--name', NAME, n)));
    for (const r of adds) assert.equal(r.code, 0, r.stderr);
    added += adds.length;
    const st = await lab('status', '--name', NAME, '--json');
    const s = JSON.parse(st.stdout) as LabSummary;
    assert.equal(st.code, 0, `round ${round}: ${s.problems.join('; ')}`);
    assert.equal(s.pods.length, 3 + added - removed);
    assert.equal(s.matrix.length, s.pods.length * (s.pods.length - 1), 'every ordered pair probed');
    // Remove the oldest pod of each node.
    const victims = ['1', '2', '3'].map((k) => s.pods.find((p) => p.node === `node-${k}`)?.name as string);
    const rms = await Promise.all(victims.map((p) => lab('rm-pod', '--name', NAME, p)));
    for (const r of rms) assert.equal(r.code, 0, r.stderr);
    removed += rms.length;
  }
  const st = await lab('status', '--name', NAME, '--json');
  const s = JSON.parse(st.stdout) as LabSummary;
  assert.equal(st.code, 0, s.problems.join('; '));
  assert.equal(s.pods.length, 3);
  const check = await run(PETRELCTL, ['lab', 'exec', '--name', NAME, 'node-1', '--', 'petrelctl', 'ipam', 'check']);
  assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
  assert.match(check.stdout, /0 problems/);
  const show = await run(PETRELCTL, [
    'lab',
    'exec',
    '--name',
    NAME,
    'node-1',
    '--',
    'petrelctl',
    'ipam',
    'show',
    '--json',
  ]);
  assert.equal(show.code, 0, show.stderr);
  for (const p of s.pods) assert.ok(show.stdout.includes(p.ip), `${p.ip} of ${p.name} is allocated`);
});
