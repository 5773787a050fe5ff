import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CniResult } from './types.js';
import { compareVersions, formatResult } from './version.js';

const r: CniResult = {
  interfaces: [
    { name: 'petrX', mac: 'ee:ee:ee:ee:ee:ee', mtu: 1450 },
    { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/n', mtu: 1450 },
  ],
  ips: [
    { address: '10.0.0.1/32', gateway: '169.254.1.1', interface: 1 },
    { address: 'fd00::1/128', gateway: 'fe80::ecee:eeff:feee:eeee', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1', scope: 0 }],
  dns: { nameservers: ['10.96.0.10'] },
};

test('0.3.x and 0.4.0 results carry ips[].version, drop 1.1.0 extras', () => {
  for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
    const out = formatResult(r, v) as {
      cniVersion: string;
      ips: { version: string }[];
      interfaces: { mtu?: number }[];
      routes: object[];
    };
    assert.equal(out.cniVersion, v);
    assert.deepEqual(
      out.ips.map((i) => i.version),
      ['4', '6'],
    );
    assert.equal(out.interfaces[0]?.mtu, undefined);
    assert.deepEqual(out.routes, [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
  }
});

test('1.0.0 has no ips[].version; 1.1.0 adds interface mtu and route scope', () => {
  const v1 = formatResult(r, '1.0.0') as { ips: object[] };
  assert.deepEqual(v1.ips[0], { interface: 1, address: '10.0.0.1/32', gateway: '169.254.1.1' });
  const v11 = formatResult(r, '1.1.0') as { interfaces: { mtu?: number }[]; routes: { scope?: number }[] };
  assert.equal(v11.interfaces[1]?.mtu, 1450);
  assert.equal(v11.routes[0]?.scope, 0);
});

test('compareVersions orders numerically', () => {
  assert.ok(compareVersions('0.10.0', '0.4.0') > 0);
  assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
  assert.ok(compareVersions('0.3.1', '1.0.0') < 0);
});
