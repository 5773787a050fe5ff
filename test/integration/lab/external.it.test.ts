/**
 * `petrelctl lab up --ipv6 --external-router`: dual-stack nodes and pods, a BIRD 2 router on the
 * fabric with an eBGP session per node and family, reaching every pod address over TCP through the
 * blocks it learned; `lab down` leaves nothing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { bridgeMac } from '../../../agent/lab/layout.js';
import type { LabSummary } from '../../../agent/lab/report.js';
import { listNetns, pidAlive } from '../../../agent/lab/sh.js';
import type { LabState } from '../../../agent/lab/state.js';
import { CLUSTER_BINS } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { labFailure, PETRELCTL, run } from '../../helpers/petrelctl.js';

const NAME = `it${process.pid}-x`;
const lab = (...args: string[]) => run(PETRELCTL, ['lab', ...args], {}, 240_000);

after(async () => {
  await lab('down', '--name', NAME);
});

test('lab up --ipv6 --external-router: BIRD peers with every node in both families and reaches every pod address', {
  skip: needs('root', 'netns', 'etcd', 'etcdctl', 'bird2', 'cni-plugins', CLUSTER_BINS),
}, async () => {
  const up = await lab(
    'up',
    '--name',
    NAME,
    '--nodes',
    '2',
    '--pods-per-node',
    '1',
    '--mode',
    'never',
    '--ipv6',
    '--external-router',
  );
  assert.equal(up.code, 0, labFailure(up));
  assert.match(up.stdout, /External router \(BIRD\) 10\.99\.\d+\.250 AS 65000: 4\/4 sessions up/);
  const st = await lab('status', '--name', NAME, '--json');
  const s = JSON.parse(st.stdout) as LabSummary;
  assert.equal(st.code, 0, s.problems.join('; '));
  assert.deepEqual(
    s.externalRouter?.sessions.map((x) => x.state),
    ['Established', 'Established', 'Established', 'Established'],
  );
  for (const p of s.pods) {
    assert.ok(p.ip6.startsWith('fd10:244:'), `${p.name} has an IPv6 address from lab-v6: ${p.ip6}`);
    const fromExt = s.matrix.filter((m) => m.from === 'ext-router' && m.to === p.name);
    assert.deepEqual(
      fromExt.map((m) => [m.addr, m.ok]).sort(),
      [
        [p.ip, true],
        [p.ip6, true],
      ].sort(),
    );
  }
  for (const n of s.nodes) assert.equal(n.sessions.length, 3, `${n.name}: mesh + external v4 + external v6`);
  const state = JSON.parse(readFileSync(`/run/petrel-lab/${NAME}/state.json`, 'utf8')) as LabState;
  // The external router's veth joined br0 after etcd was in use: the bridge kept its set MAC, so the
  // nodes' neighbour entries for etcd's address stayed right (it used to take the lowest port MAC).
  const br0 = execFileSync('ip', ['-n', state.fabric, '-o', 'link', 'show', 'br0'], { encoding: 'utf8' });
  assert.match(br0, new RegExp(`link/ether ${bridgeMac(state.index, 1)} `));
  const bird = state.procs.find((p) => p.what === 'bird');
  assert.ok(bird && pidAlive(bird.pid));
  const down = await lab('down', '--name', NAME);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(pidAlive(bird.pid), false, 'BIRD ended');
  assert.deepEqual(
    listNetns().filter((n) => n.startsWith(`${state.prefix}-`)),
    [],
  );
  assert.equal(existsSync(state.dir), false);
});
