import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeNetns } from './fake-netns.js';
import { hostVethName, podMac } from './names.js';
import { planCreate, planHostUp, planPod, planSysctls, removeVeth, setupVeth, type VethPlan } from './veth.js';

const plan: VethPlan = {
  containerId: 'c1',
  netns: '/var/run/netns/p',
  ifName: 'eth0',
  hostVeth: 'petr0123456789a',
  podMac: '02:11:22:33:44:55',
  alias: 'petrel:c1:eth0',
  mtu: 1450,
  addresses: [{ ip: '10.0.0.5', family: 4 }],
};

test('IPv4 plan: veth straight into the pod netns, /32, link route to 169.254.1.1, host /32 route', () => {
  assert.deepEqual(planCreate(plan, false), [
    'link add petr0123456789a mtu 1450 address ee:ee:ee:ee:ee:ee type veth peer name eth0 mtu 1450 address 02:11:22:33:44:55 netns /var/run/netns/p',
    'link set petr0123456789a alias petrel:c1:eth0',
  ]);
  assert.deepEqual(planHostUp(plan), [
    'link set petr0123456789a up',
    'route add 10.0.0.5/32 dev petr0123456789a scope link',
  ]);
  assert.deepEqual(planPod(plan), [
    'link set eth0 up',
    'addr add 10.0.0.5/32 dev eth0',
    'route add 169.254.1.1 dev eth0 scope link',
    'route add default via 169.254.1.1 dev eth0',
  ]);
  assert.deepEqual(new Map(planSysctls(plan)).get('ipv4/conf/petr0123456789a/proxy_arp'), '1');
});

test('IPv6 plan: /128 without DAD, default via the host end link-local, proxy_ndp, DAD off before up', async () => {
  const p6: VethPlan = { ...plan, addresses: [{ ip: 'fd00::5', family: 6 }] };
  assert.deepEqual(planPod(p6), [
    'link set eth0 up',
    'addr add fd00::5/128 dev eth0 nodad',
    'route add default via fe80::ecee:eeff:feee:eeee dev eth0',
  ]);
  const s = new Map(planSysctls(p6));
  assert.equal(s.get('ipv6/conf/petr0123456789a/proxy_ndp'), '1');
  assert.equal(s.get('ipv6/conf/petr0123456789a/accept_dad'), '0');
  const fake = new FakeNetns();
  await setupVeth(fake, p6);
  const order = fake.calls.map((c) => `${c.op}:${c.lines[0]}`);
  const dad = order.indexOf('hostSysctl:ipv6/conf/petr0123456789a/accept_dad');
  const up = order.indexOf('hostBatch:link set petr0123456789a up');
  assert.ok(dad >= 0 && up > dad, order.join('\n'));
});

test('IPv4 setup uses one node batch and one pod batch', async () => {
  const fake = new FakeNetns();
  await setupVeth(fake, plan);
  assert.deepEqual(
    fake.calls.filter((c) => c.op !== 'hostSysctl').map((c) => c.op),
    ['hostBatch', 'podBatch'],
  );
});

test('removeVeth: pod side when the netns exists; host side only with our alias', async () => {
  const fake = new FakeNetns();
  fake.hostLinks.set(plan.hostVeth, { alias: 'petrel:other:eth0' });
  await removeVeth(fake, { ...plan, netns: '' });
  assert.ok(fake.hostLinks.has(plan.hostVeth));
  fake.hostLinks.set(plan.hostVeth, { alias: plan.alias });
  await removeVeth(fake, { ...plan, netns: '' });
  assert.ok(!fake.hostLinks.has(plan.hostVeth));
  await removeVeth(fake, { ...plan, netns: '' });
});

test('names: host veth 15 chars, from namespace/pod (stable across sandboxes) else container ID', () => {
  const a = hostVethName({
    containerId: 'aaa',
    ifName: 'eth0',
    args: { podNamespace: 'ns', podName: 'p', ignoreUnknown: true },
  });
  const b = hostVethName({
    containerId: 'bbb',
    ifName: 'eth0',
    args: { podNamespace: 'ns', podName: 'p', ignoreUnknown: true },
  });
  const c = hostVethName({
    containerId: 'aaa',
    ifName: 'eth1',
    args: { podNamespace: 'ns', podName: 'p', ignoreUnknown: true },
  });
  const d = hostVethName({ containerId: 'aaa', ifName: 'eth0', args: { ignoreUnknown: false } });
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.notEqual(a, d);
  for (const n of [a, c, d]) assert.match(n, /^petr[0-9a-f]{11}$/);
  const mac = podMac('c1', 'eth0');
  assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  const first = Number.parseInt(mac.slice(0, 2), 16);
  assert.equal(first & 1, 0, 'unicast');
  assert.equal(first & 2, 2, 'locally administered');
});
