/**
 * Under containerd's CRI, as kubelet drives it: containerd runs inside a netns standing for the
 * node, next to etcd and petrel-agent; the conflist is petrel + portmap. RunPodSandbox gets an
 * address from the pool and the pod is reachable; Stop + Remove release it and remove the veth;
 * 16 sandboxes in parallel get distinct addresses; a hostPort reaches a server in the pod.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Containerd, startContainerd } from '../../helpers/containerd.js';
import { CriClient } from '../../helpers/cri.js';
import { needs } from '../../helpers/needs.js';
import { linkNames, startEchoServer, tcpRequest } from '../../helpers/netns.js';
import { waitFor } from '../../helpers/process.js';
import { allocations, EXT_IP, NODE_IP, PETREL_BINS, pluginDir, startWorld, type World } from '../cni/harness.js';

const skip = needs('root', 'netns', 'etcd', 'containerd', 'cni-plugins', PETREL_BINS);
const NETWORK = 'petrel-cri';

describe('petrel under containerd CRI', { skip }, () => {
  let w: World;
  let ctd: Containerd;
  let cri: CriClient;
  let dir: string;
  before(async () => {
    w = await startWorld();
    dir = mkdtempSync(join(tmpdir(), 'petrel-ctd-'));
    ctd = await startContainerd({
      dir,
      netnsPath: w.node.path,
      plugins: {
        petrel: join(pluginDir(), 'petrel'),
        'petrel-ipam': join(pluginDir(), 'petrel-ipam'),
        portmap: '/usr/lib/cni/portmap',
      },
      conflist: {
        cniVersion: '1.0.0',
        cniVersions: ['0.3.1', '0.4.0', '1.0.0', '1.1.0'],
        name: NETWORK,
        plugins: [
          {
            type: 'petrel',
            agentSocket: w.socket,
            logLevel: 'warn',
            ipam: { type: 'petrel-ipam' },
            capabilities: { dns: true },
          },
          { type: 'portmap', snat: true, capabilities: { portMappings: true } },
        ],
      },
    });
    cri = new CriClient(ctd.socket);
    await waitFor('CRI NetworkReady', () => cri.networkReady(), 20_000, 200);
  });
  after(async () => {
    cri?.close();
    await ctd?.stop();
    await w?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const hostVeths = async () => (await linkNames(w.node)).filter((n) => n.startsWith('petr'));

  test('RunPodSandbox: pool address, pod reachable from the node, hostPort from outside; Stop+Remove release', async () => {
    const { id } = await cri.runPodSandbox({
      name: 'web',
      namespace: 'shop',
      logDirectory: ctd.logDir,
      portMappings: [{ containerPort: 80, hostPort: 18090 }],
      dns: { servers: ['10.96.0.10'], searches: ['shop.svc.cluster.local'] },
    });
    const st = await cri.status(id);
    assert.equal(st.state, 'SANDBOX_READY');
    assert.match(st.ip, /^10\.123\./);
    assert.equal((await allocations(w)).get(st.ip), `${NETWORK}.${id}`);
    assert.equal((await hostVeths()).length, 1);
    assert.ok(st.pid, 'pause pid from verbose status');
    const podNs = { path: `/proc/${st.pid}/ns/net` };
    const srv = await startEchoServer(podNs, '0.0.0.0', 80, 'sandbox');
    try {
      assert.equal(await tcpRequest(w.node, st.ip, 80), `sandbox ${NODE_IP}`);
      assert.match(await tcpRequest(w.ext, NODE_IP, 18090), /^sandbox /);
      assert.equal(await tcpRequest(w.ext, st.ip, 80), `sandbox ${EXT_IP}`);
    } finally {
      await srv.stop();
    }
    await cri.stopPodSandbox(id);
    assert.equal((await allocations(w)).has(st.ip), false, 'released on StopPodSandbox');
    assert.deepEqual(await hostVeths(), []);
    await cri.stopPodSandbox(id);
    await cri.removePodSandbox(id);
    await assert.rejects(tcpRequest(w.ext, NODE_IP, 18090, 1000));
  });

  test('16 sandboxes in parallel get distinct addresses; all released after Stop+Remove', async () => {
    const ids = await Promise.all(
      Array.from({ length: 16 }, (_, i) => cri.runPodSandbox({ name: `par-${i}`, logDirectory: ctd.logDir })),
    );
    const ips = await Promise.all(ids.map(async ({ id }) => (await cri.status(id)).ip));
    assert.equal(new Set(ips).size, 16);
    const alloc = await allocations(w);
    for (const ip of ips) assert.ok(alloc.has(ip), ip);
    assert.equal((await hostVeths()).length, 16);
    await Promise.all(
      ids.map(async ({ id }) => {
        await cri.stopPodSandbox(id);
        await cri.removePodSandbox(id);
      }),
    );
    const left = await allocations(w);
    assert.ok(ips.every((ip) => !left.has(ip)));
    assert.deepEqual(await hostVeths(), []);
  });
});
