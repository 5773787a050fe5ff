/**
 * Pod churn through `petrelctl lab add-pod` / `rm-pod` as a user runs them (issue 11: 200 pods added
 * and removed across nodes): rounds of pods added on every node (`add-pod --count`) and the same number
 * removed again, the whole pod x pod matrix all OK after each round (`lab status --json`), and
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
/** 10 rounds of 20 pods (7 + 7 + 6 over the three nodes): 200 added, 200 removed. */
const ROUNDS = 10;
const PER_ROUND = [7, 7, 6];
const NO_SBIN = { PATH: '/usr/local/bin:/usr/bin:/bin' };
const lab = (...args: string[]) => run(PETRELCTL, ['lab', ...args], NO_SBIN, 240_000);

after(async () => {
  await lab('down', '--name', NAME);
});

test(`pod churn: ${ROUNDS} rounds of 20 pods added across the nodes and 20 removed (200 each), matrix right throughout, ipam check clean`, {
  skip: needs('root', 'netns', 'etcd', 'etcdctl', 'cni-plugins', CLUSTER_BINS),
}, async () => {
  const up = await lab('up', '--name', NAME, '--nodes', '3', '--pods-per-node', '1', '--mode', 'vxlan');
  assert.equal(up.code, 0, labFailure(up));
  let added = 0;
  let removed = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    const adds = await Promise.all(
      PER_ROUND.map((k, i) => lab('add-pod', '--name', NAME, `node-${i + 1}`, '--count', String(k))),
    );
    for (const r of adds) assert.equal(r.code, 0, r.stderr);
    const made = adds.flatMap((r) => r.stdout.trim().split('\n'));
    assert.equal(made.length, 20, `one line per pod made: ${made.join(' | ')}`);
    added += made.length;
    const st = await lab('status', '--name', NAME, '--json');
    const s = JSON.parse(st.stdout) as LabSummary;
    assert.equal(st.code, 0, `round ${round}: ${s.problems.join('; ')}`);
    assert.equal(s.pods.length, 3 + added - removed);
    assert.equal(s.matrix.length, s.pods.length * (s.pods.length - 1), 'every ordered pair probed');
    assert.equal(new Set(s.pods.map((p) => p.ip)).size, s.pods.length, 'distinct addresses');
    // Remove the 20 oldest pods (the lab's first three go in round 1).
    const victims = s.pods.slice(0, 20).map((p) => p.name);
    const rm = await lab('rm-pod', '--name', NAME, ...victims);
    assert.equal(rm.code, 0, rm.stderr);
    removed += victims.length;
  }
  assert.equal(added, 200);
  assert.equal(removed, 200);
  const st = await lab('status', '--name', NAME, '--json');
  const s = JSON.parse(st.stdout) as LabSummary;
  assert.equal(st.code, 0, s.problems.join('; '));
  assert.equal(s.pods.length, 3);
  // Bad input: one clear error, nothing changed (a known pod named beside an unknown one stays).
  const bad = await lab('rm-pod', '--name', NAME, s.pods[0]?.name ?? '', 'no-such-pod');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no pod no-such-pod in lab/);
  const zero = await lab('add-pod', '--name', NAME, 'node-1', '--count', '0');
  assert.notEqual(zero.code, 0);
  assert.match(zero.stderr, /--count must be 1\.\.250, got 0/);
  const after = JSON.parse((await lab('status', '--name', NAME, '--json')).stdout) as LabSummary;
  assert.deepEqual(
    after.pods.map((p) => p.name),
    s.pods.map((p) => p.name),
  );
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
