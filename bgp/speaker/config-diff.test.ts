/** Table tests of the speaker's pure config diff (config-diff.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type DesiredBgpConfig,
  diffSpeakerConfig,
  isEmptyDiff,
  peerKey,
  type SpeakerConfigDiff,
  stableJson,
} from './config-diff.js';
import type { PeerConfig, SpeakerConfig } from './types.js';

const SPEAKER: SpeakerConfig = { asn: 64512, routerId: '10.0.0.1', listen: { address: '10.0.0.1', port: 179 } };
const A: PeerConfig = { address: '10.0.0.2', asn: 64512, holdTimeSec: 90 };
const B: PeerConfig = { address: '10.0.0.3', asn: 65001 };
const C: PeerConfig = { address: 'fd00::4', asn: 65002, families: ['ipv6'] };
const cfg = (
  peers: PeerConfig[],
  announce: DesiredBgpConfig['announce'] = [],
  speaker = SPEAKER,
): DesiredBgpConfig => ({
  speaker,
  peers,
  announce,
});
const EMPTY: SpeakerConfigDiff = {
  addPeers: [],
  removePeers: [],
  changePeers: [],
  unchangedPeers: [],
  announce: [],
  withdraw: [],
  restartRequired: [],
};

interface Row {
  name: string;
  prev: DesiredBgpConfig;
  next: DesiredBgpConfig;
  diff: Partial<SpeakerConfigDiff>;
}

const ROWS: Row[] = [
  {
    name: 'same config -> nothing',
    prev: cfg([A, B]),
    next: cfg([A, B]),
    diff: { unchangedPeers: ['10.0.0.2', '10.0.0.3'] },
  },
  {
    name: 'peer added, others unchanged',
    prev: cfg([A]),
    next: cfg([A, C]),
    diff: { addPeers: [C], unchangedPeers: ['10.0.0.2'] },
  },
  {
    name: 'peer removed, others unchanged',
    prev: cfg([A, B]),
    next: cfg([A]),
    diff: { removePeers: ['10.0.0.3'], unchangedPeers: ['10.0.0.2'] },
  },
  {
    name: 'one added and one removed in the same reload',
    prev: cfg([A, B]),
    next: cfg([C, A]),
    diff: { addPeers: [C], removePeers: ['10.0.0.3'], unchangedPeers: ['10.0.0.2'] },
  },
  {
    name: 'peer order and key order do not matter',
    prev: cfg([A, B]),
    next: cfg([
      { asn: 65001, address: '10.0.0.3' },
      { holdTimeSec: 90, asn: 64512, address: '10.0.0.2' },
    ]),
    diff: { unchangedPeers: ['10.0.0.3', '10.0.0.2'] },
  },
  {
    name: 'IPv4-mapped and non-canonical IPv6 spellings are the same peer',
    prev: cfg([A, C]),
    next: cfg([
      { ...A, address: '::ffff:10.0.0.2' },
      { ...C, address: 'FD00:0:0::0004' },
    ]),
    diff: { unchangedPeers: ['10.0.0.2', 'fd00::4'] },
  },
  {
    name: 'hold time changed -> replace (renegotiated in OPEN)',
    prev: cfg([A, B]),
    next: cfg([{ ...A, holdTimeSec: 30 }, B]),
    diff: {
      changePeers: [
        { address: '10.0.0.2', action: 'replace', keys: ['holdTimeSec'], from: A, to: { ...A, holdTimeSec: 30 } },
      ],
      unchangedPeers: ['10.0.0.3'],
    },
  },
  {
    name: 'AS changed -> replace',
    prev: cfg([B]),
    next: cfg([{ ...B, asn: 65009 }]),
    diff: {
      changePeers: [{ address: '10.0.0.3', action: 'replace', keys: ['asn'], from: B, to: { ...B, asn: 65009 } }],
    },
  },
  {
    name: 'export filter changed inside a rule -> replace, key named',
    prev: cfg([
      { ...B, exportFilter: { rules: [{ action: 'accept', prefixes: [{ prefix: '10.0.0.0/8', le: 32 }] }] } },
    ]),
    next: cfg([
      { ...B, exportFilter: { rules: [{ action: 'accept', prefixes: [{ prefix: '10.0.0.0/8', le: 24 }] }] } },
    ]),
    diff: {
      changePeers: [
        {
          address: '10.0.0.3',
          action: 'replace',
          keys: ['exportFilter'],
          from: { ...B, exportFilter: { rules: [{ action: 'accept', prefixes: [{ prefix: '10.0.0.0/8', le: 32 }] }] } },
          to: { ...B, exportFilter: { rules: [{ action: 'accept', prefixes: [{ prefix: '10.0.0.0/8', le: 24 }] }] } },
        },
      ],
    },
  },
  {
    name: 'a default written out counts as a change (port 179 added)',
    prev: cfg([B]),
    next: cfg([{ ...B, port: 179 }]),
    diff: {
      changePeers: [{ address: '10.0.0.3', action: 'replace', keys: ['port'], from: B, to: { ...B, port: 179 } }],
    },
  },
  {
    name: 'description only -> update in place',
    prev: cfg([B]),
    next: cfg([{ ...B, description: 'upstream' }]),
    diff: {
      changePeers: [
        {
          address: '10.0.0.3',
          action: 'update',
          keys: ['description'],
          from: B,
          to: { ...B, description: 'upstream' },
        },
      ],
    },
  },
  {
    name: 'shutdown set -> shutdown',
    prev: cfg([B]),
    next: cfg([{ ...B, shutdown: true }]),
    diff: {
      changePeers: [
        { address: '10.0.0.3', action: 'shutdown', keys: ['shutdown'], from: B, to: { ...B, shutdown: true } },
      ],
    },
  },
  {
    name: 'shutdown cleared (false) with a new description -> enable',
    prev: cfg([{ ...B, shutdown: true }]),
    next: cfg([{ ...B, shutdown: false, description: 'back' }]),
    diff: {
      changePeers: [
        {
          address: '10.0.0.3',
          action: 'enable',
          keys: ['description', 'shutdown'],
          from: { ...B, shutdown: true },
          to: { ...B, shutdown: false, description: 'back' },
        },
      ],
    },
  },
  {
    name: 'shutdown key removed -> enable',
    prev: cfg([{ ...B, shutdown: true }]),
    next: cfg([B]),
    diff: {
      changePeers: [
        { address: '10.0.0.3', action: 'enable', keys: ['shutdown'], from: { ...B, shutdown: true }, to: B },
      ],
    },
  },
  {
    name: 'shutdown and a timer changed together -> replace',
    prev: cfg([B]),
    next: cfg([{ ...B, shutdown: true, connectRetrySec: 2 }]),
    diff: {
      changePeers: [
        {
          address: '10.0.0.3',
          action: 'replace',
          keys: ['connectRetrySec', 'shutdown'],
          from: B,
          to: { ...B, shutdown: true, connectRetrySec: 2 },
        },
      ],
    },
  },
  {
    name: 'announcement added and one withdrawn; the unchanged one is left alone',
    prev: cfg(
      [],
      [
        { prefix: '10.244.1.0/26', options: {} },
        { prefix: '10.244.2.0/26', options: {} },
      ],
    ),
    next: cfg(
      [],
      [
        { prefix: '10.244.1.0/26', options: {} },
        { prefix: '10.244.3.0/26', options: {} },
      ],
    ),
    diff: { announce: [{ prefix: '10.244.3.0/26', options: {} }], withdraw: ['10.244.2.0/26'] },
  },
  {
    name: 'announcement options changed -> announced again with the new options',
    prev: cfg([], [{ prefix: '10.244.1.0/26', options: { med: 10 } }]),
    next: cfg([], [{ prefix: '10.244.1.0/26', options: { med: 20 } }]),
    diff: { announce: [{ prefix: '10.244.1.0/26', options: { med: 20 } }] },
  },
  {
    name: 'prefixes compared canonically (host bits, IPv6 spelling)',
    prev: cfg(
      [],
      [
        { prefix: '10.244.1.0/26', options: {} },
        { prefix: 'fd00:10:244:1::/122', options: {} },
      ],
    ),
    next: cfg(
      [],
      [
        { prefix: '10.244.1.5/26', options: {} },
        { prefix: 'FD00:10:244:1:0::/122', options: {} },
      ],
    ),
    diff: {},
  },
  {
    name: 'speaker-wide changes -> restartRequired (sorted), peers untouched',
    prev: cfg([A]),
    next: cfg([A], [], {
      ...SPEAKER,
      routerId: '10.0.0.9',
      sendBuffer: { softLimitBytes: 65536 },
      listen: { address: '10.0.0.1', port: 1179 },
    }),
    diff: { unchangedPeers: ['10.0.0.2'], restartRequired: ['listen', 'routerId', 'sendBuffer'] },
  },
  {
    name: 'speaker settings absent on one side -> not compared',
    prev: { peers: [A], announce: [] },
    next: cfg([A], [], { asn: 1, routerId: '1.1.1.1' }),
    diff: { unchangedPeers: ['10.0.0.2'] },
  },
];

for (const row of ROWS) {
  test(`diffSpeakerConfig: ${row.name}`, () => {
    const prevCopy = structuredClone(row.prev);
    const nextCopy = structuredClone(row.next);
    assert.deepEqual(diffSpeakerConfig(row.prev, row.next), { ...EMPTY, ...row.diff });
    assert.deepEqual(row.prev, prevCopy, 'inputs are not changed');
    assert.deepEqual(row.next, nextCopy, 'inputs are not changed');
  });
}

test('diffSpeakerConfig: the diff of a config with itself is empty; isEmptyDiff sees each kind of change', () => {
  const c = cfg([A, B, C], [{ prefix: '10.244.1.0/26', options: { communities: ['65000:1'] } }]);
  assert.equal(isEmptyDiff(diffSpeakerConfig(c, structuredClone(c))), true);
  for (const [k, v] of Object.entries(EMPTY)) {
    if (k === 'unchangedPeers') continue;
    assert.equal(isEmptyDiff({ ...EMPTY, [k]: [v.length === 0 ? 'x' : v] }), false, k);
  }
  assert.equal(isEmptyDiff({ ...EMPTY, unchangedPeers: ['10.0.0.2'] }), true);
});

test('peerKey: the speaker key of an address', () => {
  assert.equal(peerKey('10.0.0.2'), '10.0.0.2');
  assert.equal(peerKey('::ffff:10.0.0.2'), '10.0.0.2');
  assert.equal(peerKey('::FFFF:10.0.0.2'), '10.0.0.2');
  assert.equal(peerKey('FD00:0::2'), 'fd00::2');
  assert.equal(peerKey('2001:db8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(peerKey('not-an-address:x'), 'not-an-address:x');
});

test('stableJson: key order does not matter, array order does', () => {
  assert.equal(stableJson({ a: 1, b: { c: 2, d: [1, 2] } }), stableJson({ b: { d: [1, 2], c: 2 }, a: 1 }));
  assert.notEqual(stableJson({ d: [1, 2] }), stableJson({ d: [2, 1] }));
});
