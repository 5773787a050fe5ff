import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectAddress, type Iface, internalIpsOf, parseDetectMethod, parseIpAddrJson } from './autodetect.js';

const a4 = (address: string, prefixLen = 24, scope = 'global') => ({ address, prefixLen, family: 4 as const, scope });
const a6 = (address: string, prefixLen = 64, scope = 'global') => ({ address, prefixLen, family: 6 as const, scope });
const IFACES: Iface[] = [
  { name: 'lo', up: true, addrs: [a4('127.0.0.1', 8, 'host'), a6('::1', 128, 'host')] },
  { name: 'docker0', up: true, addrs: [a4('172.17.0.1', 16)] },
  { name: 'petr1234', up: true, addrs: [a4('10.244.0.1', 32)] },
  { name: 'eth-down', up: false, addrs: [a4('192.168.9.1')] },
  { name: 'eth0', up: true, addrs: [a6('fe80::1', 64, 'link'), a4('10.0.0.5'), a6('fd00::5')] },
  { name: 'eth1', up: true, addrs: [a4('192.168.1.5')] },
];

const ROWS: [string, string, 4 | 6, string | undefined, string | null][] = [
  ['first-found skips lo, docker, petr, down', 'first-found', 4, undefined, '10.0.0.5/24'],
  ['first-found v6 skips link-local', 'first-found', 6, undefined, 'fd00::5/64'],
  ['interface regex is anchored', 'interface=eth1', 4, undefined, '192.168.1.5/24'],
  ['interface regex alternatives', 'interface=eth[1-9]|eth0', 4, undefined, '10.0.0.5/24'],
  ['interface without match', 'interface=ens.*', 4, undefined, null],
  ['skip-interface', 'skip-interface=eth0', 4, undefined, '192.168.1.5/24'],
  ['cidr', 'cidr=192.168.0.0/16', 4, undefined, '192.168.1.5/24'],
  ['cidr list, v6', 'cidr=10.9.0.0/16,fd00::/8', 6, undefined, 'fd00::5/64'],
  ['cidr no match', 'cidr=10.9.0.0/16', 4, undefined, null],
  ['can-reach uses the kernel source', 'can-reach=192.168.1.1', 4, '192.168.1.5', '192.168.1.5/24'],
  ['can-reach without route', 'can-reach=8.8.8.8', 4, undefined, null],
];
for (const [name, method, family, src, want] of ROWS) {
  test(`autodetect ${name}`, () => {
    const r = detectAddress(IFACES, family, parseDetectMethod(method), src);
    if (want === null) assert.equal(r.ok, false);
    else assert.deepEqual(r.ok && r.addrLen, want);
  });
}

test('bad methods name the value', () => {
  for (const m of ['nearest', 'interface=', 'interface=a(', 'cidr=1.2.3.4/40', 'can-reach=host']) {
    assert.throws(
      () => parseDetectMethod(m),
      (e: unknown) => e instanceof Error && e.message.includes(JSON.stringify(m)),
    );
  }
});

test('parses ip -json addr', () => {
  const got = parseIpAddrJson(
    JSON.stringify([
      {
        ifname: 'eth0',
        flags: ['BROADCAST', 'UP'],
        addr_info: [{ family: 'inet', local: '10.0.0.5', prefixlen: 24, scope: 'global' }],
      },
      { ifname: 'eth1', flags: ['BROADCAST'], addr_info: [] },
    ]),
  );
  assert.deepEqual(got, [
    { name: 'eth0', up: true, addrs: [a4('10.0.0.5')] },
    { name: 'eth1', up: false, addrs: [] },
  ]);
});

test('autodetect kubernetes-internal-ip: the Node InternalIP of the family, with its interface prefix length', () => {
  const m = parseDetectMethod('kubernetes-internal-ip');
  assert.deepEqual(detectAddress(IFACES, 4, m, undefined, ['192.168.1.5', 'fd00::5']), {
    ok: true,
    addrLen: '192.168.1.5/24',
    iface: 'eth1',
  });
  assert.deepEqual(detectAddress(IFACES, 6, m, undefined, ['192.168.1.5', 'fd00::5']), {
    ok: true,
    addrLen: 'fd00::5/64',
    iface: 'eth0',
  });
  const none = detectAddress(IFACES, 6, m, undefined, ['192.168.1.5']);
  assert.equal(none.ok, false);
  assert.match(!none.ok ? none.error : '', /no IPv6 InternalIP/);
  const elsewhere = detectAddress(IFACES, 4, m, undefined, ['10.1.2.3']);
  assert.match(!elsewhere.ok ? elsewhere.error : '', /10\.1\.2\.3 is on no interface/);
  assert.deepEqual(
    internalIpsOf({
      status: {
        addresses: [
          { type: 'Hostname', address: 'n1' },
          { type: 'InternalIP', address: '10.0.0.5' },
          { type: 'ExternalIP', address: '203.0.113.5' },
        ],
      },
    }),
    ['10.0.0.5'],
  );
});
