/**
 * Dual stack through the real kernel: one ADD gives the pod an IPv4 /32 and an IPv6 /128, the
 * IPv6 default route via the host end's link-local address (answered by proxy NDP), /128 host
 * routes on the node; TCP over IPv6 works node → pod and pod → pod; DEL removes it all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import { linkNames, type Netns, startEchoServer, tcpRequest } from '../../helpers/netns.js';
import { allocations, PETREL_BINS, petrelConf, startWorld, type World } from './harness.js';

const skip = needs('root', 'netns', 'etcd', PETREL_BINS);

interface Result {
  ips: { address: string; gateway?: string; interface?: number }[];
  routes: { dst: string; gw?: string }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
}

describe('petrel plugin, dual stack', { skip }, () => {
  let w: World;
  before(async () => {
    w = await startWorld([
      { name: 'v4', cidr: '10.125.0.0/16' },
      { name: 'v6', cidr: 'fd00:10:125::/56' },
    ]);
    // Like a dual-stack node: an IPv6 address on the uplink and an IPv6 default route (proxy NDP,
    // like proxy ARP, only answers for destinations the node can route).
    await w.node.ip('-6', 'addr', 'add', 'fd77::1/64', 'dev', 'uplink0', 'nodad');
    await w.ext.ip('-6', 'addr', 'add', 'fd77::fe/64', 'dev', 'ext0', 'nodad');
    await w.node.ip('-6', 'route', 'add', 'default', 'via', 'fd77::fe');
    // IPv6 forwarding is node-wide in Linux (ip6_forward checks conf/all): the node agent's job
    // on a real node (as Felix does), set here as the test's node configuration.
    await w.node.sysctl('net.ipv6.conf.all.forwarding', '1');
  });
  after(async () => {
    await w?.destroy();
  });

  const conf = () => petrelConf(w, { ipam: { type: 'petrel-ipam', assignIpv4: true, assignIpv6: true } });
  const call = (command: string, id: string, pod: Netns) => ({
    command,
    containerId: id,
    netns: pod.path,
    ifName: 'eth0',
    args: `K8S_POD_NAMESPACE=ds;K8S_POD_NAME=${id}`,
  });

  test('ADD gives /32 + /128 with link-local IPv6 gateway; TCP over IPv6; DEL cleans up', async () => {
    const pods = [await w.pod('ds0'), await w.pod('ds1')];
    const results: Result[] = [];
    for (const [i, pod] of pods.entries()) {
      const r = await w.cni('petrel', call('ADD', `ds${i}-${process.pid}`, pod), conf());
      assert.equal(r.code, 0, `ADD: ${r.stdout} ${r.stderr}`);
      results.push(r.json as unknown as Result);
    }
    const v6 = results.map((r) => r.ips.find((x) => x.address.includes(':')));
    const v4 = results.map((r) => r.ips.find((x) => !x.address.includes(':')));
    for (const [i, r] of results.entries()) {
      assert.match(v4[i]?.address ?? '', /^10\.125\.\d+\.\d+\/32$/);
      assert.match(v6[i]?.address ?? '', /^fd00:10:125:[0-9a-f:]+\/128$/);
      assert.equal(v6[i]?.gateway, 'fe80::ecee:eeff:feee:eeee');
      assert.ok(
        r.routes.some((x) => x.dst === '::/0' && x.gw === 'fe80::ecee:eeff:feee:eeee'),
        JSON.stringify(r.routes),
      );
    }
    // The kernel agrees, in the pod and on the node.
    const addrs = await pods[0]!.ipJson<
      { addr_info: { family: string; local: string; prefixlen: number; scope: string }[] }[]
    >('-6', 'addr', 'show', 'dev', 'eth0');
    const global = addrs[0]?.addr_info.filter((a) => a.scope === 'global') ?? [];
    assert.deepEqual(
      global.map((a) => `${a.local}/${a.prefixlen}`),
      [v6[0]?.address],
    );
    const podRoutes = await pods[0]!.ipJson<IpRoute[]>('-6', 'route', 'show', 'default');
    assert.equal(podRoutes[0]?.gateway, 'fe80::ecee:eeff:feee:eeee');
    const ip6 = v6.map((a) => (a?.address ?? '').split('/')[0] ?? '');
    const hostRoutes = await w.node.ipJson<IpRoute[]>('-6', 'route', 'show');
    for (const ip of ip6)
      assert.ok(
        hostRoutes.some((r) => r.dst === ip && r.dev?.startsWith('petr')),
        `host route to ${ip}`,
      );

    const servers = [
      await startEchoServer(pods[0]!, '::', 7600, 'six0'),
      await startEchoServer(pods[1]!, '::', 7600, 'six1'),
    ];
    try {
      assert.match(await tcpRequest(w.node, ip6[0]!, 7600), /^six0 /);
      assert.match(await tcpRequest(pods[1]!, ip6[0]!, 7600), new RegExp(`^six0 ${ip6[1]!}`));
      assert.match(await tcpRequest(pods[0]!, ip6[1]!, 7600), /^six1 /);
    } finally {
      for (const s of servers) await s.stop();
    }

    for (const [i, pod] of pods.entries()) {
      const d = await w.cni('petrel', call('DEL', `ds${i}-${process.pid}`, pod), conf());
      assert.equal(d.code, 0, d.stdout);
    }
    assert.deepEqual(
      (await linkNames(w.node)).filter((n) => n.startsWith('petr')),
      [],
    );
    const left = await w.node.ipJson<IpRoute[]>('-6', 'route', 'show');
    for (const ip of ip6) assert.ok(!left.some((r) => r.dst === ip), `route to ${ip} removed`);
    assert.equal((await allocations(w)).size, 0, 'every address released');
  });
});
