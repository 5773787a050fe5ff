/**
 * `--ip-autodetection-method kubernetes-internal-ip` end to end on its edge: the agent's
 * KubeApi reads the Node from the API test double and the address is found on this host's
 * interfaces (read only: `ip -json addr`; 127.0.0.1 stands for the node's InternalIP).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeApi, loadKubeConfig } from '../../../agent/k8s/index.js';
import { internalIpsOf, parseDetectMethod } from '../../../agent/node/autodetect.js';
import { autodetect } from '../../../agent/node/autodetect-edge.js';
import { KubeApiDouble } from '../../helpers/kube-api.js';

let api: KubeApiDouble;
let kube: KubeApi;
before(async () => {
  api = await KubeApiDouble.start();
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
