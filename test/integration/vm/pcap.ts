/**
 * A minimal reader for the classic pcap files `tcpdump -w` writes (linktype 1, Ethernet), enough
 * to state what was on the wire: the outer IPv4 header of each frame and, for IP protocol 4
 * (IPIP, RFC 2003), the inner IPv4 header; TCP ports of whichever header carries TCP. Pure.
 */

export interface Ipv4Summary {
  src: string;
  dst: string;
  /** IP protocol number (4 = IPIP, 6 = TCP) */
  proto: number;
  /** TCP only */
  srcPort?: number;
  dstPort?: number;
}

export interface FrameSummary {
  outer: Ipv4Summary;
  /** The encapsulated packet when outer.proto is 4. */
  inner?: Ipv4Summary;
}

export class PcapError extends Error {
  override readonly name = 'PcapError';
}

const ETH_IPV4 = 0x0800;
const ETH_VLAN = 0x8100;
const PROTO_IPIP = 4;
const PROTO_TCP = 6;

function ipv4At(b: Buffer, off: number): { hdr: Ipv4Summary; payload: number } | undefined {
  if (b.length < off + 20 || b[off]! >> 4 !== 4) return undefined;
  const ihl = (b[off]! & 0x0f) * 4;
  const hdr: Ipv4Summary = {
    src: [...b.subarray(off + 12, off + 16)].join('.'),
    dst: [...b.subarray(off + 16, off + 20)].join('.'),
    proto: b[off + 9]!,
  };
  const payload = off + ihl;
  if (hdr.proto === PROTO_TCP && b.length >= payload + 4) {
    hdr.srcPort = b.readUInt16BE(payload);
    hdr.dstPort = b.readUInt16BE(payload + 2);
  }
  return { hdr, payload };
}

/** The IPv4 frames of a pcap file (other ethertypes are left out). */
export function readPcap(file: Buffer): FrameSummary[] {
  if (file.length < 24) return []; // tcpdump killed before it wrote its header: nothing captured
  const magic = file.readUInt32LE(0);
  let le: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
  else throw new PcapError(`not a pcap file (magic 0x${magic.toString(16)})`);
  const u32 = (o: number) => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const linktype = u32(20);
  if (linktype !== 1) throw new PcapError(`linktype ${linktype}, expected 1 (Ethernet)`);
  const out: FrameSummary[] = [];
  let off = 24;
  while (off + 16 <= file.length) {
    const capLen = u32(off + 8);
    const start = off + 16;
    off = start + capLen;
    if (off > file.length) break; // last record cut short by the kill
    const frame = file.subarray(start, start + capLen);
    if (frame.length < 14) continue;
    let l3 = 14;
    let type = frame.readUInt16BE(12);
    if (type === ETH_VLAN && frame.length >= 18) {
      type = frame.readUInt16BE(16);
      l3 = 18;
    }
    if (type !== ETH_IPV4) continue;
    const o = ipv4At(frame, l3);
    if (!o) continue;
    const f: FrameSummary = { outer: o.hdr };
    if (o.hdr.proto === PROTO_IPIP) {
      const i = ipv4At(frame, o.payload);
      if (i) f.inner = i.hdr;
    }
    out.push(f);
  }
  return out;
}

/** One line per frame, tcpdump-like: "10.0.0.1 > 10.0.0.2 proto 4 [10.244.1.2:40000 > 10.244.2.3:7070 proto 6]". */
export function describeFrame(f: FrameSummary): string {
  const one = (h: Ipv4Summary) =>
    h.srcPort !== undefined
      ? `${h.src}:${h.srcPort} > ${h.dst}:${h.dstPort} proto ${h.proto}`
      : `${h.src} > ${h.dst} proto ${h.proto}`;
  return f.inner ? `${one(f.outer)} [${one(f.inner)}]` : one(f.outer);
}
