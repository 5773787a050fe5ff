import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeAs4Path } from './attributes/index.js';
import { makeContext } from './context.js';
import { decodeMessage, encodeMessage } from './message.js';
import { packUpdates } from './pack.js';
import type { Prefix } from './types.js';
import { endOfRib, isEndOfRib, treatAsWithdraw, type UpdateMessage } from './update.js';

const ctx = makeContext();

test('End-of-RIB for IPv4 and IPv6 is recognised and encodes to 23 / 29 bytes', () => {
  assert.deepEqual(isEndOfRib(endOfRib()), { afi: 1, safi: 1 });
  assert.deepEqual(isEndOfRib(endOfRib(2, 1)), { afi: 2, safi: 1 });
  assert.equal(encodeMessage(endOfRib(), ctx).length, 23);
  assert.equal(encodeMessage(endOfRib(2, 1), ctx).length, 29);
  assert.equal(isEndOfRib({ type: 'update', withdrawn: [], attrs: { origin: 'igp' }, nlri: [] }), undefined);
});

test('treat-as-withdraw turns classic and MP NLRI into withdrawals', () => {
  const msg: UpdateMessage = {
    type: 'update',
    withdrawn: [{ prefix: '10.0.0.0', len: 8 }],
    attrs: {
      origin: 'igp',
      mpReach: { afi: 2, safi: 1, nextHop: '2001:db8::1', nlri: [{ prefix: 'fd00::', len: 64 }] },
    },
    nlri: [{ prefix: '10.244.1.0', len: 26 }],
  };
  assert.deepStrictEqual(treatAsWithdraw(msg), {
    type: 'update',
    withdrawn: [
      { prefix: '10.0.0.0', len: 8 },
      { prefix: '10.244.1.0', len: 26 },
    ],
    attrs: { mpUnreach: { afi: 2, safi: 1, withdrawn: [{ prefix: 'fd00::', len: 64 }] } },
    nlri: [],
  });
});

test('2-octet session: 4-octet ASNs go out as AS_TRANS plus AS4_PATH / AS4_AGGREGATOR, and merge back', () => {
  const as2 = makeContext({ as4: false });
  const msg: UpdateMessage = {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'igp',
      asPath: [{ type: 'sequence', asns: [65001, 4200000000] }],
      nextHop: '10.0.0.1',
      aggregator: { asn: 4200000001, address: '10.0.0.2' },
    },
    nlri: [{ prefix: '10.244.0.0', len: 26 }],
  };
  const r = decodeMessage(encodeMessage(msg, as2), as2);
  assert.ok(r.ok && r.msg.type === 'update');
  const a = r.msg.attrs;
  assert.deepEqual(a.asPath, [{ type: 'sequence', asns: [65001, 23456] }]);
  assert.deepEqual(a.as4Path, [{ type: 'sequence', asns: [65001, 4200000000] }]);
  assert.deepEqual(a.aggregator, { asn: 23456, address: '10.0.0.2' });
  assert.deepEqual(a.as4Aggregator, { asn: 4200000001, address: '10.0.0.2' });
  assert.deepEqual(mergeAs4Path(a.asPath ?? [], a.as4Path), [{ type: 'sequence', asns: [65001, 4200000000] }]);
});

test('RFC 6793 §4.2.3 merge: leading 2-octet ASNs kept, AS4_PATH longer than AS_PATH ignored', () => {
  const asPath = [{ type: 'sequence' as const, asns: [100, 23456, 23456, 200] }];
  assert.deepEqual(mergeAs4Path(asPath, [{ type: 'sequence', asns: [70000, 80000, 200] }]), [
    { type: 'sequence', asns: [100] },
    { type: 'sequence', asns: [70000, 80000, 200] },
  ]);
  assert.deepEqual(mergeAs4Path(asPath, [{ type: 'sequence', asns: [1, 2, 3, 4, 5] }]), asPath);
});

test('4-octet session never sends AS4_PATH, and ignores a received one', () => {
  const msg: UpdateMessage = {
    type: 'update',
    withdrawn: [],
    attrs: {
      origin: 'igp',
      asPath: [{ type: 'sequence', asns: [1] }],
      nextHop: '10.0.0.1',
      as4Path: [{ type: 'sequence', asns: [1] }],
    },
    nlri: [{ prefix: '10.0.0.0', len: 8 }],
  };
  const bytes = encodeMessage(msg, ctx);
  assert.ok(!bytes.toString('hex').includes('c011'));
});

function v4(n: number): Prefix[] {
  return Array.from({ length: n }, (_, i) => ({
    prefix: `10.${(i >> 10) & 255}.${(i >> 2) & 255}.${(i & 3) * 64}`,
    len: 26,
  }));
}

test('packUpdates splits many IPv4 /26s into UPDATEs within 4096 bytes, nothing lost', () => {
  const nlri = v4(5000);
  const msgs = packUpdates(
    {
      type: 'update',
      withdrawn: v4(1500),
      attrs: { origin: 'igp', asPath: [], nextHop: '10.0.0.1', localPref: 100 },
      nlri,
    },
    ctx,
  );
  const got: Prefix[] = [];
  const gotW: Prefix[] = [];
  for (const m of msgs) {
    assert.ok(m.length <= 4096);
    const r = decodeMessage(m, ctx);
    assert.ok(r.ok && r.msg.type === 'update');
    got.push(...r.msg.nlri);
    gotW.push(...r.msg.withdrawn);
  }
  assert.deepStrictEqual(got, nlri);
  assert.deepStrictEqual(gotW, v4(1500));
  assert.ok(msgs.length <= 9, `${msgs.length} messages`);
});

test('packUpdates splits IPv6 MP_REACH, using 65535 bytes with extended messages', () => {
  const nlri = Array.from({ length: 3000 }, (_, i) => ({ prefix: `fd00:${(i + 1).toString(16)}::`, len: 64 }));
  for (const [c, max] of [
    [ctx, 4096],
    [makeContext({ extendedMessage: true }), 65535],
  ] as const) {
    const msgs = packUpdates(
      {
        type: 'update',
        withdrawn: [],
        attrs: {
          origin: 'igp',
          asPath: [],
          mpReach: { afi: 2, safi: 1, nextHop: 'fd00::1', linkLocalNextHop: 'fe80::1', nlri },
        },
        nlri: [],
      },
      c,
    );
    const got: Prefix[] = [];
    for (const m of msgs) {
      assert.ok(m.length <= max);
      const r = decodeMessage(m, c);
      assert.ok(r.ok && r.msg.type === 'update');
      got.push(...(r.msg.attrs.mpReach?.nlri ?? []));
    }
    assert.deepStrictEqual(got, nlri);
    if (max === 65535) assert.equal(msgs.length, 1);
  }
});
