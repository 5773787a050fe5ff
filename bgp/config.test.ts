import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BgpConfigError, parseBgpConfig, parseBgpConfigText } from './config.js';

const ISSUE_EXAMPLE = {
  asn: 64512,
  routerId: '10.0.0.1',
  listen: { address: '10.0.0.1', port: 179 },
  status: { address: '127.0.0.1', port: 9179 },
  gracefulRestart: { restartTimeSec: 120 },
  routeReflector: { clusterId: '10.0.0.1' },
  peers: [
    {
      address: '10.0.0.2',
      asn: 64512,
      port: 179,
      passive: false,
      holdTimeSec: 90,
      routeReflectorClient: false,
      families: ['ipv4', 'ipv6'],
    },
  ],
  announce: ['10.244.1.0/26', 'fd00:10:244:1::/122'],
};

test('the example config of issue 4 parses', () => {
  const c = parseBgpConfig(ISSUE_EXAMPLE);
  assert.equal(c.speaker.asn, 64512);
  assert.deepEqual(c.speaker.routeReflector, { clusterId: '10.0.0.1' });
  assert.deepEqual(c.status, { address: '127.0.0.1', port: 9179 });
  assert.deepEqual(c.peers[0]?.families, ['ipv4', 'ipv6']);
  assert.deepEqual(
    c.announce.map((a) => a.prefix),
    ['10.244.1.0/26', 'fd00:10:244:1::/122'],
  );
});

test('gracefulRestart.selectionDeferralSec (RFC 4724 §4.1) parses with restarting', () => {
  const c = parseBgpConfig({
    ...ISSUE_EXAMPLE,
    gracefulRestart: { restartTimeSec: 120, restarting: true, selectionDeferralSec: 30 },
  });
  assert.deepEqual(c.speaker.gracefulRestart, { restartTimeSec: 120, restarting: true, selectionDeferralSec: 30 });
});

const BAD: [string, unknown, string][] = [
  [
    'selection deferral 0',
    { ...ISSUE_EXAMPLE, gracefulRestart: { restartTimeSec: 120, selectionDeferralSec: 0 } },
    'gracefulRestart.selectionDeferralSec',
  ],
  ['asn out of range', { ...ISSUE_EXAMPLE, asn: 0 }, 'asn'],
  ['router ID not IPv4', { ...ISSUE_EXAMPLE, routerId: 'fd00::1' }, 'routerId'],
  ['unknown top-level key', { ...ISSUE_EXAMPLE, peer: [] }, 'peer'],
  [
    'unknown peer key',
    { ...ISSUE_EXAMPLE, peers: [{ address: '10.0.0.2', asn: 1, holdtime: 3 }] },
    'peers[0].holdtime',
  ],
  [
    'hold time 2',
    { ...ISSUE_EXAMPLE, peers: [{ address: '10.0.0.2', asn: 1, holdTimeSec: 2 }] },
    'peers[0].holdTimeSec',
  ],
  [
    'bad family',
    { ...ISSUE_EXAMPLE, peers: [{ address: '10.0.0.2', asn: 1, families: ['ipx'] }] },
    'peers[0].families[0]',
  ],
  ['bad announce prefix', { ...ISSUE_EXAMPLE, announce: ['10.244.1.0/33'] }, 'announce[0]'],
  [
    'duplicate peer',
    {
      ...ISSUE_EXAMPLE,
      peers: [
        { address: '10.0.0.2', asn: 1 },
        { address: '10.0.0.2', asn: 2 },
      ],
    },
    'peers[1].address',
  ],
  [
    'bad filter prefix',
    {
      ...ISSUE_EXAMPLE,
      peers: [
        { address: '10.0.0.2', asn: 1, importFilter: { rules: [{ action: 'accept', prefixes: [{ prefix: 'x' }] }] } },
      ],
    },
    'peers[0].importFilter.rules[0].prefixes[0].prefix',
  ],
  [
    'bad max-prefix action',
    { ...ISSUE_EXAMPLE, peers: [{ address: '10.0.0.2', asn: 1, maxPrefixes: { limit: 5, action: 'explode' } }] },
    'peers[0].maxPrefixes.action',
  ],
];

for (const [name, cfg, path] of BAD) {
  test(`invalid config: ${name} -> one BgpConfigError naming ${path}`, () => {
    assert.throws(
      () => parseBgpConfig(cfg),
      (e: unknown) => e instanceof BgpConfigError && e.path === path,
    );
  });
}

test('invalid JSON is a BgpConfigError too', () => {
  assert.throws(() => parseBgpConfigText('{ "asn": '), BgpConfigError);
});
