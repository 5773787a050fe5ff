import assert from 'node:assert/strict';
import { test } from 'node:test';
import { community, WellKnownCommunity } from './attributes/index.js';
import { type CodecContext, makeContext } from './context.js';
import { type ErrorAction, strongestError } from './errors.js';
import { hex, loadFixtures } from './fixtures/load.js';
import { type BgpMessage, decodeMessage, encodeMessage } from './message.js';

const b = (h: string) => new Uint8Array(hex(h));

/** What each fixture decodes to. Every fixture file must have an entry (and vice versa). */
const EXPECTED: Record<string, BgpMessage> = {
  'open-bird': {
    type: 'open',
    version: 4,
    myAs: 65001,
    holdTimeSec: 240,
    bgpId: '10.99.0.1',
    capabilities: [
      { type: 'multiprotocol', afi: 1, safi: 1 },
      { type: 'multiprotocol', afi: 2, safi: 1 },
      { type: 'route-refresh' },
      { type: 'enhanced-route-refresh' },
      {
        type: 'graceful-restart',
        restarting: true,
        notification: false,
        restartTimeSec: 120,
        families: [{ afi: 1, safi: 1, forwardingPreserved: true }],
      },
      { type: 'four-octet-as', asn: 65001 },
      { type: 'extended-message' },
      { type: 'add-path', families: [{ afi: 1, safi: 1, mode: 'both' }] },
      { type: 'fqdn', hostname: 'node1', domain: '' },
    ],
  },
  'open-gobgp': {
    type: 'open',
    version: 4,
    myAs: 23456,
    holdTimeSec: 90,
    bgpId: '10.99.0.2',
    capabilities: [
      { type: 'route-refresh' },
      { type: 'multiprotocol', afi: 1, safi: 1 },
      { type: 'four-octet-as', asn: 4200000000 },
      { type: 'unknown', code: 128, value: new Uint8Array(0) },
    ],
  },
  'open-minimal': { type: 'open', version: 4, myAs: 64512, holdTimeSec: 0, bgpId: '10.0.0.1', capabilities: [] },
  'update-ipv4': {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'igp',
      asPath: [{ type: 'sequence', asns: [65001, 65002] }],
      nextHop: '10.99.0.1',
      med: 100,
      localPref: 100,
      communities: [community(65000, 1), WellKnownCommunity.NoExport],
      largeCommunities: [{ globalAdmin: 65001, localData1: 1, localData2: 2 }],
    },
    nlri: [
      { prefix: '10.244.1.0', len: 26 },
      { prefix: '10.244.1.64', len: 26 },
      { prefix: '10.244.2.0', len: 24 },
      { prefix: '10.244.3.5', len: 32 },
      { prefix: '0.0.0.0', len: 0 },
    ],
  },
  'update-ipv4-as2': {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'incomplete',
      asPath: [{ type: 'sequence', asns: [65001, 23456, 65002] }],
      nextHop: '10.99.0.2',
      atomicAggregate: true,
      aggregator: { asn: 23456, address: '10.0.0.1' },
      as4Path: [{ type: 'sequence', asns: [65001, 4200000000, 65002] }],
      as4Aggregator: { asn: 4200000000, address: '10.0.0.1' },
    },
    nlri: [{ prefix: '192.168.1.0', len: 24 }],
  },
  'update-withdraw-ipv4': {
    type: 'update',
    withdrawn: [
      { prefix: '10.244.1.0', len: 26 },
      { prefix: '10.244.1.64', len: 26 },
    ],
    attrs: {},
    nlri: [],
  },
  'update-mp-reach-v6': {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'igp',
      asPath: [{ type: 'sequence', asns: [65001] }],
      mpReach: {
        afi: 2,
        safi: 1,
        nextHop: '2001:db8::1',
        linkLocalNextHop: 'fe80::1',
        nlri: [
          { prefix: 'fd00:10:244:1::', len: 64 },
          { prefix: 'fd00:10:244::40', len: 122 },
        ],
      },
    },
    nlri: [],
  },
  'update-mp-unreach-v6': {
    type: 'update',
    withdrawn: [],
    attrs: { mpUnreach: { afi: 2, safi: 1, withdrawn: [{ prefix: 'fd00:10:244:1::', len: 64 }] } },
    nlri: [],
  },
  'update-eor-ipv4': { type: 'update', withdrawn: [], attrs: {}, nlri: [] },
  'update-eor-ipv6': {
    type: 'update',
    withdrawn: [],
    attrs: { mpUnreach: { afi: 2, safi: 1, withdrawn: [] } },
    nlri: [],
  },
  'update-addpath-ipv4': {
    type: 'update',
    withdrawn: [{ prefix: '10.244.1.0', len: 24, pathId: 1 }],
    attrs: { origin: 'igp', asPath: [], nextHop: '10.99.0.1', localPref: 100 },
    nlri: [
      { prefix: '10.244.1.0', len: 26, pathId: 1 },
      { prefix: '10.244.1.0', len: 26, pathId: 2 },
    ],
  },
  'update-reflected': {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'egp',
      asPath: [
        { type: 'sequence', asns: [65001] },
        { type: 'set', asns: [65002, 65003] },
      ],
      nextHop: '10.99.0.3',
      localPref: 200,
      originatorId: '10.0.0.9',
      clusterList: ['10.0.0.1', '10.0.0.2'],
      unknown: [{ flags: 0xe0, typeCode: 100, value: b('abcd') }],
    },
    nlri: [{ prefix: '10.244.1.128', len: 26 }],
  },
  'update-unknown-attrs': {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'igp',
      asPath: [],
      nextHop: '10.99.0.1',
      unknown: [{ flags: 0xe0, typeCode: 100, value: b('abcd') }],
    },
    nlri: [{ prefix: '10.244.5.0', len: 24 }],
  },
  'update-extended-length': {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'igp',
      asPath: [],
      nextHop: '10.99.0.1',
      communities: Array.from({ length: 64 }, (_, i) => community(65000, i)),
    },
    nlri: [{ prefix: '10.244.6.0', len: 24 }],
  },
  'notification-shutdown': { type: 'notification', code: 6, subcode: 2, data: b(''), communication: 'maintenance' },
  'notification-bad-length': { type: 'notification', code: 1, subcode: 2, data: b('0010') },
  'notification-hold-timer': { type: 'notification', code: 4, subcode: 0, data: b('') },
  keepalive: { type: 'keepalive' },
  'route-refresh': { type: 'route-refresh', afi: 1, safi: 1, subtype: 0 },
  'route-refresh-eorr-v6': { type: 'route-refresh', afi: 2, safi: 1, subtype: 2 },
};

const fixtures = loadFixtures();

test('every fixture has an expected message and vice versa', () => {
  assert.deepEqual(fixtures.map((f) => f.name).sort(), Object.keys(EXPECTED).sort());
});

for (const fx of fixtures) {
  const want = EXPECTED[fx.name] as BgpMessage;
  test(`${fx.name}: decode`, () => {
    const r = decodeMessage(fx.bytes, fx.ctx);
    assert.ok(r.ok, r.ok ? '' : `${r.error.code}/${r.error.subcode} ${r.error.message}`);
    assert.deepStrictEqual(r.msg, want);
    assert.deepStrictEqual(r.attrErrors, []);
  });
  if (!fx.decodeOnly) {
    test(`${fx.name}: encode`, () => {
      assert.equal(encodeMessage(want, fx.ctx).toString('hex'), fx.bytes.toString('hex'));
    });
  }
  test(`${fx.name}: round trip`, () => {
    const r = decodeMessage(encodeMessage(want, fx.ctx), fx.ctx);
    assert.ok(r.ok);
    assert.deepStrictEqual(r.msg, want);
  });
}

test('unknown optional transitive attribute is re-encoded with the Partial bit; non-transitive is gone', () => {
  const fx = fixtures.find((f) => f.name === 'update-unknown-attrs');
  assert.ok(fx);
  const out = encodeMessage(EXPECTED['update-unknown-attrs'] as BgpMessage, fx.ctx).toString('hex');
  assert.ok(out.includes('e06402abcd'));
  assert.ok(!out.includes('806501ff'));
});

// ---- malformed inputs: one row each (RFC 4271 §6, RFC 7606) ----

const MARKER = 'ff'.repeat(16);
/** A message with a correct header around `body`. */
function frame(type: number, body: string): string {
  const n = hex(body).length + 19;
  return `${MARKER}${n.toString(16).padStart(4, '0')}${type.toString(16).padStart(2, '0')}${body}`;
}
/** UPDATE from its three sections (hex), lengths filled in. */
function update(withdrawn: string, attrs: string, nlri: string): string {
  const l = (h: string) => hex(h).length.toString(16).padStart(4, '0');
  return frame(2, `${l(withdrawn)}${withdrawn}${l(attrs)}${attrs}${nlri}`);
}
function open(fields: string, params = ''): string {
  const n = hex(params).length.toString(16).padStart(2, '0');
  return frame(1, `${fields}${n}${params}`);
}
const ORIGIN = '40010100';
const AS_PATH4 = '4002060201 0000fde9';
const AS_PATH2 = '4002040201 fde9';
const NEXT_HOP = '4003040a630001';
const BASE = ORIGIN + AS_PATH4 + NEXT_HOP;
const NLRI = '1a0af40100';
const OPEN_OK = '04 fde9 005a 0a000001';

interface Row {
  name: string;
  hex: string;
  code: number;
  subcode: number;
  action: ErrorAction;
  data?: string;
  ctx?: CodecContext;
}

const AS2 = makeContext({ as4: false });
const ROWS: Row[] = [
  // message header (RFC 4271 §6.1)
  { name: 'bad marker', hex: `fe${'ff'.repeat(15)}001304`, code: 1, subcode: 1, action: 'session-reset' },
  { name: 'length 18', hex: `${MARKER}001204`, code: 1, subcode: 2, action: 'session-reset', data: '0012' },
  {
    name: 'length 4097 without extended messages',
    hex: `${MARKER}100102`,
    code: 1,
    subcode: 2,
    action: 'session-reset',
    data: '1001',
  },
  {
    name: 'length field disagrees with frame',
    hex: `${MARKER}001504`,
    code: 1,
    subcode: 2,
    action: 'session-reset',
    data: '0015',
  },
  { name: 'unknown type 6', hex: frame(6, ''), code: 1, subcode: 3, action: 'session-reset', data: '06' },
  { name: 'KEEPALIVE of 20 bytes', hex: frame(4, '00'), code: 1, subcode: 2, action: 'session-reset', data: '0014' },
  {
    name: 'OPEN shorter than 29',
    hex: frame(1, '04fde9005a0a000001'),
    code: 1,
    subcode: 2,
    action: 'session-reset',
    data: '001c',
  },
  {
    name: 'UPDATE shorter than 23',
    hex: frame(2, '000000'),
    code: 1,
    subcode: 2,
    action: 'session-reset',
    data: '0016',
  },
  {
    name: 'NOTIFICATION shorter than 21',
    hex: frame(3, '06'),
    code: 1,
    subcode: 2,
    action: 'session-reset',
    data: '0014',
  },
  {
    name: 'ROUTE-REFRESH of 24 bytes -> 7/1 with the message as data',
    hex: frame(5, '0001000100'),
    code: 7,
    subcode: 1,
    action: 'session-reset',
    data: frame(5, '0001000100'),
  },
  // OPEN (RFC 4271 §6.2)
  {
    name: 'OPEN version 3',
    hex: open('03 fde9 005a 0a000001'),
    code: 2,
    subcode: 1,
    action: 'session-reset',
    data: '0004',
  },
  { name: 'OPEN hold time 1', hex: open('04 fde9 0001 0a000001'), code: 2, subcode: 6, action: 'session-reset' },
  { name: 'OPEN hold time 2', hex: open('04 fde9 0002 0a000001'), code: 2, subcode: 6, action: 'session-reset' },
  { name: 'OPEN BGP identifier 0', hex: open('04 fde9 005a 00000000'), code: 2, subcode: 3, action: 'session-reset' },
  { name: 'OPEN AS 0', hex: open('04 0000 005a 0a000001'), code: 2, subcode: 2, action: 'session-reset' },
  {
    name: 'OPEN 4-octet AS capability 0',
    hex: open(OPEN_OK, '0206 4104 00000000'),
    code: 2,
    subcode: 2,
    action: 'session-reset',
  },
  {
    name: 'OPEN optional parameter type 1',
    hex: open(OPEN_OK, '0102 0000'),
    code: 2,
    subcode: 4,
    action: 'session-reset',
  },
  {
    name: 'OPEN parameter length past the message',
    hex: frame(1, `${OPEN_OK}04 0206 0200`),
    code: 2,
    subcode: 0,
    action: 'session-reset',
  },
  { name: 'OPEN parameter overruns', hex: open(OPEN_OK, '0206 0200'), code: 2, subcode: 0, action: 'session-reset' },
  {
    name: 'OPEN capability overruns its parameter',
    hex: open(OPEN_OK, '0202 0104'),
    code: 2,
    subcode: 0,
    action: 'session-reset',
  },
  {
    name: 'OPEN multiprotocol capability of 3 bytes',
    hex: open(OPEN_OK, '0205 0103 000100'),
    code: 2,
    subcode: 0,
    action: 'session-reset',
  },
  {
    name: 'OPEN ADD-PATH mode 4',
    hex: open(OPEN_OK, '0206 4504 00010104'),
    code: 2,
    subcode: 0,
    action: 'session-reset',
  },
  // UPDATE framing (RFC 4271 §6.3, RFC 7606 §4, §5.3)
  { name: 'withdrawn length overruns', hex: frame(2, '0010 0000'), code: 3, subcode: 1, action: 'session-reset' },
  { name: 'attribute length overruns', hex: frame(2, '0000 0010'), code: 3, subcode: 1, action: 'session-reset' },
  { name: 'NLRI prefix length 33', hex: update('', BASE, '210a000000'), code: 3, subcode: 10, action: 'session-reset' },
  { name: 'NLRI truncated prefix', hex: update('', BASE, '1a0af401'), code: 3, subcode: 10, action: 'session-reset' },
  {
    name: 'withdrawn prefix length 40',
    hex: update('280a00000000', '', ''),
    code: 3,
    subcode: 10,
    action: 'session-reset',
  },
  { name: 'withdrawn truncated prefix', hex: update('180a00', '', ''), code: 3, subcode: 10, action: 'session-reset' },
  {
    name: 'attribute header truncated, no NLRI',
    hex: update('', '4001', ''),
    code: 3,
    subcode: 1,
    action: 'session-reset',
  },
  {
    name: 'attribute overruns the list, NLRI present',
    hex: update('', `${ORIGIN}400208020100`, NLRI),
    code: 3,
    subcode: 1,
    action: 'treat-as-withdraw',
  },
  {
    name: 'extended-length header truncated',
    hex: update('', `${ORIGIN}500200`, NLRI),
    code: 3,
    subcode: 1,
    action: 'treat-as-withdraw',
  },
  // RFC 7606 §3(g) duplicates
  { name: 'duplicate ORIGIN', hex: update('', BASE + ORIGIN, NLRI), code: 3, subcode: 1, action: 'attribute-discard' },
  {
    name: 'duplicate MP_UNREACH_NLRI',
    hex: update('', '800f03000201800f03000201', ''),
    code: 3,
    subcode: 1,
    action: 'session-reset',
  },
  // RFC 7606 §3(d) missing well-known: data is the type code
  {
    name: 'missing ORIGIN',
    hex: update('', AS_PATH4 + NEXT_HOP, NLRI),
    code: 3,
    subcode: 3,
    action: 'treat-as-withdraw',
    data: '01',
  },
  {
    name: 'missing AS_PATH',
    hex: update('', ORIGIN + NEXT_HOP, NLRI),
    code: 3,
    subcode: 3,
    action: 'treat-as-withdraw',
    data: '02',
  },
  {
    name: 'missing NEXT_HOP',
    hex: update('', ORIGIN + AS_PATH4, NLRI),
    code: 3,
    subcode: 3,
    action: 'treat-as-withdraw',
    data: '03',
  },
  {
    name: 'missing ORIGIN with MP_REACH',
    hex: update('', `${AS_PATH4}800e1c000201 10 20010db8000000000000000000000001 00 30 20010db80001`, ''),
    code: 3,
    subcode: 3,
    action: 'treat-as-withdraw',
    data: '01',
  },
  // RFC 7606 §3(c) flags
  {
    name: 'ORIGIN marked optional',
    hex: update('', `c0010100${AS_PATH4}${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 4,
    action: 'treat-as-withdraw',
    data: 'c0010100',
  },
  {
    name: 'MED marked well-known',
    hex: update('', `${BASE}400404 00000001`, NLRI),
    code: 3,
    subcode: 4,
    action: 'treat-as-withdraw',
  },
  {
    name: 'COMMUNITIES marked non-transitive',
    hex: update('', `${BASE}800804fde80001`, NLRI),
    code: 3,
    subcode: 4,
    action: 'treat-as-withdraw',
  },
  // per-attribute (RFC 7606 §7)
  {
    name: 'ORIGIN length 2',
    hex: update('', `40010200 00${AS_PATH4}${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'ORIGIN value 3',
    hex: update('', `40010103${AS_PATH4}${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 6,
    action: 'treat-as-withdraw',
    data: '40010103',
  },
  {
    name: 'AS_PATH segment type 5',
    hex: update('', `${ORIGIN}4002060501 0000fde9${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 11,
    action: 'treat-as-withdraw',
  },
  {
    name: 'AS_PATH segment overruns',
    hex: update('', `${ORIGIN}4002060202 0000fde9${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 11,
    action: 'treat-as-withdraw',
  },
  {
    name: 'AS_PATH zero-length segment',
    hex: update('', `${ORIGIN}4002020200${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 11,
    action: 'treat-as-withdraw',
  },
  {
    name: 'AS_PATH one-octet underrun',
    hex: update('', `${ORIGIN}4002070201 0000fde9 02${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 11,
    action: 'treat-as-withdraw',
  },
  {
    name: 'AS_PATH 2-octet on a 2-octet session is fine but 4-octet widths break it',
    hex: update('', `${ORIGIN}4002050201 0000fd${NEXT_HOP}`, NLRI),
    code: 3,
    subcode: 11,
    action: 'treat-as-withdraw',
    ctx: AS2,
  },
  {
    name: 'NEXT_HOP length 5',
    hex: update('', `${ORIGIN}${AS_PATH4}4003050a63000100`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'NEXT_HOP 0.0.0.0',
    hex: update('', `${ORIGIN}${AS_PATH4}40030400000000`, NLRI),
    code: 3,
    subcode: 8,
    action: 'treat-as-withdraw',
    data: '40030400000000',
  },
  {
    name: 'NEXT_HOP multicast',
    hex: update('', `${ORIGIN}${AS_PATH4}400304e0000001`, NLRI),
    code: 3,
    subcode: 8,
    action: 'treat-as-withdraw',
  },
  {
    name: 'NEXT_HOP broadcast',
    hex: update('', `${ORIGIN}${AS_PATH4}400304ffffffff`, NLRI),
    code: 3,
    subcode: 8,
    action: 'treat-as-withdraw',
  },
  {
    name: 'MED length 3',
    hex: update('', `${BASE}800403000001`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'LOCAL_PREF length 2',
    hex: update('', `${BASE}4005020064`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'ATOMIC_AGGREGATE length 1',
    hex: update('', `${BASE}40060100`, NLRI),
    code: 3,
    subcode: 5,
    action: 'attribute-discard',
  },
  {
    name: 'AGGREGATOR 8 bytes on a 2-octet session',
    hex: update('', `${ORIGIN}${AS_PATH2}${NEXT_HOP}c007080000fde90a000001`, NLRI),
    code: 3,
    subcode: 5,
    action: 'attribute-discard',
    ctx: AS2,
  },
  {
    name: 'COMMUNITIES length 3',
    hex: update('', `${BASE}c00803fde800`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'COMMUNITIES length 0',
    hex: update('', `${BASE}c00800`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'LARGE_COMMUNITIES length 8',
    hex: update('', `${BASE}c020080000000100000002`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'ORIGINATOR_ID length 5',
    hex: update('', `${BASE}8009050a00000100`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'CLUSTER_LIST length 6',
    hex: update('', `${BASE}800a060a0000010a00`, NLRI),
    code: 3,
    subcode: 5,
    action: 'treat-as-withdraw',
  },
  {
    name: 'AS4_PATH malformed on a 2-octet session',
    hex: update('', `${ORIGIN}${AS_PATH2}${NEXT_HOP}c011050201fa56ea`, NLRI),
    code: 3,
    subcode: 9,
    action: 'attribute-discard',
    ctx: AS2,
  },
  {
    name: 'AS4_PATH with a confederation segment',
    hex: update('', `${ORIGIN}${AS_PATH2}${NEXT_HOP}c011060301fa56ea00`, NLRI),
    code: 3,
    subcode: 9,
    action: 'attribute-discard',
    ctx: AS2,
  },
  {
    name: 'AS4_AGGREGATOR length 6',
    hex: update('', `${ORIGIN}${AS_PATH2}${NEXT_HOP}c01206fa56ea000a00`, NLRI),
    code: 3,
    subcode: 5,
    action: 'attribute-discard',
    ctx: AS2,
  },
  // MP_REACH / MP_UNREACH (RFC 7606 §7.11, §5.3)
  {
    name: 'MP_REACH IPv6 next-hop length 8',
    hex: update('', `${ORIGIN}${AS_PATH4}800e12000201 08 20010db800000000 00 20 20010db8`, ''),
    code: 3,
    subcode: 9,
    action: 'afi-safi-disable',
  },
  {
    name: 'MP_REACH IPv4 next-hop length 16',
    hex: update('', `${ORIGIN}${AS_PATH4}800e15000101 10 20010db8000000000000000000000001 00`, ''),
    code: 3,
    subcode: 9,
    action: 'afi-safi-disable',
  },
  {
    name: 'MP_REACH IPv6 prefix length 129',
    hex: update('', `${ORIGIN}${AS_PATH4}800e17000201 10 20010db8000000000000000000000001 00 81 20`, ''),
    code: 3,
    subcode: 10,
    action: 'afi-safi-disable',
  },
  {
    name: 'MP_REACH truncated IPv6 prefix',
    hex: update('', `${ORIGIN}${AS_PATH4}800e18000201 10 20010db8000000000000000000000001 00 40 2001`, ''),
    code: 3,
    subcode: 10,
    action: 'afi-safi-disable',
  },
  {
    name: 'MP_REACH of 2 bytes',
    hex: update('', `${ORIGIN}${AS_PATH4}800e020002`, ''),
    code: 3,
    subcode: 9,
    action: 'session-reset',
  },
  {
    name: 'MP_REACH next hop overruns the attribute',
    hex: update('', `${ORIGIN}${AS_PATH4}800e06000201 20 2001`, ''),
    code: 3,
    subcode: 9,
    action: 'afi-safi-disable',
  },
  {
    name: 'MP_UNREACH truncated prefix',
    hex: update('', '800f06000201 40 2001', ''),
    code: 3,
    subcode: 10,
    action: 'afi-safi-disable',
  },
  { name: 'MP_UNREACH of 2 bytes', hex: update('', '800f020002', ''), code: 3, subcode: 9, action: 'session-reset' },
  // unknown attributes (RFC 4271 §6.3)
  {
    name: 'unrecognized well-known attribute',
    hex: update('', `${BASE}40630100`, NLRI),
    code: 3,
    subcode: 2,
    action: 'session-reset',
    data: '40630100',
  },
  // strongest action wins (RFC 7606 §2)
  {
    name: 'discard + treat-as-withdraw -> treat-as-withdraw',
    hex: update('', `40010107${AS_PATH4}${NEXT_HOP}40060100`, NLRI),
    code: 3,
    subcode: 6,
    action: 'treat-as-withdraw',
  },
  {
    name: 'treat-as-withdraw + AFI/SAFI disable -> AFI/SAFI disable',
    hex: update('', `40010107${AS_PATH4}800e12000201 08 20010db800000000 00 20 20010db8`, ''),
    code: 3,
    subcode: 9,
    action: 'afi-safi-disable',
  },
];

const DEFAULT = makeContext();
for (const row of ROWS) {
  test(`malformed: ${row.name} -> ${row.code}/${row.subcode} ${row.action}`, () => {
    const r = decodeMessage(hex(row.hex), row.ctx ?? DEFAULT);
    const err = r.ok ? strongestError(r.attrErrors) : r.error;
    assert.ok(err, 'expected an error');
    assert.equal(err.name, 'BgpError');
    assert.deepEqual([err.code, err.subcode, err.action], [row.code, row.subcode, row.action]);
    assert.equal(r.ok, row.action !== 'session-reset', 'session-reset <=> ok:false');
    if (row.data !== undefined) assert.equal(Buffer.from(err.data).toString('hex'), hex(row.data).toString('hex'));
  });
}

test('treat-as-withdraw UPDATE still returns what parsed', () => {
  const r = decodeMessage(hex(update('', `40010103${AS_PATH4}${NEXT_HOP}`, NLRI)), DEFAULT);
  assert.ok(r.ok);
  assert.equal(r.msg.type, 'update');
  if (r.msg.type === 'update') assert.deepEqual(r.msg.nlri, [{ prefix: '10.244.1.0', len: 26 }]);
});

test('attribute-discard drops only the bad attribute', () => {
  const r = decodeMessage(hex(update('', `${BASE}40060100`, NLRI)), DEFAULT);
  assert.ok(r.ok);
  assert.ok(r.msg.type === 'update' && r.msg.attrs.atomicAggregate === undefined && r.msg.attrs.origin === 'igp');
});

test('ROUTE-REFRESH with an unknown subtype decodes (RFC 7313 §5: the receiver ignores it)', () => {
  const r = decodeMessage(hex(frame(5, '0001 07 01')), DEFAULT);
  assert.ok(r.ok);
  assert.deepEqual(r.msg, { type: 'route-refresh', afi: 1, safi: 1, subtype: 7 });
});

test('NOTIFICATION with an overrunning shutdown communication keeps the raw data', () => {
  const r = decodeMessage(hex(frame(3, '0602 0a 6869')), DEFAULT);
  assert.ok(r.ok);
  assert.deepStrictEqual(r.msg, { type: 'notification', code: 6, subcode: 2, data: b('0a6869') });
});

test('NOTIFICATION with invalid UTF-8 in the communication keeps the raw data', () => {
  const r = decodeMessage(hex(frame(3, '0604 02 c328')), DEFAULT);
  assert.ok(r.ok);
  assert.deepStrictEqual(r.msg, { type: 'notification', code: 6, subcode: 4, data: b('02c328') });
});

test('OPEN is limited to 4096 bytes even with extended messages', () => {
  const big = `${MARKER}100101${'00'.repeat(4097 - 19)}`;
  const r = decodeMessage(hex(big), makeContext({ extendedMessage: true }));
  assert.ok(!r.ok);
  assert.deepEqual([r.error.code, r.error.subcode], [1, 2]);
});

test('UPDATE up to 65535 bytes decodes with extended messages, and is refused without', () => {
  const nlri = Array.from({ length: 2000 }, (_, i) => ({ prefix: `10.${(i >> 8) & 255}.${i & 255}.0`, len: 24 }));
  const msg: BgpMessage = {
    type: 'update',
    withdrawn: [],
    attrs: { origin: 'igp', asPath: [], nextHop: '10.0.0.1' },
    nlri,
  };
  const ext = makeContext({ extendedMessage: true });
  const bytes = encodeMessage(msg, ext);
  assert.ok(bytes.length > 4096);
  const r = decodeMessage(bytes, ext);
  assert.ok(r.ok);
  assert.deepStrictEqual(r.msg, msg);
  const r2 = decodeMessage(bytes, DEFAULT);
  assert.ok(!r2.ok);
  assert.deepEqual([r2.error.code, r2.error.subcode], [1, 2]);
  assert.throws(() => encodeMessage(msg, DEFAULT), { name: 'EncodeError' });
});

test('fixtures decode and encode identically with the buffer-layout prefix implementation', async () => {
  const { useLayoutNlri } = await import('./nlri.js');
  useLayoutNlri(true);
  try {
    for (const fx of fixtures) {
      const r = decodeMessage(fx.bytes, fx.ctx);
      assert.ok(r.ok);
      assert.deepStrictEqual(r.msg, EXPECTED[fx.name]);
      if (!fx.decodeOnly) assert.equal(encodeMessage(r.msg, fx.ctx).toString('hex'), fx.bytes.toString('hex'));
    }
  } finally {
    useLayoutNlri(false);
  }
});
