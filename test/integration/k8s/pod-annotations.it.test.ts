/**
 * Pod annotations end to end (issue 12): the real petrel-agent in a node namespace, with
 * `--kubeconfig` for the Kubernetes API test double (KubeApiDouble, authorizing the agent by the
 * manifests' RBAC for petrel-node), reached from inside the namespace through a loopback relay;
 * the real petrel plugin run as a runtime runs it (CNI_ARGS with the pod's namespace and name).
 * petrel.io/ipv4pools (pod, namespace; by name and by CIDR) and petrel.io/ipAddrs steer the pod's
 * address; a bad annotation, a pod the API does not know and an unreachable API server each give
 * the spec's error JSON and leave no veth and no allocation. The same agent sets the Node's
 * NetworkUnavailable condition False once its routes are in place, and takes its labels from the Node.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { KubeApiDouble } from '../../helpers/kube-api.js';
import { rbacFromManifests } from '../../helpers/kube-rbac.js';
import { forwardLoopback } from '../../helpers/loopback-forward.js';
import { needs } from '../../helpers/needs.js';
import { linkNames, type Netns } from '../../helpers/netns.js';
import { waitFor } from '../../helpers/process.js';
import {
  allocations,
  type CniReply,
  NODE_IP,
  PETREL_BINS,
  petrelConf,
  startWorld,
  type World,
} from '../cni/harness.js';

const skip = needs('root', 'netns', 'etcd', PETREL_BINS);

interface Result {
  ips: { address: string }[];
}

describe('pod annotations through the agent and the Kubernetes API (test double)', { skip }, () => {
  let api: KubeApiDouble;
  let w: World;
  before(async () => {
    api = await KubeApiDouble.start({
      token: 'petrel-node-sa-token',
      authorize: rbacFromManifests('petrel-system', 'petrel-node'),
    });
    api.addNode('node-1', { internalIP: NODE_IP, labels: { rack: 'r1' } });
    w = await startWorld(
      [
        { name: 'default', cidr: '10.123.0.0/16' },
        { name: 'blue', cidr: '10.124.0.0/16' },
      ],
      {
        agentArgs: ['--kubeconfig', api.writeKubeconfig()],
        beforeAgent: async (node) => (await forwardLoopback(node, api.portNumber)).stop,
      },
    );
  });
  after(async () => {
    await w?.destroy();
    await api?.stop();
  });

  let seq = 0;
  const hostVeths = async () => (await linkNames(w.node)).filter((n) => n.startsWith('petr'));
  /** ADD for pod ns/name in a fresh pod namespace. */
  async function add(ns: string, name: string): Promise<{ r: CniReply; pod: Netns; id: string }> {
    const id = `ctr${process.pid}a${++seq}`;
    const pod = await w.pod('ann');
    const r = await w.cni(
      'petrel',
      {
        command: 'ADD',
        containerId: id,
        netns: pod.path,
        ifName: 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name}`,
      },
      petrelConf(w),
    );
    return { r, pod, id };
  }
  const ipOf = (r: CniReply) => ((r.json as unknown as Result).ips[0]?.address ?? '').split('/')[0] ?? '';
  async function eth0Address(pod: Netns): Promise<string | undefined> {
    const out = JSON.parse(await pod.ip('-json', 'addr', 'show', 'eth0')) as {
      addr_info: { local: string; family: string }[];
    }[];
    return out[0]?.addr_info.find((a) => a.family === 'inet')?.local;
  }
  /** A failed ADD: the spec's error JSON with `code`, and nothing left behind. */
  async function refused(r: CniReply, id: string, code: number, msg: RegExp, vethsBefore: string[]) {
    assert.notEqual(r.code, 0, r.stdout);
    const err = r.json as { code?: number; msg?: string; details?: string } | undefined;
    assert.equal(err?.code, code, r.stdout);
    assert.match(`${err?.msg} ${err?.details}`, msg);
    assert.deepEqual(await hostVeths(), vethsBefore, 'no host veth left');
    const handles = [...(await allocations(w)).values()];
    assert.ok(!handles.some((h) => h.includes(id)), `no allocation for ${id}: ${handles.join(', ')}`);
  }

  test("petrel.io/ipv4pools on the pod: the address comes from that pool (it beats the config's pools)", async () => {
    api.addPod('team-a', 'web', { node: 'node-1', annotations: { 'petrel.io/ipv4pools': '["blue"]' } });
    const { r, pod } = await add('team-a', 'web');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(ipOf(r), /^10\.124\./);
    assert.equal(await eth0Address(pod), ipOf(r));
  });

  test("the namespace's petrel.io/ipv4pools (by CIDR) applies to its pods; a pod's own annotation beats it", async () => {
    api.addNamespace('team-b', { 'petrel.io/ipv4pools': '["10.124.0.0/16"]' });
    api.addPod('team-b', 'plain', { node: 'node-1' });
    api.addPod('team-b', 'own', { node: 'node-1', annotations: { 'petrel.io/ipv4pools': '["default"]' } });
    const plain = await add('team-b', 'plain');
    assert.equal(plain.r.code, 0, plain.r.stdout);
    assert.match(ipOf(plain.r), /^10\.124\./);
    const own = await add('team-b', 'own');
    assert.equal(own.r.code, 0, own.r.stdout);
    assert.match(ipOf(own.r), /^10\.123\./);
  });

  test('petrel.io/ipAddrs: the pod gets exactly that address; a second pod asking for it is refused', async () => {
    api.addPod('team-a', 'pinned', { node: 'node-1', annotations: { 'petrel.io/ipAddrs': '["10.123.7.7"]' } });
    api.addPod('team-a', 'copycat', { node: 'node-1', annotations: { 'petrel.io/ipAddrs': '["10.123.7.7"]' } });
    const { r, pod } = await add('team-a', 'pinned');
    assert.equal(r.code, 0, r.stdout);
    assert.equal(ipOf(r), '10.123.7.7');
    assert.equal(await eth0Address(pod), '10.123.7.7');
    const before = await hostVeths();
    const second = await add('team-a', 'copycat');
    await refused(second.r, second.id, 7, /10\.123\.7\.7/, before);
    assert.equal((await allocations(w)).get('10.123.7.7')?.includes(second.id), false);
  });

  test('a bad annotation, an unknown pod: error code 7 naming the cause, no veth, no address', async () => {
    api.addPod('team-a', 'typo', { node: 'node-1', annotations: { 'petrel.io/ipv4pools': '["bleu"]' } });
    const before = await hostVeths();
    const typo = await add('team-a', 'typo');
    await refused(
      typo.r,
      typo.id,
      7,
      /pod team-a\/typo: petrel\.io\/ipv4pools: no IP pool named or with CIDR "bleu"/,
      before,
    );
    const ghost = await add('team-a', 'ghost');
    await refused(ghost.r, ghost.id, 7, /pod team-a\/ghost not found in the Kubernetes API/, before);
  });

  test('the API server unreachable: code 11 (try again later), nothing taken; reachable again, the ADD works', async () => {
    api.addPod('team-a', 'later', { node: 'node-1', annotations: { 'petrel.io/ipv4pools': '["blue"]' } });
    const before = await hostVeths();
    await api.unreachable();
    try {
      const down = await add('team-a', 'later');
      await refused(down.r, down.id, 11, /reading pod team-a\/later from the Kubernetes API/, before);
    } finally {
      await api.reachable();
    }
    const up = await add('team-a', 'later');
    assert.equal(up.r.code, 0, up.r.stdout);
    assert.match(ipOf(up.r), /^10\.124\./);
  });

  test("the agent sets the Node's NetworkUnavailable condition False once its routes are in place", async () => {
    await waitFor(
      'NetworkUnavailable=False on node-1',
      () =>
        ((api.get('nodes', 'node-1')?.status.conditions ?? []) as { type: string; status: string }[]).some(
          (c) => c.type === 'NetworkUnavailable' && c.status === 'False',
        ),
      30_000,
    );
  });

  test("the Node's labels become the node record's (pool nodeSelectors), and follow a relabel", async () => {
    const labels = async () => {
      const r = await w.petrelctl('node', 'list', '--json');
      assert.equal(r.code, 0, r.stderr);
      return (JSON.parse(r.stdout) as { name: string; labels: Record<string, string> }[]).find(
        (n) => n.name === 'node-1',
      )?.labels;
    };
    await waitFor('rack=r1 in the node record', async () => (await labels())?.rack === 'r1', 30_000);
    const node = api.get('nodes', 'node-1');
    assert.ok(node);
    node.metadata.labels = { ...node.metadata.labels, rack: 'r2', zone: 'z9' };
    api.update('nodes', node);
    await waitFor(
      'rack=r2 zone=z9 in the node record',
      async () => {
        const l = await labels();
        return l?.rack === 'r2' && l.zone === 'z9';
      },
      30_000,
    );
  });
});
