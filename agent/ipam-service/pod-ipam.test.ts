import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fakePool } from './fake-ipam.js';
import { applyPodIpam, mentionsPodIpam, needsNamespace, type PodIpamRequest, podAnnotationsFrom } from './pod-ipam.js';

const POOLS = [
  fakePool('blue', '10.1.0.0/16'),
  fakePool('red', '10.2.0.0/16'),
  fakePool('off', '10.3.0.0/16', { disabled: true }),
  fakePool('six', 'fd00:1::/64'),
  fakePool('six-b', 'fd00:2::/64'),
];
const V4 = 'petrel.io/ipv4pools';
const V6 = 'petrel.io/ipv6pools';
const ADDRS = 'petrel.io/ipAddrs';

const cases: {
  name: string;
  req?: PodIpamRequest;
  pod?: Record<string, string>;
  ns?: Record<string, string>;
  want: PodIpamRequest | RegExp;
}[] = [
  { name: 'no annotations: the request as sent', want: { num4: 1, num6: 0 } },
  {
    name: 'unrelated annotations change nothing',
    pod: { 'example.com/x': '1' },
    req: { num4: 1, num6: 1, pools: ['red', 'six'] },
    want: { num4: 1, num6: 1, pools: ['red', 'six'] },
  },
  {
    name: 'ipv4pools by name; IPv6 keeps every pool',
    pod: { [V4]: '["red"]' },
    req: { num4: 1, num6: 1 },
    want: { num4: 1, num6: 1, pools: ['red', 'six', 'six-b'] },
  },
  {
    name: 'ipv4pools by CIDR, duplicates once',
    pod: { [V4]: '["10.1.0.0/16", "blue", " red "]' },
    want: { num4: 1, num6: 0, pools: ['blue', 'red', 'six', 'six-b'] },
  },
  {
    name: "the pod's annotation beats the namespace's, per family",
    pod: { [V4]: '["red"]' },
    ns: { [V4]: '["blue"]', [V6]: '["six-b"]' },
    req: { num4: 1, num6: 1 },
    want: { num4: 1, num6: 1, pools: ['red', 'six-b'] },
  },
  {
    name: "the namespace's annotation alone applies",
    ns: { [V4]: '["blue"]' },
    want: { num4: 1, num6: 0, pools: ['blue', 'six', 'six-b'] },
  },
  {
    name: "an annotation beats the network config's pools; the other family keeps the config's",
    pod: { [V6]: '["six-b"]' },
    req: { num4: 1, num6: 1, pools: ['red', 'six'] },
    want: { num4: 1, num6: 1, pools: ['red', 'six-b'] },
  },
  {
    name: 'ipAddrs: exactly those addresses, no automatic ones; pool annotations ignored',
    pod: { [ADDRS]: '["10.2.0.7", "fd00:1::7"]', [V4]: '["blue"]' },
    req: { num4: 1, num6: 1 },
    want: { num4: 0, num6: 0, ips: ['10.2.0.7', 'fd00:1::7'] },
  },
  {
    name: "ipAddrs keeps the network config's pools (the address is checked against them)",
    pod: { [ADDRS]: '["10.2.0.7"]' },
    req: { num4: 1, num6: 0, pools: ['red'] },
    want: { num4: 0, num6: 0, ips: ['10.2.0.7'], pools: ['red'] },
  },
  { name: 'not JSON', pod: { [V4]: 'red' }, want: /petrel\.io\/ipv4pools: not JSON: "red"/ },
  { name: 'not a list', pod: { [V4]: '"red"' }, want: /expected a JSON list of strings/ },
  { name: 'a list of numbers', pod: { [ADDRS]: '[1]' }, want: /ipAddrs: expected a JSON list of strings/ },
  { name: 'an empty list', pod: { [V6]: '[]' }, want: /ipv6pools: the list is empty/ },
  { name: 'an unknown pool', pod: { [V4]: '["green"]' }, want: /no IP pool named or with CIDR "green"/ },
  {
    name: 'an IPv6 pool in ipv4pools',
    pod: { [V4]: '["six"]' },
    want: /pool six \(fd00:1::\/64\) is not an IPv4 pool/,
  },
  { name: 'a disabled pool', pod: { [V4]: '["off"]' }, want: /pool off is disabled/ },
  {
    name: "a bad namespace annotation says it is the namespace's",
    ns: { [V4]: '["green"]' },
    want: /ipv4pools \(namespace\): no IP pool/,
  },
  {
    name: 'ipAddrs: not an address',
    pod: { [ADDRS]: '["10.2.0.7/32"]' },
    want: /"10\.2\.0\.7\/32" is not an IP address/,
  },
  { name: 'ipAddrs: two IPv4', pod: { [ADDRS]: '["10.2.0.7","10.2.0.8"]' }, want: /more than one IPv4 address/ },
  {
    name: 'ipAddrs: a family the network does not assign',
    pod: { [ADDRS]: '["fd00:1::7"]' },
    want: /fd00:1::7 is IPv6, and this network assigns no IPv6/,
  },
  {
    name: 'ipAddrs and a static address from the runtime',
    pod: { [ADDRS]: '["10.2.0.7"]' },
    req: { num4: 1, num6: 0, ips: ['10.2.0.9'] },
    want: /ipAddrs and a static address from the runtime \(10\.2\.0\.9\) both given/,
  },
];

for (const c of cases) {
  test(`applyPodIpam: ${c.name}`, () => {
    const r = applyPodIpam(c.req ?? { num4: 1, num6: 0 }, c.pod ?? {}, c.ns ?? {}, POOLS);
    if (c.want instanceof RegExp) {
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.error, c.want);
    } else {
      assert.ok(r.ok, r.ok ? '' : r.error);
      assert.deepEqual(r.req, c.want);
    }
  });
}

test('mentionsPodIpam: any of the three on the pod, a pool one on the namespace', () => {
  assert.equal(mentionsPodIpam({}, {}), false);
  assert.equal(mentionsPodIpam({ 'example.com/x': '1' }, { 'example.com/y': '2' }), false);
  assert.equal(mentionsPodIpam({ [ADDRS]: '["10.0.0.1"]' }, {}), true);
  assert.equal(mentionsPodIpam({ [V6]: '[]' }, {}), true);
  assert.equal(mentionsPodIpam({}, { [V4]: '["a"]' }), true);
  // ipAddrs is a pod's own: on a namespace it means nothing.
  assert.equal(mentionsPodIpam({}, { [ADDRS]: '["10.0.0.1"]' }), false);
});

test('needsNamespace: only when the pod leaves a family open and pins no address', () => {
  assert.equal(needsNamespace({}), true);
  assert.equal(needsNamespace({ [V4]: '["a"]' }), true);
  assert.equal(needsNamespace({ [V4]: '["a"]', [V6]: '["b"]' }), false);
  assert.equal(needsNamespace({ [ADDRS]: '["10.0.0.1"]' }), false);
});

test('podAnnotationsFrom: the pod, its namespace only when needed, null for a missing pod', async () => {
  const reads: string[] = [];
  const pods: Record<string, Record<string, string>> = {
    'ns1/open': { [V4]: '["red"]' },
    'ns1/pinned': { [ADDRS]: '["10.2.0.7"]' },
  };
  const src = podAnnotationsFrom({
    readPod: async (ns, name) => {
      reads.push(`pod ${ns}/${name}`);
      const a = pods[`${ns}/${name}`];
      return a ? { metadata: { annotations: a } } : null;
    },
    readNamespace: async (name) => {
      reads.push(`ns ${name}`);
      return name === 'ns1' ? { metadata: { annotations: { [V6]: '["six"]' } } } : null;
    },
  });
  assert.deepEqual(await src('ns1', 'open'), { pod: { [V4]: '["red"]' }, namespace: { [V6]: '["six"]' } });
  assert.deepEqual(await src('ns1', 'pinned'), { pod: { [ADDRS]: '["10.2.0.7"]' }, namespace: {} });
  assert.equal(await src('ns1', 'gone'), null);
  assert.deepEqual(reads, ['pod ns1/open', 'ns ns1', 'pod ns1/pinned', 'pod ns1/gone']);
});
