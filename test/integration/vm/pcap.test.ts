/** The pcap reader the IPIP VM test states the wire with: hand-built frames, no capture needed. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeFrame, PcapError, readPcap } from './pcap.js';

function ipv4(src: string, dst: string, proto: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = 64;
  h[9] = proto;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  return Buffer.concat([h, payload]);
}

function tcp(sport: number, dport: number): Buffer {
  const t = Buffer.alloc(20);
  t.writeUInt16BE(sport, 0);
  t.writeUInt16BE(dport, 2);
  return t;
}

function eth(type: number, l3: Buffer): Buffer {
  const e = Buffer.alloc(14);
  e.writeUInt16BE(type, 12);
  return Buffer.concat([e, l3]);
}

function pcap(frames: Buffer[], opts: { cutLast?: number } = {}): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(262144, 16);
  g.writeUInt32LE(1, 20);
  const recs = frames.map((f) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  const all = Buffer.concat([g, ...recs]);
  return opts.cutLast ? all.subarray(0, all.length - opts.cutLast) : all;
}

test('IPIP frame: outer node addresses with protocol 4, inner pod TCP ports', () => {
  const inner = ipv4('10.244.1.2', '10.244.2.3', 6, tcp(40000, 7070));
  const frames = readPcap(pcap([eth(0x0800, ipv4('10.99.0.11', '10.99.0.12', 4, inner))]));
  assert.deepEqual(frames, [
    {
      outer: { src: '10.99.0.11', dst: '10.99.0.12', proto: 4 },
      inner: { src: '10.244.1.2', dst: '10.244.2.3', proto: 6, srcPort: 40000, dstPort: 7070 },
    },
  ]);
  assert.equal(
    describeFrame(frames[0]!),
    '10.99.0.11 > 10.99.0.12 proto 4 [10.244.1.2:40000 > 10.244.2.3:7070 proto 6]',
  );
});

test('plain TCP, ARP skipped, a record cut short by the kill dropped, empty file = no frames', () => {
  const plain = eth(0x0800, ipv4('10.244.1.2', '10.244.2.3', 6, tcp(1, 2)));
  const arp = eth(0x0806, Buffer.alloc(28));
  const frames = readPcap(pcap([plain, arp, plain], { cutLast: 5 }));
  assert.deepEqual(frames, [{ outer: { src: '10.244.1.2', dst: '10.244.2.3', proto: 6, srcPort: 1, dstPort: 2 } }]);
  assert.deepEqual(readPcap(Buffer.alloc(0)), []);
});

test('not a pcap file, or not Ethernet -> PcapError', () => {
  assert.throws(() => readPcap(Buffer.alloc(24, 1)), PcapError);
  const g = pcap([]);
  g.writeUInt32LE(113, 20);
  assert.throws(() => readPcap(g), PcapError);
});
