/**
 * `petrelctl lab up --cri` through its command line, as a user runs it: a containerd (CRI) per node
 * netns, pods as pod sandboxes (containerd calls the petrel plugin, as under kubelet). Up healthy
 * with each pod a READY sandbox in its node's containerd and in containerd's own netns; add-pod on
 * node-2 healthy with the matrix all OK; rm-pod removes the sandbox and its IPAM allocation; down
 * leaves no containerd, shim or pause process, namespace, host-path entry or directory (idempotent).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { processesOf, shimSocketPath } from '../../../agent/lab/cri/containerd.js';
import type { LabSummary } from '../../../agent/lab/report.js';
import { listNetns, pidAlive, runOk } from '../../../agent/lab/sh.js';
import type { LabState } from '../../../agent/lab/state.js';
import { CLUSTER_BINS } from '../../helpers/cluster.js';
import { CriClient } from '../../helpers/cri.js';
import { needs } from '../../helpers/needs.js';
import { labFailure, PETRELCTL, run } from '../../helpers/petrelctl.js';

const NAME = `it${process.pid}-cri`;
const ROOT_DIR = '/run/petrel-lab';
const lab = (...args: string[]) => run(PETRELCTL, ['lab', ...args], {}, 240_000);
const stateOf = () => JSON.parse(readFileSync(`${ROOT_DIR}/${NAME}/state.json`, 'utf8')) as LabState;
const status = async () => {
  const r = await lab('status', '--name', NAME, '--json');
  return { code: r.code, s: JSON.parse(r.stdout) as LabSummary };
};

after(async () => {
  await lab('down', '--name', NAME);
});

/** Sandboxes of a node's containerd (CRI ListPodSandbox). */
async function sandboxes(socket: string) {
  const cri = new CriClient(socket);
  try {
    return await cri.listPodSandbox();
  } finally {
    cri.close();
  }
}

/** Every IP allocated in the lab's IPAM (`petrelctl ipam show --json` run in node-1). */
async function allocatedIps(): Promise<Set<string>> {
  const r = await lab('exec', '--name', NAME, 'node-1', '--', 'petrelctl', 'ipam', 'show', '--json');
  assert.equal(r.code, 0, r.stderr);
  const show = JSON.parse(r.stdout) as { pools: { blocks: { allocations: { ip: string }[] }[] }[] };
  return new Set(show.pools.flatMap((p) => p.blocks.flatMap((b) => b.allocations.map((a) => a.ip))));
}

test('lab up --cri: pods as containerd sandboxes per node; add-pod / rm-pod over CRI; down removes all of it', {
  skip: needs('root', 'netns', 'etcd', 'etcdctl', 'containerd', 'cni-plugins', CLUSTER_BINS),
}, async () => {
  const t0 = performance.now();
  const up = await lab('up', '--name', NAME, '--nodes', '2', '--pods-per-node', '1', '--mode', 'vxlan', '--cri');
  const upMs = performance.now() - t0;
  assert.equal(up.code, 0, labFailure(up));
  assert.match(up.stdout, /healthy/);
  process.stdout.write(`lab up --cri, 2 nodes, 1 pod each: ${(upMs / 1000).toFixed(1)} s\n`);

  let s = stateOf();
  assert.equal(s.cri?.network, 'petrel-lab');
  assert.equal(s.pods.length, 2);
  for (const n of s.nodes) {
    assert.ok(n.containerd, `${n.name}: containerd recorded`);
    assert.ok(pidAlive(n.containerd.pid), `${n.name}: containerd running`);
    const mine = s.pods.filter((p) => p.node === n.name);
    const listed = await sandboxes(n.containerd.socket);
    for (const p of mine) {
      assert.ok(p.sandboxId);
      const sb = listed.find((x) => x.id === p.sandboxId);
      assert.ok(sb, `${p.name}: its sandbox in ${n.name}'s containerd`);
      assert.equal(sb.state, 'SANDBOX_READY');
      assert.deepEqual([sb.name, sb.namespace, sb.uid], [p.name, 'default', p.uid]);
      assert.match(p.netns, /^cni-/, "the pod's netns is containerd's");
      assert.ok(existsSync(`/var/run/netns/${p.netns}`));
    }
    // The same through ctr (the sandbox's pause container).
    const ctr = await runOk('ctr', ['-a', n.containerd.socket, '-n', 'k8s.io', 'containers', 'ls', '-q']);
    for (const p of mine) assert.ok(ctr.includes(p.sandboxId as string), `${p.name} in ctr containers ls`);
  }

  const add = await lab('add-pod', '--name', NAME, 'node-2');
  assert.equal(add.code, 0, add.stderr);
  const [, newPod = '', newIp = ''] = /^(\S+) on node-2: (\S+)$/m.exec(add.stdout) ?? [];
  assert.ok(newPod, add.stdout);
  let st = await status();
  assert.equal(st.code, 0, st.s.problems.join('; '));
  assert.equal(st.s.pods.length, 3);
  assert.equal(st.s.matrix.length, 6, 'every ordered pair probed');
  assert.ok(
    st.s.matrix.every((m) => m.ok),
    'matrix all OK',
  );
  s = stateOf();
  const added = s.pods.find((p) => p.name === newPod);
  assert.ok(added?.sandboxId);
  const node2 = s.nodes.find((n) => n.name === 'node-2');
  assert.ok(node2?.containerd);
  assert.ok((await sandboxes(node2.containerd.socket)).some((x) => x.id === added.sandboxId));
  assert.ok((await allocatedIps()).has(newIp), `${newIp} allocated`);

  const rm = await lab('rm-pod', '--name', NAME, newPod);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(
    (await sandboxes(node2.containerd.socket)).some((x) => x.id === added.sandboxId),
    false,
    'sandbox gone from containerd',
  );
  assert.equal((await allocatedIps()).has(newIp), false, `${newIp} released`);
  assert.equal(existsSync(`/var/run/netns/${added.netns}`), false, "containerd's netns of the pod gone");
  st = await status();
  assert.equal(st.code, 0, st.s.problems.join('; '));
  assert.equal(st.s.pods.length, 2);

  // What down must remove: containerd, shims and pause processes (by PID), namespaces, paths.
  s = stateOf();
  const ctds = s.nodes.flatMap((n) => (n.containerd ? [n.containerd] : []));
  const pids = [...ctds.map((c) => c.pid), ...ctds.flatMap((c) => processesOf(`-address ${c.socket}`))];
  assert.ok(pids.length >= 2 + 2 * 2, `containerds, shims and pauses: ${pids.join(' ')}`);
  const shimSockets = s.pods.map((p) => {
    const n = s.nodes.find((x) => x.name === p.node);
    return shimSocketPath(n?.containerd?.socket ?? '', 'k8s.io', p.sandboxId as string);
  });
  assert.ok(
    shimSockets.every((p) => existsSync(p)),
    'shim sockets where expected',
  );
  const podNetns = s.pods.map((p) => p.netns);
  const ids = s.pods.map((p) => p.sandboxId as string);

  const down = await lab('down', '--name', NAME);
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(
    pids.filter((p) => pidAlive(p)),
    [],
    'no containerd, shim or pause process left',
  );
  const pg = await run('pgrep', ['-f', s.dir], {}, 10_000);
  assert.equal(pg.stdout.trim(), '', `pgrep -f ${s.dir}`);
  assert.deepEqual(
    listNetns().filter((n) => n.startsWith(`${s.prefix}-`) || podNetns.includes(n)),
    [],
    'no namespace left',
  );
  assert.equal(existsSync(s.dir), false, `${s.dir} removed`);
  assert.deepEqual(
    shimSockets.filter((p) => existsSync(p)),
    [],
    'shim sockets removed',
  );
  const results = existsSync('/var/lib/cni/results') ? readdirSync('/var/lib/cni/results') : [];
  assert.deepEqual(
    results.filter((f) => ids.some((id) => f.includes(id))),
    [],
    'CNI result cache of the sandboxes removed',
  );
  assert.deepEqual(
    ids.filter((id) => existsSync(`/run/containerd/runc/k8s.io/${id}`)),
    [],
    'runc state removed',
  );
  const again = await lab('down', '--name', NAME);
  assert.equal(again.code, 0, again.stderr);
});
