/**
 * The petrel plugin against real namespaces: a node netns with etcd + petrel-agent, pod
 * namespaces, the plugin executed inside the node netns like a runtime would. Asserts kernel
 * state (ip -json), IPAM state (petrelctl) and TCP connectivity.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import { linkNames, type Netns, startEchoServer, tcpRequest } from '../../helpers/netns.js';
import {
  allocations,
  type CniCall,
  EXT_IP,
  NODE_IP,
  PETREL_BINS,
  petrelConf,
  pluginDir,
  startWorld,
  type World,
} from './harness.js';

const skip = needs('root', 'netns', 'etcd', PETREL_BINS);
const VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

type Result = {
  cniVersion: string;
  interfaces: { name: string; mac?: string; sandbox?: string; mtu?: number }[];
  ips: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes: { dst: string; gw?: string }[];
  dns: Record<string, unknown>;
};

interface IpAddr {
  ifname: string;
  mtu: number;
  address?: string;
  flags: string[];
  addr_info: { local: string; prefixlen: number; family: string }[];
}
interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  scope?: string;
}

let seq = 0;
function cid(): string {
  seq++;
  return `ctr${process.pid}x${seq}`;
}

describe('petrel plugin in namespaces', { skip }, () => {
  let w: World;
  before(async () => {
    w = await startWorld([
      { name: 'default', cidr: '10.123.0.0/16' },
      { name: 'vx', cidr: '10.124.0.0/16', vxlanMode: 'Always' },
    ]);
  });
  after(async () => {
    await w?.destroy();
  });

  const podCall = (command: string, id: string, pod: Netns | string, extra: Partial<CniCall> = {}): CniCall => ({
    command,
    containerId: id,
    netns: typeof pod === 'string' ? pod : pod.path,
    ifName: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=ns-${id};K8S_POD_NAME=pod-${id}`,
    ...extra,
  });
  const podIp = (r: Result) => (r.ips[0]?.address ?? '').split('/')[0] ?? '';
  const nodeLinks = async () => (await linkNames(w.node)).filter((n) => n.startsWith('petr'));

  async function add(pod: Netns, id: string, conf: Record<string, unknown> = petrelConf(w)): Promise<Result> {
    const r = await w.cni('petrel', podCall('ADD', id, pod), conf);
    assert.equal(r.code, 0, `ADD failed: ${r.stdout} ${r.stderr}`);
    return r.json as unknown as Result;
  }

  test('VERSION answers in the request version for every supported version', async () => {
    for (const v of VERSIONS) {
      const r = await w.cni('petrel', { command: 'VERSION' }, { cniVersion: v });
      assert.equal(r.code, 0);
      assert.deepEqual(r.json, { cniVersion: v, supportedVersions: VERSIONS });
    }
  });

  for (const v of VERSIONS) {
    test(`ADD/CHECK/DEL/DEL at cniVersion ${v}: kernel state, result shape, release`, async () => {
      const pod = await w.pod();
      const id = cid();
      const conf = petrelConf(w, { dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] } }, v);
      const res = await add(pod, id, conf);
      assert.equal(res.cniVersion, v);
      assert.equal(res.interfaces.length, 2);
      const [host, podIf] = res.interfaces;
      assert.match(host?.name ?? '', /^petr[0-9a-f]{11}$/);
      assert.equal(host?.sandbox, undefined);
      assert.equal(podIf?.name, 'eth0');
      assert.equal(podIf?.sandbox, pod.path);
      assert.equal(res.ips.length, 1);
      assert.equal(res.ips[0]?.interface, 1);
      assert.match(res.ips[0]?.address ?? '', /^10\.123\.\d+\.\d+\/32$/);
      assert.equal(res.ips[0]?.version, v < '1.0.0' ? '4' : undefined);
      assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
      assert.deepEqual(res.dns, { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] });
      const ip = podIp(res);

      // Pod side: /32 on eth0 with the reported MAC, link route to the gateway, default via it.
      const [eth0] = await pod.ipJson<IpAddr[]>('addr', 'show', 'dev', 'eth0');
      assert.ok(eth0?.flags.includes('UP'));
      assert.equal(eth0?.address, podIf?.mac);
      assert.deepEqual(
        eth0?.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
        [`${ip}/32`],
      );
      const routes = await pod.ipJson<IpRoute[]>('route', 'show');
      assert.ok(routes.some((r) => r.dst === '169.254.1.1' && r.scope === 'link' && r.dev === 'eth0'));
      assert.ok(routes.some((r) => r.dst === 'default' && r.gateway === '169.254.1.1'));
      // Node side: host veth up, /32 route to the pod, the sysctls a routed pod needs.
      const hostRoutes = await w.node.ipJson<IpRoute[]>('route', 'show', 'dev', host?.name ?? '');
      assert.deepEqual(
        hostRoutes.map((r) => [r.dst, r.scope]),
        [[ip, 'link']],
      );
      for (const [k, want] of [
        [`net.ipv4.conf.${host?.name}.proxy_arp`, '1'],
        [`net.ipv4.conf.${host?.name}.forwarding`, '1'],
        [`net.ipv4.conf.${host?.name}.rp_filter`, '1'],
        [`net.ipv6.conf.${host?.name}.accept_ra`, '0'],
        [`net.ipv4.neigh.${host?.name}.proxy_delay`, '0'],
      ] as const) {
        const r = await w.node.exec('sysctl', ['-n', k]);
        assert.equal(r.stdout.trim(), want, k);
      }
      assert.equal((await allocations(w)).get(ip), `petrel-test.${id}`);

      const check = await w.cni('petrel', podCall('CHECK', id, pod), { ...conf, prevResult: res });
      if (v < '0.4.0') assert.equal((check.json as { code?: number }).code, 1, 'CHECK before 0.4.0 is a version error');
      else assert.equal(check.code, 0, `CHECK: ${check.stdout}`);

      const prev = v < '0.4.0' ? {} : { prevResult: res };
      const del = await w.cni('petrel', podCall('DEL', id, pod), { ...conf, ...prev });
      assert.equal(del.code, 0, del.stdout);
      assert.equal(del.stdout, '');
      assert.deepEqual(await linkNames(pod), ['lo']);
      assert.ok(!(await nodeLinks()).includes(host?.name ?? ''));
      assert.equal((await allocations(w)).has(ip), false);
      const again = await w.cni('petrel', podCall('DEL', id, pod), { ...conf, ...prev });
      assert.equal(again.code, 0, `second DEL: ${again.stdout}`);
    });
  }

  test('repeated ADD for the same container and interface returns the same address', async () => {
    const pod = await w.pod();
    const id = cid();
    const a = await add(pod, id);
    const b = await add(pod, id);
    assert.equal(podIp(b), podIp(a));
    assert.equal(b.interfaces[0]?.name, a.interfaces[0]?.name);
    // The repeat's assignment found the handle held (a new pod's is not read first): it took no
    // second address and left the handle and block records consistent.
    const held = [...(await allocations(w))].filter(([, h]) => h === `petrel-test.${id}`).map(([ip]) => ip);
    assert.deepEqual(held, [podIp(a)]);
    const check = await w.petrelctl('ipam', 'check');
    assert.equal(check.code, 0, `${check.stdout}${check.stderr}`);
    assert.deepEqual(await linkNames(pod), ['lo', 'eth0']);
    assert.equal((await nodeLinks()).filter((n) => n === a.interfaces[0]?.name).length, 1);
    const srv = await startEchoServer(pod, '0.0.0.0', 8080, 'again');
    try {
      assert.match(await tcpRequest(w.node, podIp(b), 8080), /^again /);
    } finally {
      await srv.stop();
    }
    assert.equal((await w.cni('petrel', podCall('DEL', id, pod), petrelConf(w))).code, 0);
  });

  test('DEL after the netns is gone, and DEL with empty CNI_NETNS and no prevResult, release the address', async () => {
    const pod = await w.pod();
    const id = cid();
    const res = await add(pod, id);
    const path = pod.path;
    await pod.delete();
    const del = await w.cni('petrel', podCall('DEL', id, path), { ...petrelConf(w), prevResult: res });
    assert.equal(del.code, 0, del.stdout);
    assert.equal((await allocations(w)).has(podIp(res)), false);
    assert.ok(!(await nodeLinks()).includes(res.interfaces[0]?.name ?? ''));

    const pod2 = await w.pod();
    const id2 = cid();
    const res2 = await add(pod2, id2);
    const del2 = await w.cni('petrel', podCall('DEL', id2, ''), petrelConf(w));
    assert.equal(del2.code, 0, del2.stdout);
    assert.equal((await allocations(w)).has(podIp(res2)), false);
    // DEL of something never added succeeds too.
    assert.equal((await w.cni('petrel', podCall('DEL', cid(), ''), petrelConf(w))).code, 0);
  });

  test('CHECK reports a deleted route (code 101) and an unknown container (code 3)', async () => {
    const pod = await w.pod();
    const id = cid();
    const res = await add(pod, id);
    const conf = { ...petrelConf(w), prevResult: res };
    assert.equal((await w.cni('petrel', podCall('CHECK', id, pod), conf)).code, 0);
    await pod.ip('route', 'del', 'default');
    const bad = await w.cni('petrel', podCall('CHECK', id, pod), conf);
    assert.equal(bad.code, 1);
    assert.equal((bad.json as { code: number }).code, 101);
    assert.match(String((bad.json as { details: string }).details), /route 0\.0\.0\.0\/0 via 169\.254\.1\.1 missing/);
    await w.node.ip('route', 'del', `${podIp(res)}/32`);
    const bad2 = await w.cni('petrel', podCall('CHECK', id, pod), conf);
    assert.match(String((bad2.json as { details: string }).details), /host route/);
    const unknown = await w.cni('petrel', podCall('CHECK', cid(), pod), conf);
    assert.equal((unknown.json as { code: number }).code, 3);
    assert.equal((await w.cni('petrel', podCall('DEL', id, pod), conf)).code, 0);
  });

  test('every error code: 1, 2, 3, 4, 5, 6, 7, 11', async () => {
    const pod = await w.pod();
    const code = async (call: CniCall, stdin: unknown) => {
      const r = await w.cni('petrel', call, stdin);
      assert.equal(r.code, 1, `expected failure: ${r.stdout}`);
      const j = r.json as { code: number; msg: string; cniVersion: string };
      assert.equal(typeof j.msg, 'string');
      return j;
    };
    const call = podCall('ADD', cid(), pod);
    assert.equal((await code(call, petrelConf(w, {}, '0.2.0'))).code, 1);
    assert.equal((await code(call, petrelConf(w, {}, '2.0.0'))).code, 1);
    assert.equal((await code(call, petrelConf(w, { ipMasq: true }))).code, 2);
    assert.equal((await code(podCall('CHECK', cid(), pod), { ...petrelConf(w), prevResult: {} })).code, 3);
    assert.equal((await code({ ...call, containerId: '' }, petrelConf(w))).code, 4);
    assert.equal((await code({ ...call, netns: '/var/run/netns/petrel-missing-ns' }, petrelConf(w))).code, 4);
    assert.equal((await code({ ...call, command: 'FROB' }, petrelConf(w))).code, 4);
    assert.equal((await code(call, '{"cniVersion": "1.0.0", ')).code, 6);
    assert.equal((await code(call, petrelConf(w, { cniVersion: 'one' }))).code, 6);
    assert.equal((await code(call, petrelConf(w, { name: '' }))).code, 7);
    assert.equal((await code(call, petrelConf(w, { mtu: 12 }))).code, 7);
    // 5: stdin cannot be read (a directory).
    const io = await w.node.exec('sh', ['-c', 'exec "$0" < /', join(pluginDir(), 'petrel')], {
      env: { PATH: process.env.PATH ?? '', CNI_COMMAND: 'ADD' },
    });
    assert.equal(JSON.parse(io.stdout).code, 5);
    // 11: agent unreachable; the message names the socket and nothing is left behind.
    const gone = await code(call, petrelConf(w, { agentSocket: `${w.tmp}/no-agent.sock` }));
    assert.equal(gone.code, 11);
    assert.match(JSON.stringify(gone), /no-agent\.sock/);
    assert.deepEqual(await linkNames(pod), ['lo']);
  });

  test('agent stopped: ADD answers 11 and leaks nothing; after restart ADD works', async () => {
    const pod = await w.pod();
    const id = cid();
    const before = await nodeLinks();
    await w.stopAgent();
    try {
      const r = await w.cni('petrel', podCall('ADD', id, pod), petrelConf(w));
      assert.equal((r.json as { code: number }).code, 11);
      assert.match(String((r.json as { msg: string }).msg), new RegExp(w.socket.replace(/[.]/g, '\\.')));
      assert.deepEqual(await nodeLinks(), before);
      assert.deepEqual(await linkNames(pod), ['lo']);
    } finally {
      await w.startAgent();
    }
    await add(pod, id);
    assert.equal((await w.cni('petrel', podCall('DEL', id, pod), petrelConf(w))).code, 0);
  });

  test('a failure midway through ADD (host route taken) leaves no veth, route or address behind', async () => {
    const pod = await w.pod();
    const id = cid();
    const ip = '10.123.200.7';
    // Something else already routes the address: the host route step fails after the veth exists.
    await w.node.ip('route', 'add', `${ip}/32`, 'dev', 'uplink0');
    const linksBefore = await nodeLinks();
    try {
      const conf = { ...petrelConf(w), capabilities: { ips: true }, runtimeConfig: { IPs: [`${ip}/32`] } };
      const r = await w.cni('petrel', podCall('ADD', id, pod), conf);
      assert.equal(r.code, 1, r.stdout);
      assert.match(String((r.json as { details: string }).details), /File exists/);
      assert.deepEqual(await nodeLinks(), linksBefore);
      assert.deepEqual(await linkNames(pod), ['lo']);
      const routes = await w.node.ipJson<IpRoute[]>('route', 'show');
      assert.ok(!routes.some((x) => x.dev?.startsWith('petr')), JSON.stringify(routes));
      assert.equal((await allocations(w)).has(ip), false);
    } finally {
      await w.node.ip('route', 'del', `${ip}/32`);
    }
    // The same static address now works (runtimeConfig keys matched case-insensitively).
    const conf = { ...petrelConf(w), runtimeConfig: { Ips: [ip] } };
    const ok = await w.cni('petrel', podCall('ADD', id, pod), conf);
    assert.equal(ok.code, 0, ok.stdout);
    assert.equal(podIp(ok.json as unknown as Result), ip);
    assert.equal((await w.cni('petrel', podCall('DEL', id, pod), conf)).code, 0);
  });

  test('CNI_IFNAME already present in the netns fails ADD and releases the address', async () => {
    const pod = await w.pod();
    await pod.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0');
    const before = await allocations(w);
    const r = await w.cni('petrel', podCall('ADD', cid(), pod), petrelConf(w));
    assert.equal(r.code, 1);
    assert.match(String((r.json as { msg: string }).msg), /eth0 already exists/);
    assert.deepEqual([...(await allocations(w)).keys()].sort(), [...before.keys()].sort());
  });

  test('32 concurrent ADDs get distinct addresses; connectivity node<->pod and pod<->pod', async () => {
    const pods = await Promise.all(Array.from({ length: 32 }, () => w.pod()));
    const ids = pods.map(() => cid());
    const results = await Promise.all(pods.map((p, i) => add(p, ids[i] as string)));
    const ips = results.map(podIp);
    assert.equal(new Set(ips).size, 32);
    assert.equal(new Set(results.map((r) => r.interfaces[0]?.name)).size, 32);
    const [p0, p1] = pods as [Netns, Netns];
    const [ip0, ip1] = ips as [string, string];
    const servers = [
      await startEchoServer(p0, '0.0.0.0', 7000, 'pod0'),
      await startEchoServer(p1, '0.0.0.0', 7000, 'pod1'),
      await startEchoServer(w.node, NODE_IP, 7001, 'node'),
    ];
    try {
      assert.equal(await tcpRequest(w.node, ip0, 7000), `pod0 ${NODE_IP}`);
      assert.equal(await tcpRequest(p0, NODE_IP, 7001), `node ${ip0}`);
      assert.equal(await tcpRequest(p0, ip1, 7000), `pod1 ${ip0}`);
      assert.equal(await tcpRequest(p1, ip0, 7000), `pod0 ${ip1}`);
      // From outside the node, routed through it.
      assert.equal(await tcpRequest(w.ext, ip1, 7000), `pod1 ${EXT_IP}`);
    } finally {
      for (const s of servers) await s.stop();
    }
    const dels = await Promise.all(
      pods.map((p, i) => w.cni('petrel', podCall('DEL', ids[i] as string, p), petrelConf(w))),
    );
    assert.deepEqual(
      dels.map((d) => d.code),
      dels.map(() => 0),
    );
    const left = await allocations(w);
    assert.ok(ips.every((ip) => !left.has(ip)));
  });

  test('MTU: configured value, else host MTU minus the pool encapsulation (VXLAN 50)', async () => {
    const pod = await w.pod();
    const id = cid();
    const vx = await add(pod, id, petrelConf(w, { ipam: { type: 'petrel-ipam', pools: ['vx'] } }, '1.1.0'));
    assert.match(podIp(vx), /^10\.124\./);
    const [eth0] = await pod.ipJson<IpAddr[]>('link', 'show', 'dev', 'eth0');
    assert.equal(eth0?.mtu, 1450);
    assert.equal(vx.interfaces[1]?.mtu, 1450);
    assert.equal((await w.cni('petrel', podCall('DEL', id, pod), petrelConf(w))).code, 0);
    const id2 = cid();
    await add(pod, id2, petrelConf(w, { mtu: 1300 }));
    const [eth0b] = await pod.ipJson<IpAddr[]>('link', 'show', 'dev', 'eth0');
    assert.equal(eth0b?.mtu, 1300);
    assert.equal((await w.cni('petrel', podCall('DEL', id2, pod), petrelConf(w))).code, 0);
  });

  test('runtimeConfig dns in Go spelling, CNI_ARGS in any order, owner attributes recorded', async () => {
    const pod = await w.pod();
    const id = cid();
    const conf = petrelConf(w, {
      capabilities: { dns: true },
      runtimeConfig: { dns: { Servers: ['10.96.0.10'], Searches: ['a.svc'], Options: ['ndots:5'] } },
    });
    const r = await w.cni(
      'petrel',
      podCall('ADD', id, pod, {
        args: `K8S_POD_INFRA_CONTAINER_ID=${id};K8S_POD_NAME=web;IgnoreUnknown=1;K8S_POD_UID=u1;K8S_POD_NAMESPACE=shop`,
      }),
      conf,
    );
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual((r.json as unknown as Result).dns, {
      nameservers: ['10.96.0.10'],
      search: ['a.svc'],
      options: ['ndots:5'],
    });
    const show = await w.petrelctl('ipam', 'show', '--json');
    assert.match(show.stdout, /"pod": "web"/);
    assert.match(show.stdout, /"namespace": "shop"/);
    assert.equal((await w.cni('petrel', podCall('DEL', id, pod), conf)).code, 0);
  });

  test('STATUS (1.1.0) succeeds with the agent up, 50 when unreachable; GC releases unlisted attachments', async () => {
    const st = await w.cni('petrel', { command: 'STATUS' }, petrelConf(w, {}, '1.1.0'));
    assert.equal(st.code, 0, st.stdout);
    const down = await w.cni(
      'petrel',
      { command: 'STATUS' },
      petrelConf(w, { agentSocket: '/nonexistent/x.sock' }, '1.1.0'),
    );
    assert.equal((down.json as { code: number }).code, 50);
    const old = await w.cni('petrel', { command: 'STATUS' }, petrelConf(w, {}, '1.0.0'));
    assert.equal((old.json as { code: number }).code, 1);

    const [pa, pb] = [await w.pod(), await w.pod()];
    const [ia, ib] = [cid(), cid()];
    const ra = await add(pa, ia);
    const rb = await add(pb, ib);
    const gc = await w.cni(
      'petrel',
      { command: 'GC' },
      {
        ...petrelConf(w, {}, '1.1.0'),
        'cni.dev/valid-attachments': [{ containerID: ia, ifname: 'eth0' }],
      },
    );
    assert.equal(gc.code, 0, gc.stdout);
    const left = await allocations(w);
    assert.ok(left.has(podIp(ra)));
    assert.ok(!left.has(podIp(rb)));
    for (const [p, i] of [
      [pa, ia],
      [pb, ib],
    ] as const) {
      assert.equal((await w.cni('petrel', podCall('DEL', i, p), petrelConf(w))).code, 0);
    }
  });
});
