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

test('sendBuffer limits parse; absent -> speaker defaults (4 MiB / 64 MiB)', () => {
  assert.equal(parseBgpConfig(ISSUE_EXAMPLE).speaker.sendBuffer, undefined);
  const both = parseBgpConfig({ ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: 1048576, hardLimitBytes: 8388608 } });
  assert.deepEqual(both.speaker.sendBuffer, { softLimitBytes: 1048576, hardLimitBytes: 8388608 });
  const soft = parseBgpConfig({ ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: 65536 } });
  assert.deepEqual(soft.speaker.sendBuffer, { softLimitBytes: 65536 });
  const hard = parseBgpConfig({ ...ISSUE_EXAMPLE, sendBuffer: { hardLimitBytes: 4194305 } });
  assert.deepEqual(hard.speaker.sendBuffer, { hardLimitBytes: 4194305 });
  assert.deepEqual(parseBgpConfig({ ...ISSUE_EXAMPLE, sendBuffer: {} }).speaker.sendBuffer, {});
});

test('sendBuffer: the error names the key and the offending value', () => {
  const message = (cfg: unknown): string => {
    try {
      parseBgpConfig(cfg);
    } catch (err) {
      assert.ok(err instanceof BgpConfigError);
      return err.message;
    }
    assert.fail('no error');
  };
  assert.match(
    message({ ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: 8388608, hardLimitBytes: 8388608 } }),
    /^sendBuffer\.hardLimitBytes: .*8388608.*8388608/,
  );
  // Only the soft limit given, above the default hard limit: named, with both values.
  assert.match(
    message({ ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: 100 * 1024 * 1024 } }),
    /^sendBuffer\.softLimitBytes: hardLimitBytes \(67108864\) must be greater than softLimitBytes \(104857600\)/,
  );
  assert.match(
    message({ ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: '4MiB' } }),
    /^sendBuffer\.softLimitBytes: must be an integer/,
  );
});

const BAD: [string, unknown, string][] = [
  ['sendBuffer not an object', { ...ISSUE_EXAMPLE, sendBuffer: 4194304 }, 'sendBuffer'],
  ['sendBuffer unknown key', { ...ISSUE_EXAMPLE, sendBuffer: { softLimit: 1 } }, 'sendBuffer.softLimit'],
  [
    'sendBuffer soft limit too small',
    { ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: 1024 } },
    'sendBuffer.softLimitBytes',
  ],
  [
    'sendBuffer soft limit fractional',
    { ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: 65536.5 } },
    'sendBuffer.softLimitBytes',
  ],
  [
    'sendBuffer hard limit negative',
    { ...ISSUE_EXAMPLE, sendBuffer: { hardLimitBytes: -1 } },
    'sendBuffer.hardLimitBytes',
  ],
  [
    'sendBuffer hard limit over 16 GiB',
    { ...ISSUE_EXAMPLE, sendBuffer: { hardLimitBytes: 2 ** 40 } },
    'sendBuffer.hardLimitBytes',
  ],
  [
    'sendBuffer hard limit below the default soft limit',
    { ...ISSUE_EXAMPLE, sendBuffer: { hardLimitBytes: 1048576 } },
    'sendBuffer.hardLimitBytes',
  ],
  [
    'sendBuffer hard below soft',
    { ...ISSUE_EXAMPLE, sendBuffer: { softLimitBytes: 2097152, hardLimitBytes: 1048576 } },
    'sendBuffer.hardLimitBytes',
  ],
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
