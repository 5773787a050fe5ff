/**
 * petrel-controllers (bin/petrel-controllers, the bundle the Deployment runs) against a real etcd
 * and the Kubernetes API test double: IPAM GC after the grace period, nothing released while the
 * pod view is incomplete (list failing part way, API unreachable), two replicas with exactly one
 * acting, and a deleted Node's blocks, affinities and tunnel address released (checked with
 * etcdctl). Every API request of the controllers is authorized by the RBAC in manifests/ for
 * their ServiceAccount (test/helpers/kube-rbac.ts), so least privilege is tested too.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../../agent/common/logger.js';
import { formatNodeRecord, nodeKeys } from '../../../agent/node/record.js';
import { type Ipam, openEtcdIpam } from '../../../ipam-etcd/index.js';
import { BIN_DIR } from '../../helpers/bins.js';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { KubeApiDouble } from '../../helpers/kube-api.js';
import { rbacFromManifests } from '../../helpers/kube-rbac.js';
import { needs, type ProbedCapability } from '../../helpers/needs.js';
import { freePort } from '../../helpers/ports.js';
import { type Daemon, startDaemon, waitFor } from '../../helpers/process.js';

const CONTROLLERS: ProbedCapability = {
  name: 'petrel-controllers-bundle',
  probe: () =>
    existsSync(join(BIN_DIR, 'petrel-controllers')) ? false : 'needs bin/petrel-controllers (npm run build)',
};

const GRACE_SEC = 1.5;

interface Replica {
  id: string;
  daemon: Daemon;
  statusUrl: string;
}

async function startReplica(id: string, kubeconfig: string, etcd: string): Promise<Replica> {
  const port = await freePort();
  const daemon = startDaemon(process.execPath, [
    process.env.PETREL_CONTROLLERS_ENTRY ?? join(BIN_DIR, 'petrel-controllers'),
    '--kubeconfig',
    kubeconfig,
    '--etcd-endpoints',
    etcd,
    '--identity',
    id,
    '--leak-grace-period-sec',
    String(GRACE_SEC),
    '--interval-sec',
    '0.3',
    '--lease-duration-sec',
    '3',
    '--renew-deadline-sec',
    '2',
    '--retry-period-sec',
    '0.4',
    '--api-timeout-sec',
    '2',
    '--status-listen',
    `127.0.0.1:${port}`,
  ]);
  const statusUrl = `http://127.0.0.1:${port}`;
  await waitFor(
    `${id} status endpoint`,
    async () => {
      if (daemon.exited()) throw new Error(`petrel-controllers exited: ${daemon.output()}`);
      return (await fetch(`${statusUrl}/healthz`)).ok;
    },
    15_000,
  );
  return { id, daemon, statusUrl };
}

async function statusOf(r: Replica): Promise<{ leader: boolean; podsSynced: boolean; releasedTotal: number }> {
  return (await (await fetch(`${r.statusUrl}/status`)).json()) as {
    leader: boolean;
    podsSynced: boolean;
    releasedTotal: number;
  };
}

async function metric(r: Replica, line: RegExp): Promise<number> {
  const text = await (await fetch(`${r.statusUrl}/metrics`)).text();
  let sum = 0;
  for (const l of text.split('\n')) if (line.test(l)) sum += Number(l.split(' ').pop());
  return sum;
}

/** Log lines (pino JSON) of a replica with this msg. */
function logs(r: Replica, msg: string): Record<string, unknown>[] {
  return r.daemon
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((o) => o.msg === msg);
}

const etcdctl = (endpoint: string, ...args: string[]) =>
  execFileSync('etcdctl', ['--endpoints', endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } }).toString();

describe('petrel-controllers on etcd and the Kubernetes API double', {
  skip: needs('etcd', 'etcdctl', CONTROLLERS),
}, () => {
  let etcd: EtcdHandle;
  let api: KubeApiDouble;
  let kubeconfig: string;
  let ipam: Ipam;
  let closeIpam: () => Promise<void>;
  const replicas: Replica[] = [];
  let n = 0;

  /** A pod in the API with an address from IPAM, as a CNI ADD would leave it. */
  async function podWithAddress(node: string): Promise<{ name: string; handle: string; ip: string }> {
    const name = `p${++n}`;
    const handle = `k8s-pod-network.c${n}`;
    const [a] = await ipam.autoAssign({ handle, node, num4: 1, attrs: { namespace: 'default', pod: name, node } });
    assert.ok(a);
    const ip = a.ip.split('/')[0] as string;
    api.addPod('default', name, { node, ips: [ip] });
    return { name, handle, ip };
  }
  const held = async (handle: string) => (await ipam.ipsByHandle(handle)).length > 0;

  before(async () => {
    etcd = await startEtcd();
    // The controllers' requests are authorized by the manifests' RBAC for their ServiceAccount.
    api = await KubeApiDouble.start({
      bookmarkIntervalMs: 200,
      maxPageSize: 2,
      token: 'petrel-controllers-sa-token',
      authorize: rbacFromManifests('petrel-system', 'petrel-controllers'),
    });
    kubeconfig = api.writeKubeconfig();
    ({ ipam, close: closeIpam } = await openEtcdIpam({ endpoints: [etcd.endpoint], log: silentLogger }));
    await ipam.addPool({ name: 'default', cidr: '10.244.0.0/16', blockSize: 26 });
    api.addNode('n1', { internalIP: '10.0.0.1' });
    api.addNode('n2', { internalIP: '10.0.0.2' });
  });
  after(async () => {
    if (process.env.PETREL_TEST_LOG_DIR)
      for (const r of replicas) writeFileSync(join(process.env.PETREL_TEST_LOG_DIR, `${r.id}.log`), r.daemon.output());
    if (process.env.PETREL_TEST_LOG_DIR && api)
      writeFileSync(
        join(process.env.PETREL_TEST_LOG_DIR, 'kube-api-requests.log'),
        api.requests.map((q) => `${q.method} ${q.path} ${JSON.stringify(q.query)}`).join('\n'),
      );
    for (const r of replicas) await r.daemon.stop();
    await closeIpam?.();
    await api?.stop();
    await etcd?.destroy();
  });

  test('pods deleted while their allocations stay: released after the grace period, logged and counted', async () => {
    const pods = [await podWithAddress('n1'), await podWithAddress('n1'), await podWithAddress('n1')];
    const r = await startReplica('c-a', kubeconfig, etcd.endpoint);
    replicas.push(r);
    await waitFor('leader and synced', async () => {
      const s = await statusOf(r);
      return s.leader && s.podsSynced;
    });
    api.delete('pods', pods[0]?.name as string, 'default');
    api.delete('pods', pods[1]?.name as string, 'default');
    const deletedAt = performance.now();
    await waitFor(
      'leaked handles released',
      async () => !(await held(pods[0]!.handle)) && !(await held(pods[1]!.handle)),
      15_000,
    );
    const tookMs = performance.now() - deletedAt;
    assert.ok(tookMs >= GRACE_SEC * 1000 - 50, `released after the grace period (${Math.round(tookMs)} ms)`);
    assert.equal(await held(pods[2]!.handle), true, 'the live pod keeps its address');
    const released = logs(r, 'released leaked addresses');
    assert.deepEqual(released.map((l) => l.handle).sort(), [pods[0]?.handle, pods[1]?.handle].sort());
    assert.deepEqual(
      released.map((l) => l.reason),
      ['pod-gone', 'pod-gone'],
    );
    assert.equal(await metric(r, /^petrel_controllers_ipam_gc_releases_total\{reason="pod-gone"\}/), 2);
  });

  test('a pod list failing part way releases nothing; nor does an unreachable API server; both recover', async () => {
    const r = replicas[0] as Replica;
    const live = [await podWithAddress('n1'), await podWithAddress('n1'), await podWithAddress('n2')];
    // Every list now fails after its first page, and the open watch expires: the controller relists, and fails.
    api.failMidList('pods', 1_000_000);
    api.expireWatches();
    await waitFor('pod view incomplete', async () => !(await statusOf(r)).podsSynced);
    // Pods deleted while the view is incomplete: they are on the second page and later.
    for (const p of live) api.delete('pods', p.name, 'default');
    const before = await metric(r, /^petrel_controllers_rounds_total\{controller="ipam-gc",result="view-incomplete"\}/);
    await new Promise((res) => setTimeout(res, GRACE_SEC * 1000 * 2.5));
    for (const p of live) assert.equal(await held(p.handle), true, `${p.handle} kept while the view is incomplete`);
    assert.ok(api.midListFailures >= 1, `lists failed part way (${api.midListFailures})`);
    assert.ok(
      (await metric(r, /^petrel_controllers_rounds_total\{controller="ipam-gc",result="view-incomplete"\}/)) > before,
      'rounds skipped as view-incomplete',
    );
    // The lists succeed again: the deleted pods' addresses go after the grace period.
    api.clearMidList('pods');
    await waitFor(
      'released after recovery',
      async () => {
        for (const p of live) if (await held(p.handle)) return false;
        return true;
      },
      20_000,
    );

    // Unreachable: a pod deleted during the outage is released only once the watch is back.
    const p = await podWithAddress('n1');
    await waitFor('synced with the new pod', async () => (await statusOf(r)).podsSynced && api.openWatches('pods') > 0);
    await api.unreachable();
    api.delete('pods', p.name, 'default');
    await new Promise((res) => setTimeout(res, GRACE_SEC * 1000 * 2.5));
    assert.equal(await held(p.handle), true, 'kept while the API server is unreachable');
    await api.reachable();
    await waitFor('released after the API server is back', async () => !(await held(p.handle)), 30_000);
  });

  test('RBAC from the manifests: what the controllers use is allowed, nothing more', () => {
    const authz = rbacFromManifests('petrel-system', 'petrel-controllers');
    const req = (verb: string, resource: string, namespace?: string, name?: string, subresource?: string) =>
      authz({
        verb: verb as 'get',
        group: resource === 'leases' ? 'coordination.k8s.io' : '',
        resource: resource as 'pods',
        subresource,
        namespace,
        name,
      });
    assert.equal(req('list', 'pods'), true);
    assert.equal(req('watch', 'nodes'), true);
    assert.equal(req('update', 'leases', 'petrel-system', 'petrel-controllers'), true);
    assert.equal(req('update', 'leases', 'petrel-system', 'someone-else'), false);
    assert.equal(req('create', 'leases', 'kube-system'), false);
    assert.equal(req('delete', 'pods', 'default', 'p1'), false);
    assert.equal(req('patch', 'nodes', undefined, 'n1', 'status'), false);
  });

  test('two replicas: exactly one holds the Lease and acts; the other takes over when it stops', async () => {
    const a = replicas[0] as Replica;
    const b = await startReplica('c-b', kubeconfig, etcd.endpoint);
    replicas.push(b);
    await waitFor('b synced', async () => (await statusOf(b)).podsSynced, 15_000);
    const [sa, sb] = [await statusOf(a), await statusOf(b)];
    assert.equal(Number(sa.leader) + Number(sb.leader), 1, 'one leader');
    const leader = sa.leader ? a : b;
    const standby = leader === a ? b : a;
    assert.equal(api.get('leases', 'petrel-controllers', 'petrel-system')?.spec.holderIdentity, leader.id);
    const p1 = await podWithAddress('n1');
    const before = {
      leader: logs(leader, 'released leaked addresses').length,
      standby: logs(standby, 'released leaked addresses').length,
    };
    api.delete('pods', p1.name, 'default');
    await waitFor('released by the leader', async () => !(await held(p1.handle)), 15_000);
    await new Promise((res) => setTimeout(res, 700));
    assert.equal(logs(leader, 'released leaked addresses').length, before.leader + 1);
    assert.equal(logs(standby, 'released leaked addresses').length, before.standby, 'the standby released nothing');
    assert.equal(await metric(standby, /^petrel_controllers_leader /), 0);
    // The leader stops (SIGTERM releases the Lease): the standby takes over and acts.
    await leader.daemon.stop();
    replicas.splice(replicas.indexOf(leader), 1);
    await waitFor('standby leads', async () => (await statusOf(standby)).leader, 10_000);
    const lease = api.get('leases', 'petrel-controllers', 'petrel-system');
    assert.equal(lease?.spec.holderIdentity, standby.id);
    assert.ok(lease?.spec.leaseTransitions >= 1);
    const p2 = await podWithAddress('n2');
    await waitFor('standby synced with p2', async () => (await statusOf(standby)).podsSynced);
    api.delete('pods', p2.name, 'default');
    await waitFor('released by the new leader', async () => !(await held(p2.handle)), 15_000);
    await waitFor('the new leader logged it', () =>
      logs(standby, 'released leaked addresses').some((l) => l.handle === p2.handle),
    );
  });

  test('Node deleted: its blocks, affinities, tunnel address and record released (etcdctl); a node whose agent is alive is kept', async () => {
    const r = replicas[0] as Replica;
    api.addNode('n3');
    api.addNode('n4');
    await ipam.autoAssign({ handle: 'ipip-tunnel-addr-n3', node: 'n3', num4: 1, attrs: { node: 'n3' } });
    const [pod3] = await ipam.autoAssign({
      handle: 'k8s-pod-network.n3pod',
      node: 'n3',
      num4: 1,
      attrs: { namespace: 'default', pod: 'n3pod', node: 'n3' },
    });
    api.addPod('default', 'n3pod', { node: 'n3', ips: [pod3?.ip.split('/')[0] as string] });
    await ipam.autoAssign({ handle: 'ipip-tunnel-addr-n4', node: 'n4', num4: 1, attrs: { node: 'n4' } });
    await ipam.store.commit(
      [],
      [
        { key: nodeKeys.node('n3'), value: formatNodeRecord({ name: 'n3', labels: {}, ipv4: '10.0.0.3/24' }) },
        { key: nodeKeys.node('n4'), value: formatNodeRecord({ name: 'n4', labels: {}, ipv4: '10.0.0.4/24' }) },
        {
          key: nodeKeys.aliveOf('n4'),
          value: JSON.stringify({ name: 'n4', lease: '1234', since: new Date().toISOString() }),
        },
      ],
    );
    const blocksOf = (node: string) =>
      etcdctl(etcd.endpoint, 'get', '--prefix', '/petrel/ipam/v1/blocks/', '--print-value-only')
        .split('\n')
        .filter((l) => l.includes(`"host:${node}"`)).length;
    assert.equal(blocksOf('n3'), 1);
    assert.equal(blocksOf('n4'), 1);
    await new Promise((res) => setTimeout(res, 1000)); // several rounds: nothing of live nodes touched
    assert.equal(blocksOf('n3'), 1);
    api.delete('nodes', 'n3');
    api.delete('nodes', 'n4');
    await waitFor('n3 released', async () => blocksOf('n3') === 0, 15_000);
    assert.equal(etcdctl(etcd.endpoint, 'get', '--prefix', '/petrel/ipam/v1/affinities/n3/', '--keys-only').trim(), '');
    assert.equal(
      etcdctl(etcd.endpoint, 'get', '/petrel/ipam/v1/handles/ipip-tunnel-addr-n3', '--keys-only').trim(),
      '',
    );
    assert.equal(etcdctl(etcd.endpoint, 'get', nodeKeys.node('n3'), '--keys-only').trim(), '');
    assert.equal(await held('ipip-tunnel-addr-n3'), false);
    assert.equal(await held('k8s-pod-network.n3pod'), false, "the node's pod addresses go with it");
    await waitFor('n3 removal logged', () =>
      logs(r, 'node gone from Kubernetes: its IPAM state released').some((l) => l.node === 'n3'),
    );
    // n4's agent holds its liveness key: kept, and said so.
    await waitFor('n4 waiting logged', () =>
      logs(r, 'node gone from Kubernetes but its agent is alive: waiting').some((l) => l.node === 'n4'),
    );
    assert.equal(blocksOf('n4'), 1);
    assert.equal(await held('ipip-tunnel-addr-n4'), true);
    // Its agent gone (the lease expired), the next round releases it.
    etcdctl(etcd.endpoint, 'del', nodeKeys.aliveOf('n4'));
    await waitFor('n4 released', async () => blocksOf('n4') === 0, 15_000);
    // The counter goes up once the whole node is released (after its blocks): wait for it too.
    await waitFor('removals counted', async () => (await metric(r, /^petrel_controllers_nodes_removed_total /)) >= 2);
  });
});
