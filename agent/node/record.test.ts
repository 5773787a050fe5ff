import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSelector } from '../../ipam-etcd/index.js';
import {
  DEFAULT_BGP_CONFIG,
  formatNodeRecord,
  parseBgpConfig,
  parseBgpPeer,
  parseNodeRecord,
  RecordError,
} from './record.js';

const sel = (s: string) => {
  parseSelector(s);
};

test('node record round trip keeps field order and values', () => {
  const r = {
    name: 'n1',
    labels: { rack: 'r1' },
    ipv4: '10.0.0.5/24',
    ipv6: 'fd00::5/64',
    asNumber: 65001,
    routeReflectorClusterId: '224.0.0.1',
    ipipTunnelAddr: '10.244.0.1',
    vxlanTunnelAddr: '10.244.0.2',
    vxlanMac: '66:01:02:03:04:05',
    agentVersion: '0.1.0',
  };
  const text = formatNodeRecord(r);
  assert.equal(text.indexOf('"name"'), 1);
  assert.deepEqual(parseNodeRecord('k', text), r);
});

test('a labels-only record (petrelctl node label) parses', () => {
  assert.deepEqual(parseNodeRecord('k', '{"name":"n","labels":{}}'), { name: 'n', labels: {} });
});

const BAD = [
  'not json',
  '[]',
  '{"labels":{}}',
  '{"name":"n","ipv4":"10.0.0.5"}',
  '{"name":"n","ipv4":"fd00::1/64"}',
  '{"name":"n","asNumber":0}',
  '{"name":"n","vxlanMac":"zz"}',
  '{"name":"n","labels":{"a":1}}',
];
for (const v of BAD)
  test(`bad node record ${v} -> RecordError`, () => assert.throws(() => parseNodeRecord('k', v), RecordError));

test('bgp config defaults and validation', () => {
  assert.deepEqual(parseBgpConfig('k', '{}'), DEFAULT_BGP_CONFIG);
  assert.equal(parseBgpConfig('k', '{"nodeToNodeMesh":false}').nodeToNodeMesh, false);
  for (const v of ['{"asNumber":-1}', '{"listenPort":70000}', '{"holdTimeSec":2}', '{"nodeToNodeMesh":"no"}'])
    assert.throws(() => parseBgpConfig('k', v), RecordError);
});

test('bgp peer validation', () => {
  assert.deepEqual(parseBgpPeer('k', '{"name":"rr","peerSelector":"has(rr)"}', sel), {
    name: 'rr',
    peerSelector: 'has(rr)',
  });
  for (const v of [
    '{"name":"x"}',
    '{"name":"x","peerIp":"1.2.3.4"}',
    '{"name":"x","peerIp":"1.2.3","asNumber":1}',
    '{"name":"x","peerIp":"1.2.3.4","asNumber":1,"peerSelector":"all()"}',
    '{"name":"x","peerSelector":"rack =="}',
    '{"name":"X_","peerIp":"1.2.3.4","asNumber":1}',
  ])
    assert.throws(() => parseBgpPeer('k', v, sel), RecordError, v);
});
