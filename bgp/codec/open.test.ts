import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_CONTEXT, mirrorContext, negotiate } from './context.js';
import { decodeMessage, encodeMessage } from './message.js';
import { checkOpenAgainst, type OpenMessage, openMyAs, peerAsOf } from './open.js';

function open(caps: OpenMessage['capabilities'], myAs = 65001): OpenMessage {
  return { type: 'open', version: 4, myAs, holdTimeSec: 90, bgpId: '10.0.0.1', capabilities: caps };
}

test('negotiate: AS4 and extended messages need both sides; ADD-PATH per direction', () => {
  const local = open([
    { type: 'four-octet-as', asn: 65001 },
    { type: 'extended-message' },
    {
      type: 'add-path',
      families: [
        { afi: 1, safi: 1, mode: 'both' },
        { afi: 2, safi: 1, mode: 'receive' },
      ],
    },
  ]);
  const remote = open([
    { type: 'four-octet-as', asn: 65002 },
    {
      type: 'add-path',
      families: [
        { afi: 1, safi: 1, mode: 'send' },
        { afi: 2, safi: 1, mode: 'both' },
      ],
    },
  ]);
  const ctx = negotiate(local, remote);
  assert.deepStrictEqual(ctx, {
    as4: true,
    extendedMessage: false,
    addPath: { 'ipv4-unicast': 'receive', 'ipv6-unicast': 'receive' },
  });
  assert.deepStrictEqual(negotiate(remote, local).addPath, { 'ipv4-unicast': 'send', 'ipv6-unicast': 'send' });
  assert.deepStrictEqual(mirrorContext(ctx).addPath, negotiate(remote, local).addPath);
});

test('AS_TRANS in My AS for 4-octet ASNs; peerAsOf prefers the capability', () => {
  assert.equal(openMyAs(4200000000), 23456);
  assert.equal(openMyAs(65001), 65001);
  assert.equal(peerAsOf(open([{ type: 'four-octet-as', asn: 4200000000 }], 23456)), 4200000000);
});

test('checkOpenAgainst: wrong peer AS -> 2/2 with My AS as data; own identifier on iBGP -> 2/3', () => {
  const e = checkOpenAgainst(open([]), { peerAs: 65002 });
  assert.deepEqual([e?.code, e?.subcode, Buffer.from(e?.data ?? []).toString('hex')], [2, 2, 'fde9']);
  assert.equal(checkOpenAgainst(open([]), { peerAs: 65001 }), undefined);
  const e2 = checkOpenAgainst(open([]), { localBgpId: '10.0.0.1', isIbgp: true });
  assert.deepEqual([e2?.code, e2?.subcode], [2, 3]);
  const e3 = checkOpenAgainst({ ...open([]), holdTimeSec: 5 }, { minHoldTimeSec: 9 });
  assert.deepEqual([e3?.code, e3?.subcode], [2, 6]);
});

test('capabilities over 255 bytes are split across optional parameters', () => {
  const caps: OpenMessage['capabilities'] = Array.from({ length: 40 }, (_, i) => ({
    type: 'unknown',
    code: 200,
    value: new Uint8Array([i, 1, 2, 3]),
  }));
  const bytes = encodeMessage(open(caps), DEFAULT_CONTEXT);
  const r = decodeMessage(bytes, DEFAULT_CONTEXT);
  assert.ok(r.ok);
  assert.deepStrictEqual(r.msg, open(caps));
  assert.throws(
    () =>
      encodeMessage(
        open(Array.from({ length: 50 }, () => ({ type: 'unknown', code: 200, value: new Uint8Array(4) }))),
        DEFAULT_CONTEXT,
      ),
    { name: 'EncodeError' },
  );
});
