/**
 * Chains with the reference plugins (Debian containernetworking-plugins in /usr/lib/cni), driven
 * like libcni drives a conflist: petrel then portmap (a hostPort reaches a server in the pod),
 * tuning and bandwidth after petrel, and the reference ptp with petrel-ipam as its IPAM.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import { linkNames, startEchoServer, tcpRequest } from '../../helpers/netns.js';
import { allocations, EXT_IP, NODE_IP, PETREL_BINS, runChain, startWorld, type World } from './harness.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', PETREL_BINS);

type Result = { interfaces: { name: string; sandbox?: string }[]; ips: { address: string; gateway?: string }[] };

describe('chains with the reference plugins', { skip }, () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(async () => {
    await w?.destroy();
  });
  const petrel = () => ({ type: 'petrel', agentSocket: w.socket, logLevel: 'warn', ipam: { type: 'petrel-ipam' } });
  let n = 0;
  const call = (pod: { path: string }) => {
    n++;
    return {
      command: 'ADD',
      containerId: `chain${process.pid}x${n}`,
      netns: pod.path,
      ifName: 'eth0',
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=chains;K8S_POD_NAME=p${n}`,
    };
  };

  test('petrel + portmap: a hostPort from outside the node reaches the pod; DEL removes the mapping', async () => {
    const list = {
      cniVersion: '1.0.0',
      name: 'petrel-portmap',
      plugins: [petrel(), { type: 'portmap', snat: true, capabilities: { portMappings: true } }],
    };
    const pod = await w.pod();
    const c = call(pod);
    // containerd's Go spelling of the port mapping keys.
    const runtime = { portMappings: [{ HostPort: 18080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }] };
    const { result } = await runChain(w, 'ADD', list, c, runtime);
    const ip = ((result as Result).ips[0]?.address ?? '').split('/')[0] ?? '';
    const srv = await startEchoServer(pod, '0.0.0.0', 80, 'web');
    try {
      assert.match(await tcpRequest(w.ext, NODE_IP, 18080), /^web /);
      assert.equal(await tcpRequest(w.ext, ip, 80), `web ${EXT_IP}`);
      // (portmap 1.1.1's own CHECK fails on IPv4-only pods looking for its IPv6 chain, so the
      // chain is checked without it.)
      await runChain(w, 'CHECK', { ...list, plugins: [petrel()] }, c, runtime, result);
      await runChain(w, 'DEL', list, c, runtime, result);
      await assert.rejects(tcpRequest(w.ext, NODE_IP, 18080, 1000));
    } finally {
      await srv.stop();
    }
    assert.equal((await allocations(w)).has(ip), false);
  });

  test('petrel + tuning + bandwidth: pod sysctl set, ingress shaping on the host veth', async () => {
    const list = {
      cniVersion: '1.0.0',
      name: 'petrel-tuned',
      plugins: [
        petrel(),
        { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.accept_local': '1' } },
        { type: 'bandwidth', ingressRate: 8_000_000, ingressBurst: 100_000 },
      ],
    };
    const pod = await w.pod();
    const c = call(pod);
    const { result } = await runChain(w, 'ADD', list, c);
    const r = result as Result;
    const sysctl = await pod.exec('sysctl', ['-n', 'net.ipv4.conf.eth0.accept_local']);
    assert.equal(sysctl.stdout.trim(), '1');
    const host = r.interfaces.find((i) => !i.sandbox)?.name ?? '';
    const tc = await w.node.exec('tc', ['qdisc', 'show', 'dev', host]);
    assert.match(tc.stdout, /tbf/);
    await runChain(w, 'DEL', list, c, {}, result);
    assert.deepEqual(await linkNames(pod), ['lo']);
  });

  test('ptp + petrel-ipam: address from the pool, node reaches the pod, CHECK, DEL releases', async () => {
    const list = {
      cniVersion: '1.0.0',
      name: 'ptp-petrel',
      plugins: [{ type: 'ptp', mtu: 1400, ipam: { type: 'petrel-ipam', agentSocket: w.socket } }],
    };
    // petrel-ipam reads the agent socket from the top-level config like petrel.
    (list.plugins[0] as Record<string, unknown>).agentSocket = w.socket;
    const pod = await w.pod();
    const c = call(pod);
    const { result } = await runChain(w, 'ADD', list, c);
    const r = result as Result;
    const ip = (r.ips[0]?.address ?? '').split('/')[0] ?? '';
    assert.match(r.ips[0]?.address ?? '', /^10\.123\.\d+\.\d+\/16$/);
    // The gateway is the node's own address in its block (held under the node's gateway handle).
    const gw = r.ips[0]?.gateway ?? '';
    assert.match(gw, /^10\.123\.\d+\.\d+$/);
    assert.notEqual(gw, ip);
    assert.equal((await allocations(w)).get(ip), `ptp-petrel.${c.containerId}.eth0`);
    assert.equal((await allocations(w)).get(gw), 'petrel-gateway.node-1');
    const srv = await startEchoServer(pod, '0.0.0.0', 8081, 'ptp');
    try {
      assert.equal(await tcpRequest(w.node, ip, 8081), `ptp ${gw}`);
    } finally {
      await srv.stop();
    }
    await runChain(w, 'CHECK', list, c, {}, result);
    await runChain(w, 'DEL', list, c, {}, result);
    assert.equal((await allocations(w)).has(ip), false);
    await runChain(w, 'DEL', list, { ...c, netns: '' });
  });
});
