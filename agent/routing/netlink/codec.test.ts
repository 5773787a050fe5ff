import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CodecError,
  encodeRouteRequest,
  errnoMessage,
  formatRequestLine,
  MAX_ROUTE_REQUEST,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  parseAnswers,
  parseRequestLine,
  parseRouteEvents,
  RTM_DELROUTE,
  RTM_NEWROUTE,
} from './codec.js';

function enc(r: Parameters<typeof encodeRouteRequest>[0], seq = 7, ack = false) {
  const buf = new Uint8Array(MAX_ROUTE_REQUEST + 8).fill(0xee);
  const n = encodeRouteRequest(r, seq, ack, buf, 4);
  const m = buf.subarray(4, 4 + n);
  const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
  const attrs = new Map<number, Uint8Array>();
  for (let o = 28; o < n; ) {
    const len = dv.getUint16(o, true);
    attrs.set(dv.getUint16(o + 2, true), m.slice(o + 4, o + len));
    o += (len + 3) & ~3;
  }
  return {
    n,
    len: dv.getUint32(0, true),
    type: dv.getUint16(4, true),
    flags: dv.getUint16(6, true),
    seq: dv.getUint32(8, true),
    rtm: [...m.subarray(16, 24)],
    rtmFlags: dv.getUint32(24, true),
    attrs,
    after: buf[4 + n],
  };
}

test('IPv4 route via a gateway on a device, onlink: header, rtmsg and attributes as ip builds them', () => {
  const e = enc({
    op: 'add',
    family: 4,
    type: 'unicast',
    dst: '10.0.1.0/26',
    gateway: '10.0.0.2',
    oif: 3,
    onlink: true,
  });
  assert.equal(e.n, 52);
  assert.equal(e.len, 52);
  assert.equal(e.type, RTM_NEWROUTE);
  assert.equal(e.flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL);
  assert.equal(e.seq, 7);
  // family, dst_len, src_len, tos, table main, proto 80, scope universe, type unicast
  assert.deepEqual(e.rtm, [2, 26, 0, 0, 254, 80, 0, 1]);
  assert.equal(e.rtmFlags, 4, 'RTNH_F_ONLINK');
  assert.deepEqual([...(e.attrs.get(1) ?? [])], [10, 0, 1, 0], 'RTA_DST');
  assert.deepEqual([...(e.attrs.get(5) ?? [])], [10, 0, 0, 2], 'RTA_GATEWAY');
  assert.deepEqual([...(e.attrs.get(4) ?? [])], [3, 0, 0, 0], 'RTA_OIF');
  assert.equal(e.after, 0xee, 'nothing written past the message');
});

test('replace asks for CREATE|REPLACE; ack adds NLM_F_ACK; a device route has scope link', () => {
  const e = enc({ op: 'replace', family: 4, type: 'unicast', dst: '10.0.3.7/32', oif: 9 }, 1, true);
  assert.equal(e.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
  assert.equal(e.rtm[6], 253, 'RT_SCOPE_LINK');
  assert.equal(e.attrs.has(5), false);
  assert.equal(e.rtmFlags, 0);
});

test('IPv6 via gateway: 16-byte addresses; blackhole: type 6, no next hop', () => {
  const e = enc({ op: 'add', family: 6, type: 'unicast', dst: 'fd00:1::/122', gateway: 'fd99::2', oif: 2 });
  assert.equal(e.rtm[0], 10);
  assert.equal(e.rtm[1], 122);
  assert.deepEqual([...(e.attrs.get(1) ?? [])], [0xfd, 0, 0, 1, ...Array(12).fill(0)]);
  assert.deepEqual([...(e.attrs.get(5) ?? [])], [0xfd, 0x99, ...Array(13).fill(0), 2]);
  const b = enc({ op: 'add', family: 4, type: 'blackhole', dst: '10.0.4.0/26', oif: 5, gateway: '10.0.0.1' });
  assert.equal(b.rtm[7], 6, 'RTN_BLACKHOLE');
  assert.deepEqual([...b.attrs.keys()], [1], 'a blackhole carries only its destination');
});

test('delete: RTM_DELROUTE, proto 80 (only ours), scope nowhere, no next hop, no create flags', () => {
  const e = enc({ op: 'delete', family: 4, type: 'unicast', dst: '10.0.1.0/26', gateway: '10.0.0.2', oif: 3 });
  assert.equal(e.type, RTM_DELROUTE);
  assert.equal(e.flags, NLM_F_REQUEST);
  assert.equal(e.rtm[5], 80);
  assert.equal(e.rtm[6], 255);
  assert.deepEqual([...e.attrs.keys()], [1]);
});

test('bad input is refused with CodecError', () => {
  const bad = [
    { op: 'add', family: 4, type: 'unicast', dst: '10.0.1.0/33', gateway: '10.0.0.2' },
    { op: 'add', family: 4, type: 'unicast', dst: '10.0.1.0/2x', gateway: '10.0.0.2' },
    { op: 'add', family: 4, type: 'unicast', dst: 'fd00::/64', gateway: '10.0.0.2' },
    { op: 'add', family: 6, type: 'unicast', dst: 'fd00::/64', gateway: '10.0.0.2' },
    { op: 'add', family: 4, type: 'unicast', dst: '10.0.1.0/26' },
  ] as const;
  for (const r of bad) assert.throws(() => enc(r), CodecError, JSON.stringify(r));
});

/** An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK (+ an EXT_ACK message when given). */
function errorMsg(seq: number, err: number, text?: string): Uint8Array {
  const tlv = text ? (4 + text.length + 1 + 3) & ~3 : 0;
  const len = 16 + 4 + 16 + tlv;
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 0x100 | (text ? 0x200 : 0), true); // NLM_F_CAPPED | NLM_F_ACK_TLVS
  dv.setInt32(16, -err, true);
  dv.setUint32(20, 52, true); // the echoed request header: its length, type, flags, seq
  dv.setUint16(24, RTM_NEWROUTE, true);
  dv.setUint32(28, seq, true);
  if (text) {
    dv.setUint16(36, 4 + text.length + 1, true);
    dv.setUint16(38, 1, true);
    b.set(new TextEncoder().encode(text), 40);
  }
  return b;
}

test('answers: ACK, errno, the kernel message; other message types skipped', () => {
  const done = new Uint8Array(20);
  new DataView(done.buffer).setUint32(0, 20, true);
  new DataView(done.buffer).setUint16(4, 3, true);
  const parts = [errorMsg(5, 17), done, errorMsg(6, 22, 'Nexthop has invalid gateway'), errorMsg(7, 0)];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + 9);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  assert.deepEqual(parseAnswers(all, o), [
    { seq: 5, errno: 17 },
    { seq: 6, errno: 22, message: 'Nexthop has invalid gateway' },
    { seq: 7, errno: 0 },
  ]);
  assert.deepEqual(parseAnswers(all, o - 3), parseAnswers(all, o).slice(0, 2), 'a cut message is not read');
  assert.equal(errnoMessage(17), 'RTNETLINK answers: File exists');
  assert.equal(
    errnoMessage(22, 'Nexthop has invalid gateway'),
    'RTNETLINK answers: Invalid argument: Nexthop has invalid gateway',
  );
});

test('request lines round-trip; malformed lines are refused', () => {
  const r = {
    op: 'replace',
    family: 6,
    type: 'unicast',
    dst: 'fd00::/122',
    gateway: 'fd99::2',
    dev: 'eth0',
    onlink: true,
  } as const;
  assert.deepEqual(parseRequestLine(formatRequestLine(r)), r);
  assert.deepEqual(
    parseRequestLine(formatRequestLine({ op: 'delete', family: 4, type: 'blackhole', dst: '10.0.0.0/26' })),
    {
      op: 'delete',
      family: 4,
      type: 'blackhole',
      dst: '10.0.0.0/26',
      onlink: false,
    },
  );
  for (const bad of [
    '',
    'add 4 unicast 10.0.0.0/26 - - 0 extra',
    'put 4 unicast x - - 0',
    'add 5 unicast x - - 0',
    'add 4 anycast x - - 0',
    'add 4 unicast x - - 2',
  ])
    assert.throws(() => parseRequestLine(bad), CodecError, bad);
});

test("route notifications: ours decoded, our own socket's echoes, other protocols and tables skipped", () => {
  const buf = new Uint8Array(8 * MAX_ROUTE_REQUEST + 64);
  const dv = new DataView(buf.buffer);
  let off = 0;
  /** A request as the kernel's notification of it: nlmsg_pid = the port whose request caused it. */
  const put = (r: Parameters<typeof encodeRouteRequest>[0], port: number, edit?: (at: number) => void) => {
    const n = encodeRouteRequest(r, 1, false, buf, off);
    dv.setUint32(off + 12, port, true);
    edit?.(off);
    off += n;
  };
  put(
    { op: 'add', family: 4, type: 'unicast', dst: '10.244.1.0/26', gateway: '10.99.0.12', oif: 3, onlink: true },
    4242,
  );
  put({ op: 'add', family: 4, type: 'unicast', dst: '10.244.2.0/26', gateway: '10.99.0.13', oif: 3 }, 777); // our echo
  put({ op: 'delete', family: 6, type: 'unicast', dst: 'fd10:244::/122' }, 0); // by the kernel
  put({ op: 'add', family: 4, type: 'blackhole', dst: '10.244.9.0/26' }, 99);
  put({ op: 'add', family: 4, type: 'unicast', dst: '10.1.0.0/16', gateway: '10.99.0.1' }, 5, (at) => {
    buf[at + 16 + 5] = 4; // protocol static: not ours
  });
  put({ op: 'add', family: 4, type: 'unicast', dst: '10.2.0.0/16', gateway: '10.99.0.1' }, 5, (at) => {
    buf[at + 16 + 4] = 100; // another table
  });
  assert.deepEqual(parseRouteEvents(buf, off, 777), [
    { deleted: false, family: 4, type: 'unicast', dst: '10.244.1.0/26', gateway: '10.99.0.12', oif: 3, onlink: true },
    { deleted: true, family: 6, type: 'unicast', dst: 'fd10:244::/122', oif: 0, onlink: false },
    { deleted: false, family: 4, type: 'blackhole', dst: '10.244.9.0/26', oif: 0, onlink: false },
  ]);
  // A truncated message ends the walk without throwing.
  assert.equal(parseRouteEvents(buf, 20, 777).length, 0);
});
