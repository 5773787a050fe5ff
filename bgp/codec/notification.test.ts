import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeContext } from './context.js';
import { BgpError, strongestError } from './errors.js';
import { decodeMessage, encodeMessage } from './message.js';
import { errorToNotification, notifications, shutdownNotification } from './notification.js';

const ctx = makeContext();

test('shutdown communication is cut at 255 bytes on a character boundary', () => {
  const n = shutdownNotification('é'.repeat(200));
  assert.equal(Buffer.byteLength(n.communication ?? '', 'utf8'), 254);
  const r = decodeMessage(encodeMessage(n, ctx), ctx);
  assert.ok(r.ok);
  assert.deepStrictEqual(r.msg, n);
});

test('errorToNotification carries code, subcode and data', () => {
  const err = new BgpError(1, 2, 'x', Uint8Array.of(0, 18));
  const bytes = encodeMessage(errorToNotification(err), ctx);
  assert.equal(bytes.toString('hex'), `${'ff'.repeat(16)}00170301020012`);
});

test('every RFC 4271 code/subcode round trips, with the prescribed data', () => {
  const pairs: [number, number][] = [
    [1, 1],
    [1, 2],
    [1, 3],
    [2, 1],
    [2, 2],
    [2, 3],
    [2, 4],
    [2, 6],
    [2, 7],
    [3, 1],
    [3, 2],
    [3, 3],
    [3, 4],
    [3, 5],
    [3, 6],
    [3, 8],
    [3, 9],
    [3, 10],
    [3, 11],
    [4, 0],
    [5, 1],
    [5, 2],
    [5, 3],
    [6, 1],
    [6, 2],
    [6, 3],
    [6, 4],
    [6, 5],
    [6, 6],
    [6, 7],
    [6, 8],
    [6, 9],
    [7, 1],
    [8, 0],
  ];
  for (const [code, subcode] of pairs) {
    const msg = { type: 'notification' as const, code, subcode, data: Uint8Array.of(1, 2) };
    const r = decodeMessage(encodeMessage(msg, ctx), ctx);
    assert.ok(r.ok);
    if (code === 6 && (subcode === 2 || subcode === 4)) continue; // data parsed as a communication
    assert.deepStrictEqual(r.msg, msg);
  }
  assert.equal(Buffer.from(notifications.badMessageLength(4097).data).toString('hex'), '1001');
  assert.equal(Buffer.from(notifications.badMessageType(9).data).toString('hex'), '09');
  assert.equal(Buffer.from(notifications.unsupportedVersion().data).toString('hex'), '0004');
  assert.equal(Buffer.from(notifications.maxPrefixes(1, 1, 1000).data).toString('hex'), '000101000003e8');
});

test('strongestError ranks session-reset > afi-safi-disable > treat-as-withdraw > attribute-discard', () => {
  const e = (a: 'attribute-discard' | 'treat-as-withdraw' | 'afi-safi-disable' | 'session-reset') =>
    new BgpError(3, 1, a, undefined, a);
  assert.equal(strongestError([e('attribute-discard'), e('treat-as-withdraw')])?.action, 'treat-as-withdraw');
  assert.equal(strongestError([e('afi-safi-disable'), e('treat-as-withdraw')])?.action, 'afi-safi-disable');
  assert.equal(
    strongestError([e('treat-as-withdraw'), e('session-reset'), e('afi-safi-disable')])?.action,
    'session-reset',
  );
  assert.equal(strongestError([]), undefined);
});
