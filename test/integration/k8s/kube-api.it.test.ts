/**
 * The Kubernetes API test double (test/helpers/kube-api.ts) against the real clients: the
 * @kubernetes/client-node 1.x library and /usr/bin/kubectl. If the double drifts from the API
 * conventions these clients rely on, these tests fail.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Lease,
  V1MicroTime,
  Watch,
} from '@kubernetes/client-node';
import { makePki } from '../../helpers/certs.js';
import { KubeApiDouble } from '../../helpers/kube-api.js';
import { rbacFromManifests } from '../../helpers/kube-rbac.js';
import { needs } from '../../helpers/needs.js';
import { waitFor } from '../../helpers/process.js';
import { scratchDir } from '../../helpers/tmp.js';

const run = promisify(execFile);

function clientFor(api: KubeApiDouble): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(api.writeKubeconfig());
  return kc;
}

/** The HTTP status of a client-node ApiException (or a Watch error). */
function codeOf(err: unknown): number | undefined {
  const e = err as { code?: number; statusCode?: number };
  return e.code ?? e.statusCode;
}

describe('KubeApiDouble with @kubernetes/client-node', () => {
  let api: KubeApiDouble;
  let core: CoreV1Api;
  let coord: CoordinationV1Api;
  let kc: KubeConfig;
  before(async () => {
    api = await KubeApiDouble.start({ bookmarkIntervalMs: 100 });
    kc = clientFor(api);
    core = kc.makeApiClient(CoreV1Api);
    coord = kc.makeApiClient(CoordinationV1Api);
  });
  after(async () => {
    await api.stop();
  });

  test('list nodes and pods with resourceVersion; paginated list with limit + continue', async () => {
    api.addNode('n1', { internalIP: '10.0.0.1' });
    api.addNode('n2', { internalIP: '10.0.0.2' });
    for (let i = 0; i < 5; i++) api.addPod('default', `p${i}`, { node: 'n1', ips: [`10.244.0.${i + 1}`] });
    const nodes = await core.listNode();
    assert.deepEqual(
      nodes.items.map((n) => n.metadata?.name),
      ['n1', 'n2'],
    );
    assert.equal(nodes.items[0]?.status?.addresses?.[0]?.address, '10.0.0.1');
    assert.equal(nodes.metadata?.resourceVersion, api.resourceVersion);
    const page1 = await core.listPodForAllNamespaces({ limit: 2 });
    assert.equal(page1.items.length, 2);
    assert.ok(page1.metadata?._continue, 'a continue token');
    assert.equal(page1.metadata?.remainingItemCount, 3);
    const page2 = await core.listPodForAllNamespaces({ limit: 10, _continue: page1.metadata?._continue as string });
    assert.deepEqual(
      page2.items.map((p) => p.metadata?.name),
      ['p2', 'p3', 'p4'],
    );
    assert.equal(page2.metadata?.resourceVersion, page1.metadata?.resourceVersion);
    const onN1 = await core.listPodForAllNamespaces({ fieldSelector: 'spec.nodeName=n1,metadata.name!=p0' });
    assert.equal(onN1.items.length, 4);
    const got = await core.readNamespacedPod({ name: 'p3', namespace: 'default' });
    assert.equal(got.status?.podIP, '10.244.0.4');
    await assert.rejects(core.readNamespacedPod({ name: 'nope', namespace: 'default' }), (e) => codeOf(e) === 404);
  });

  test('watch from a resourceVersion: ADDED/MODIFIED/DELETED in order, then BOOKMARK events', async () => {
    const start = api.resourceVersion;
    const events: { type: string; name?: string; rv?: string }[] = [];
    const w = new Watch(kc);
    let doneErr: unknown = 'open';
    const ctl = await w.watch(
      '/api/v1/pods',
      { resourceVersion: start, allowWatchBookmarks: true },
      (type, obj) => events.push({ type, name: obj?.metadata?.name, rv: obj?.metadata?.resourceVersion }),
      (err) => {
        doneErr = err;
      },
    );
    try {
      api.addPod('default', 'w1', { node: 'n1' });
      const p = api.get('pods', 'w1', 'default');
      api.update('pods', { ...p, status: { phase: 'Running', podIP: '10.244.0.50', podIPs: [{ ip: '10.244.0.50' }] } });
      api.delete('pods', 'w1', 'default');
      await waitFor('events and a bookmark', () => events.some((e) => e.type === 'BOOKMARK'), 5000);
      const changes = events.filter((e) => e.type !== 'BOOKMARK');
      assert.deepEqual(
        changes.map((e) => `${e.type} ${e.name}`),
        ['ADDED w1', 'MODIFIED w1', 'DELETED w1'],
      );
      const rvs = changes.map((e) => Number(e.rv));
      assert.ok(rvs[0]! > Number(start) && rvs[0]! < rvs[1]! && rvs[1]! < rvs[2]!, `increasing: ${rvs}`);
      const bm = events.find((e) => e.type === 'BOOKMARK');
      assert.equal(bm?.rv, api.resourceVersion);
    } finally {
      ctl.abort();
    }
    assert.notEqual(doneErr, 'open');
  });

  test('a watch from a compacted resourceVersion gets ERROR with a 410 Gone Status', async () => {
    const old = api.resourceVersion;
    api.addPod('default', 'c1', { node: 'n1' });
    api.compact();
    const events: { type: string; code?: number; reason?: string }[] = [];
    const ended = new Promise<void>((resolve) => {
      void new Watch(kc).watch(
        '/api/v1/pods',
        { resourceVersion: old },
        (type, obj) => events.push({ type, code: obj?.code, reason: obj?.reason }),
        () => resolve(),
      );
    });
    await ended;
    assert.deepEqual(events, [{ type: 'ERROR', code: 410, reason: 'Expired' }]);
    // An open watch is ended the same way by expireWatches().
    const live: string[] = [];
    const ended2 = new Promise<void>((resolve) => {
      void new Watch(kc).watch(
        '/api/v1/nodes',
        { resourceVersion: api.resourceVersion },
        (type, obj) => live.push(`${type} ${obj?.code ?? ''}`),
        () => resolve(),
      );
    });
    await waitFor('watch open', () => api.openWatches('nodes') === 1);
    api.expireWatches();
    await ended2;
    assert.deepEqual(live, ['ERROR 410']);
  });

  test('Lease: create, 409 AlreadyExists, update with the current resourceVersion, 409 Conflict when stale', async () => {
    const lease: V1Lease = {
      metadata: { name: 'petrel-controllers', namespace: 'petrel-system' },
      spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: new V1MicroTime() },
    };
    // A Date is sent with millisecond precision, which is not a MicroTime: refused as the API server does.
    await assert.rejects(
      coord.createNamespacedLease({
        namespace: 'petrel-system',
        body: { ...lease, spec: { ...lease.spec, renewTime: new Date() } },
      }),
      (e) => codeOf(e) === 400,
    );
    const created = await coord.createNamespacedLease({ namespace: 'petrel-system', body: lease });
    assert.ok(created.metadata?.resourceVersion);
    assert.match(String(created.spec?.renewTime), /\.\d{6}Z$/);
    await assert.rejects(
      coord.createNamespacedLease({ namespace: 'petrel-system', body: lease }),
      (e) => codeOf(e) === 409,
    );
    const renewed = await coord.replaceNamespacedLease({
      name: 'petrel-controllers',
      namespace: 'petrel-system',
      body: { ...created, spec: { ...created.spec, holderIdentity: 'b' } },
    });
    assert.equal(renewed.spec?.holderIdentity, 'b');
    assert.notEqual(renewed.metadata?.resourceVersion, created.metadata?.resourceVersion);
    // `created` now carries a stale resourceVersion: the update is refused.
    await assert.rejects(
      coord.replaceNamespacedLease({
        name: 'petrel-controllers',
        namespace: 'petrel-system',
        body: { ...created, spec: { ...created.spec, holderIdentity: 'c' } },
      }),
      (e) => codeOf(e) === 409,
    );
    const now = await coord.readNamespacedLease({ name: 'petrel-controllers', namespace: 'petrel-system' });
    assert.equal(now.spec?.holderIdentity, 'b');
  });

  test('node status patch: strategic merge of conditions by type keeps the others; merge patch replaces the list', async () => {
    await core.patchNodeStatus(
      {
        name: 'n1',
        body: {
          status: {
            conditions: [
              { type: 'NetworkUnavailable', status: 'False', reason: 'PetrelIsUp', message: 'routes in place' },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const n = await core.readNode({ name: 'n1' });
    assert.deepEqual(n.status?.conditions?.map((c) => `${c.type}=${c.status}`).sort(), [
      'NetworkUnavailable=False',
      'Ready=True',
    ]);
    // The status subresource changes only status; the main resource ignores status.
    await core.patchNode(
      { name: 'n1', body: { metadata: { labels: { rack: 'r1' } }, status: { conditions: [] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const n2 = await core.readNode({ name: 'n1' });
    assert.equal(n2.metadata?.labels?.rack, 'r1');
    assert.equal(n2.status?.conditions?.length, 2);
    await core.patchNodeStatus(
      { name: 'n1', body: { status: { conditions: [{ type: 'Ready', status: 'False' }] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const n3 = await core.readNode({ name: 'n1' });
    assert.deepEqual(
      n3.status?.conditions?.map((c) => c.type),
      ['Ready'],
    );
    // JSON patch (client-node's default patch type) with a failing test op is refused whole.
    await assert.rejects(
      core.patchNode({
        name: 'n1',
        body: [
          { op: 'test', path: '/metadata/labels/rack', value: 'r2' },
          { op: 'replace', path: '/metadata/labels/rack', value: 'r3' },
        ],
      }),
      (e) => codeOf(e) === 422,
    );
  });

  test('faults: an injected 500, a list failing after its first page, unreachable then reachable', async () => {
    api.failNext({ resource: 'pods', list: true }, 500);
    await assert.rejects(core.listPodForAllNamespaces(), (e) => codeOf(e) === 500);
    api.failMidList('pods');
    const p1 = await core.listPodForAllNamespaces({ limit: 2 });
    await assert.rejects(
      core.listPodForAllNamespaces({ limit: 2, _continue: p1.metadata?._continue as string }),
      (e) => codeOf(e) === 500,
    );
    await api.unreachable();
    await assert.rejects(core.listNode(), /ECONNREFUSED|connect/);
    await api.reachable();
    assert.equal((await core.listNode()).items.length, 2);
  });

  test('delete with a stale resourceVersion precondition is a 409; without it the pod is gone', async () => {
    const p = api.addPod('default', 'd1', { node: 'n2' });
    api.update('pods', { ...p, metadata: { ...p.metadata, labels: { x: 'y' } } });
    await assert.rejects(
      core.deleteNamespacedPod({
        name: 'd1',
        namespace: 'default',
        body: { preconditions: { resourceVersion: p.metadata.resourceVersion } },
      }),
      (e) => codeOf(e) === 409,
    );
    await core.deleteNamespacedPod({ name: 'd1', namespace: 'default' });
    assert.equal(api.get('pods', 'd1', 'default'), undefined);
  });
});

describe('KubeApiDouble over HTTPS with a bearer token (in-cluster config)', () => {
  test('KubeConfig.loadFromCluster reads the service account files and talks TLS with the token', async () => {
    const pki = makePki();
    const api = await KubeApiDouble.start({
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca },
      token: 'sa-token-1',
    });
    const root = scratchDir('incluster');
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 'sa-token-1');
    writeFileSync(join(sa, 'namespace'), 'petrel-system');
    writeFileSync(join(sa, 'ca.crt'), readFileSync(pki.ca));
    const env = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
    try {
      process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
      process.env.KUBERNETES_SERVICE_PORT = String(api.portNumber);
      const kc = new KubeConfig();
      kc.loadFromCluster(root);
      api.addNode('tls-node');
      const nodes = await kc.makeApiClient(CoreV1Api).listNode();
      assert.deepEqual(
        nodes.items.map((n) => n.metadata?.name),
        ['tls-node'],
      );
      // A wrong token is refused.
      const bad = new KubeConfig();
      bad.loadFromClusterAndUser(
        { name: 'c', server: api.url, caFile: pki.ca, skipTLSVerify: false },
        { name: 'u', token: 'wrong' },
      );
      await assert.rejects(bad.makeApiClient(CoreV1Api).listNode(), (e) => codeOf(e) === 401);
    } finally {
      if (env.host === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
      else process.env.KUBERNETES_SERVICE_HOST = env.host;
      if (env.port === undefined) delete process.env.KUBERNETES_SERVICE_PORT;
      else process.env.KUBERNETES_SERVICE_PORT = env.port;
      await api.stop();
    }
  });
});

describe('KubeApiDouble with RBAC from the manifests', () => {
  test("a request outside the ServiceAccount's rules is 403 Forbidden; one inside is served", async () => {
    const api = await KubeApiDouble.start({
      token: 't',
      authorize: rbacFromManifests('petrel-system', 'petrel-node'),
    });
    try {
      const core = clientFor(api).makeApiClient(CoreV1Api);
      api.addNode('r1');
      assert.equal((await core.listNode()).items.length, 1);
      await assert.rejects(core.deleteNode({ name: 'r1' }), (e) => codeOf(e) === 403);
      await assert.rejects(
        core.patchNode(
          { name: 'r1', body: { metadata: { labels: { a: 'b' } } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        ),
        (e) => codeOf(e) === 403,
        'petrel-node may patch nodes/status only',
      );
      await assert.rejects(
        clientFor(api).makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: 'petrel-system' }),
        (e) => codeOf(e) === 403,
      );
      assert.ok(api.get('nodes', 'r1'));
    } finally {
      await api.stop();
    }
  });
});

describe('KubeApiDouble with kubectl', { skip: needs('kubectl') }, () => {
  let api: KubeApiDouble;
  let kubeconfig: string;
  const kubectl = async (...args: string[]) =>
    (await run('kubectl', ['--kubeconfig', kubeconfig, '--request-timeout=5s', ...args], { timeout: 20_000 })).stdout;
  before(async () => {
    api = await KubeApiDouble.start({ plainHttp: true });
    kubeconfig = api.writeKubeconfig();
    api.addNode('k1', { internalIP: '10.0.0.11', labels: { zone: 'a' } });
    api.addNode('k2', { internalIP: '10.0.0.12', labels: { zone: 'b' } });
    api.addPod('web', 'nginx-1', { node: 'k1', ips: ['10.244.1.5'] });
  });
  after(async () => {
    await api.stop();
  });

  test('kubectl get nodes / pods / leases (discovery, list, label and field selectors)', async () => {
    const nodes = JSON.parse(await kubectl('get', 'nodes', '-o', 'json')) as {
      items: { metadata: { name: string } }[];
    };
    assert.deepEqual(
      nodes.items.map((n) => n.metadata.name),
      ['k1', 'k2'],
    );
    assert.equal((await kubectl('get', 'nodes', '-l', 'zone=b', '-o', 'name')).trim(), 'node/k2');
    assert.equal(
      (await kubectl('get', 'pods', '-A', '--field-selector', 'spec.nodeName=k1', '-o', 'name')).trim(),
      'pod/nginx-1',
    );
    const ip = await kubectl('get', 'pod', 'nginx-1', '-n', 'web', '-o', 'jsonpath={.status.podIP}');
    assert.equal(ip, '10.244.1.5');
    assert.equal((await kubectl('get', 'leases', '-n', 'petrel-system', '-o', 'name')).trim(), '');
  });

  test('kubectl patch --subresource=status (strategic merge by condition type), label, delete', async () => {
    await kubectl(
      'patch',
      'node',
      'k1',
      '--subresource=status',
      '--type=strategic',
      '-p',
      '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"PetrelIsUp"}]}}',
    );
    const conds = JSON.parse(await kubectl('get', 'node', 'k1', '-o', 'jsonpath={.status.conditions}')) as {
      type: string;
    }[];
    assert.deepEqual(conds.map((c) => c.type).sort(), ['NetworkUnavailable', 'Ready']);
    await kubectl('label', 'node', 'k2', 'petrel.io/pool=blue');
    assert.equal(api.get('nodes', 'k2')?.metadata.labels['petrel.io/pool'], 'blue');
    await kubectl('delete', 'pod', 'nginx-1', '-n', 'web', '--wait=false');
    assert.equal(api.get('pods', 'nginx-1', 'web'), undefined);
    await assert.rejects(kubectl('get', 'pod', 'nginx-1', '-n', 'web'), /NotFound|not found/);
  });

  test('kubectl create and replace of a Lease; a stale replace is a Conflict', async () => {
    const dir = scratchDir('lease');
    const f = join(dir, 'lease.json');
    writeFileSync(
      f,
      JSON.stringify({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: 'l1', namespace: 'petrel-system' },
        spec: { holderIdentity: 'x', leaseDurationSeconds: 10 },
      }),
    );
    await kubectl('create', '--validate=false', '-f', f);
    const cur = JSON.parse(await kubectl('get', 'lease', 'l1', '-n', 'petrel-system', '-o', 'json'));
    const stale = { ...cur, spec: { ...cur.spec, holderIdentity: 'z' } };
    writeFileSync(f, JSON.stringify({ ...cur, spec: { ...cur.spec, holderIdentity: 'y' } }));
    await kubectl('replace', '--validate=false', '-f', f);
    writeFileSync(f, JSON.stringify(stale));
    await assert.rejects(kubectl('replace', '--validate=false', '-f', f), /Conflict|modified/);
    assert.equal(api.get('leases', 'l1', 'petrel-system')?.spec.holderIdentity, 'y');
  });
});
