/**
 * `--ip-autodetection-method kubernetes-internal-ip` end to end on its edge: the agent's
 * KubeApi reads the Node from the API test double and the address is found on this host's
 * interfaces (read only: `ip -json addr`; 127.0.0.1 stands for the node's InternalIP); and the
 * NetworkUnavailable=False condition written through the real client.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { systemClock } from '../../../agent/common/clock.js';
import { silentLogger } from '../../../agent/common/logger.js';
import { KubeApi, loadKubeConfig, NetworkCondition, NodeLabelSync } from '../../../agent/k8s/index.js';
import { internalIpsOf, parseDetectMethod } from '../../../agent/node/autodetect.js';
import { autodetect } from '../../../agent/node/autodetect-edge.js';
import { KubeApiDouble } from '../../helpers/kube-api.js';
import { rbacFromManifests } from '../../helpers/kube-rbac.js';
import { waitFor } from '../../helpers/process.js';

let api: KubeApiDouble;
let kube: KubeApi;
before(async () => {
  // The agent's requests are authorized by the manifests' RBAC for petrel-node.
  api = await KubeApiDouble.start({
    token: 'petrel-node-sa-token',
    authorize: rbacFromManifests('petrel-system', 'petrel-node'),
  });
  kube = new KubeApi(loadKubeConfig({ kubeconfig: api.writeKubeconfig() }));
});
after(async () => {
  await api.stop();
});

test('kubernetes-internal-ip: the Node InternalIP, with the prefix length of the interface holding it', async () => {
  api.addNode('node-a', { internalIP: '127.0.0.1' });
  const method = parseDetectMethod('kubernetes-internal-ip');
  const src = async () => internalIpsOf((await kube.readNode('node-a')) ?? {});
  const d = await autodetect(4, method, src);
  assert.deepEqual(d.ok && { addrLen: d.addrLen, iface: d.iface }, { addrLen: '127.0.0.1/8', iface: 'lo' });
  // A Node whose InternalIP is not on this host, and a missing Node, are refused with the reason.
  api.addNode('node-b', { internalIP: '192.0.2.77' });
  const other = await autodetect(4, method, async () => internalIpsOf((await kube.readNode('node-b')) ?? {}));
  assert.equal(other.ok, false);
  assert.match(!other.ok ? other.error : '', /192\.0\.2\.77 is on no interface/);
  const missing = await autodetect(4, method, async () => internalIpsOf((await kube.readNode('nope')) ?? {}));
  assert.match(!missing.ok ? missing.error : '', /no IPv4 InternalIP/);
  // An unreachable API server is an error the agent retries (not a detection result).
  await api.unreachable();
  await assert.rejects(autodetect(4, method, src));
  await api.reachable();
});

test('NetworkUnavailable=False through KubeApi: a strategic merge patch of the status subresource keeps Ready', async () => {
  api.addNode('node-c', { internalIP: '127.0.0.1' });
  let ready = false;
  const nc = new NetworkCondition('node-c', kube, () => ready, systemClock, silentLogger, 50);
  nc.start();
  try {
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      api.get('nodes', 'node-c')?.status.conditions.map((c: { type: string }) => c.type),
      ['Ready'],
      'nothing written before the routes are in place',
    );
    ready = true;
    await waitFor('condition written', () => nc.done, 5000);
    const conds = api.get('nodes', 'node-c')?.status.conditions as { type: string; status: string; reason?: string }[];
    assert.deepEqual(
      conds.map((c) => `${c.type}=${c.status}`),
      ['Ready=True', 'NetworkUnavailable=False'],
    );
    assert.equal(conds[1]?.reason, 'PetrelIsUp');
    const patch = api.requests.find((r) => r.method === 'PATCH' && r.path === '/api/v1/nodes/node-c/status');
    assert.equal(patch?.contentType, 'application/strategic-merge-patch+json');
  } finally {
    nc.stop();
  }
});

test("node labels: the Node's labels applied at start and on every change (only its own Node), a failed apply retried", async () => {
  api.addNode('node-d', { labels: { rack: 'r1' } });
  api.addNode('node-e', { labels: { rack: 'other' } });
  const applied: Record<string, string>[] = [];
  let fail = 0;
  const ls = new NodeLabelSync(
    'node-d',
    kube.nodes({ name: 'node-d' }),
    async (l) => {
      if (fail-- > 0) throw new Error('etcd away');
      applied.push(l);
    },
    systemClock,
    silentLogger,
  );
  ls.start();
  try {
    await waitFor('initial labels', () => applied.length === 1);
    assert.equal(applied[0]?.rack, 'r1');
    assert.equal(applied[0]?.['kubernetes.io/hostname'], 'node-d');
    const n = api.get('nodes', 'node-d');
    fail = 1;
    api.update('nodes', { ...n, metadata: { ...n?.metadata, labels: { ...n?.metadata.labels, rack: 'r2' } } });
    const e = api.get('nodes', 'node-e');
    api.update('nodes', { ...e, metadata: { ...e?.metadata, labels: { rack: 'r9' } } });
    await waitFor('changed labels after a retry', () => applied.length === 2, 10_000);
    assert.equal(applied[1]?.rack, 'r2');
    // A status-only change (same labels) applies nothing.
    const n2 = api.get('nodes', 'node-d');
    api.update('nodes', { ...n2, status: { ...n2?.status, phase: 'x' } });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(applied.length, 2);
    assert.ok(
      api.requests.some((r) => r.query.watch === 'true' && r.query.fieldSelector === 'metadata.name=node-d'),
      'watches only its own Node',
    );
  } finally {
    ls.stop();
  }
});
