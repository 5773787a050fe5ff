/**
 * tshark as an independent BGP decoder: read/write libpcap files, reassemble TCP streams, run
 * tshark's BGP dissector, and reduce both its output and our decoded messages to one comparable
 * summary shape. Used by the oracle integration tests only.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type BgpMessage, type CodecContext, decodeMessage, Framer, type Prefix } from '../../../bgp/codec/index.js';
import { run } from '../../helpers/netns.js';

// ------------------------------------------------------------------ pcap

export interface TcpSegment {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  syn: boolean;
  payload: Buffer;
}

/** Reads a libpcap file (Ethernet link type) and returns its TCP segments in file order. */
export function readPcap(file: string): TcpSegment[] {
  const b = readFileSync(file);
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d)
    throw new Error('not a libpcap file');
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`link type ${u32(20)} is not Ethernet`);
  const out: TcpSegment[] = [];
  for (let p = 24; p + 16 <= b.length; ) {
    const caplen = u32(p + 8);
    const frame = b.subarray(p + 16, p + 16 + caplen);
    p += 16 + caplen;
    const seg = parseEthernet(frame);
    if (seg) out.push(seg);
  }
  return out;
}

function parseEthernet(f: Buffer): TcpSegment | undefined {
  let et = f.readUInt16BE(12);
  let off = 14;
  if (et === 0x8100) {
    et = f.readUInt16BE(16);
    off = 18;
  }
  let src: string;
  let dst: string;
  let proto: number;
  let l4: number;
  let end: number;
  if (et === 0x0800) {
    const ihl = ((f[off] as number) & 0x0f) * 4;
    proto = f[off + 9] as number;
    src = [...f.subarray(off + 12, off + 16)].join('.');
    dst = [...f.subarray(off + 16, off + 20)].join('.');
    l4 = off + ihl;
    end = off + f.readUInt16BE(off + 2);
  } else if (et === 0x86dd) {
    proto = f[off + 6] as number;
    const hex = (s: number) =>
      f
        .subarray(s, s + 16)
        .toString('hex')
        .match(/.{4}/g)
        ?.join(':') ?? '';
    src = hex(off + 8);
    dst = hex(off + 24);
    l4 = off + 40;
    end = l4 + f.readUInt16BE(off + 4);
  } else return undefined;
  if (proto !== 6) return undefined;
  const dataOff = ((f[l4 + 12] as number) >> 4) * 4;
  return {
    src,
    dst,
    sport: f.readUInt16BE(l4),
    dport: f.readUInt16BE(l4 + 2),
    seq: f.readUInt32BE(l4 + 4),
    syn: ((f[l4 + 13] as number) & 0x02) !== 0,
    payload: Buffer.from(f.subarray(l4 + dataOff, end)),
  };
}

export const flowKey = (src: string, sport: number, dst: string, dport: number) => `${src}:${sport}>${dst}:${dport}`;

/** Reassembles each direction's byte stream (sequence order, retransmissions dropped). */
export function tcpStreams(segments: TcpSegment[]): Map<string, Buffer> {
  const flows = new Map<string, { isn?: number; segs: TcpSegment[] }>();
  for (const s of segments) {
    const k = flowKey(s.src, s.sport, s.dst, s.dport);
    let f = flows.get(k);
    if (!f) {
      f = { segs: [] };
      flows.set(k, f);
    }
    if (s.syn) f.isn = s.seq;
    else if (s.payload.length > 0) f.segs.push(s);
  }
  const out = new Map<string, Buffer>();
  for (const [k, f] of flows) {
    if (f.segs.length === 0) continue;
    const base = f.isn !== undefined ? (f.isn + 1) >>> 0 : (f.segs[0] as TcpSegment).seq;
    const rel = f.segs.map((s) => ({ at: (s.seq - base) >>> 0, data: s.payload })).sort((a, b) => a.at - b.at);
    const parts: Buffer[] = [];
    let next = 0;
    for (const r of rel) {
      if (r.at + r.data.length <= next) continue; // retransmission
      if (r.at > next) throw new Error(`gap in ${k} at ${next}`);
      parts.push(r.data.subarray(next - r.at));
      next = r.at + r.data.length;
    }
    out.set(k, Buffer.concat(parts));
  }
  return out;
}

/** Splits a stream into BGP messages with our framer (extended-message limit: 65535). */
export function frameStream(stream: Buffer): Buffer[] {
  const f = new Framer(65535);
  const r = f.push(stream);
  if (r.error) throw r.error;
  if (f.buffered !== 0) throw new Error(`${f.buffered} trailing bytes`);
  return r.frames.map((x) => Buffer.from(x));
}

function ipv4Checksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Writes a libpcap file holding one TCP connection 10.99.0.1:40179 -> 10.99.0.2:179 (handshake,
 * then each message in its own segment, in the given direction). tshark dissects port 179 as BGP.
 */
export function writeBgpPcap(file: string, messages: { fromClient: boolean; bytes: Uint8Array }[]): void {
  const C = { ip: [10, 99, 0, 1], port: 40179, mac: '020000000001' };
  const S = { ip: [10, 99, 0, 2], port: 179, mac: '020000000002' };
  const seq = { c: 1000, s: 5000 };
  const records: Buffer[] = [];
  let t = 0;
  const frame = (fromClient: boolean, flags: number, payload: Uint8Array) => {
    const a = fromClient ? C : S;
    const z = fromClient ? S : C;
    const eth = Buffer.from(`${z.mac}${a.mac}0800`, 'hex');
    const tcp = Buffer.alloc(20);
    tcp.writeUInt16BE(a.port, 0);
    tcp.writeUInt16BE(z.port, 2);
    tcp.writeUInt32BE(fromClient ? seq.c : seq.s, 4);
    tcp.writeUInt32BE(flags & 0x02 && !fromClient ? seq.c : fromClient ? seq.s : seq.c, 8);
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp.writeUInt16BE(65535, 14);
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 20 + payload.length, 2);
    ip[8] = 64;
    ip[9] = 6;
    Buffer.from(a.ip).copy(ip, 12);
    Buffer.from(z.ip).copy(ip, 16);
    ip.writeUInt16BE(ipv4Checksum(ip), 10);
    const data = Buffer.concat([eth, ip, tcp, payload]);
    const rec = Buffer.alloc(16);
    t += 1000;
    rec.writeUInt32LE(1_700_000_000 + Math.floor(t / 1e6), 0);
    rec.writeUInt32LE(t % 1e6, 4);
    rec.writeUInt32LE(data.length, 8);
    rec.writeUInt32LE(data.length, 12);
    records.push(rec, data);
    const adv = payload.length + (flags & 0x02 ? 1 : 0);
    if (fromClient) seq.c = (seq.c + adv) >>> 0;
    else seq.s = (seq.s + adv) >>> 0;
  };
  const ACK = 0x10;
  const PSH = 0x08;
  frame(true, 0x02, new Uint8Array(0)); // SYN
  frame(false, 0x12, new Uint8Array(0)); // SYN+ACK
  frame(true, ACK, new Uint8Array(0));
  for (const m of messages) frame(m.fromClient, ACK | PSH, m.bytes);
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(262144, 16);
  gh.writeUInt32LE(1, 20);
  writeFileSync(file, Buffer.concat([gh, ...records]));
}

// ------------------------------------------------------------------ tshark

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

export interface DissectedMessage {
  flow: string;
  frame: number;
  tree: { [k: string]: Json };
}

/** tshark's BGP dissection of every message in `file`, in frame order, with the flow it belongs to. */
export async function dissect(file: string): Promise<DissectedMessage[]> {
  const r = await run('tshark', ['-r', file, '-T', 'json', '--no-duplicate-keys', '-Y', 'bgp'], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`tshark: ${r.stderr}`);
  const packets = JSON.parse(r.stdout || '[]') as { _source: { layers: { [k: string]: Json } } }[];
  const out: DissectedMessage[] = [];
  for (const p of packets) {
    const L = p._source.layers;
    const ip = (L.ip ?? L.ipv6) as { [k: string]: Json };
    const tcp = L.tcp as { [k: string]: Json };
    const v6 = L.ipv6 !== undefined;
    const addr = (k: string) => {
      const s = String(ip[k]);
      return v6 ? expand6(s) : s;
    };
    const flow = flowKey(
      addr(v6 ? 'ipv6.src' : 'ip.src'),
      Number(tcp['tcp.srcport']),
      addr(v6 ? 'ipv6.dst' : 'ip.dst'),
      Number(tcp['tcp.dstport']),
    );
    const bgp = L.bgp;
    const list = Array.isArray(bgp) ? bgp : [bgp];
    const frame = Number((L.frame as { [k: string]: Json })['frame.number']);
    for (const m of list) out.push({ flow, frame, tree: m as { [k: string]: Json } });
  }
  return out;
}

function expand6(s: string): string {
  const [h = '', t = ''] = s.split('::');
  const hs = h ? h.split(':') : [];
  const ts = s.includes('::') ? (t ? t.split(':') : []) : [];
  const all = s.includes('::') ? [...hs, ...new Array<string>(8 - hs.length - ts.length).fill('0'), ...ts] : hs;
  return all.map((x) => x.padStart(4, '0')).join(':');
}

/** All leaf values under `node` for field `key`, in document order. */
export function fieldValues(node: Json, key: string, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const x of node) fieldValues(x, key, out);
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === key) {
        for (const x of Array.isArray(v) ? v : [v]) if (x === null || typeof x !== 'object') out.push(String(x));
      }
      if (v !== null && typeof v === 'object') fieldValues(v, key, out);
    }
  }
  return out;
}

/** Expert infos (with severity >= warning, 0x600000) and malformed markers anywhere under `node`. */
export function problems(node: Json): string[] {
  const out: string[] = [];
  const walk = (n: Json) => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n !== null && typeof n === 'object') {
      for (const [k, v] of Object.entries(n)) {
        if (k === '_ws.malformed') out.push(`malformed: ${JSON.stringify(v)}`);
        if (k === '_ws.expert' && v !== null && typeof v === 'object') {
          for (const e of Array.isArray(v) ? v : [v]) {
            const sev = Number((e as { [k: string]: Json })['_ws.expert.severity']);
            if (sev >= 0x600000) out.push(`expert: ${String((e as { [k: string]: Json })['_ws.expert.message'])}`);
          }
        }
        walk(v);
      }
    }
  };
  walk(node);
  return out;
}

/** Attribute subtrees by type code. */
function attributes(tree: Json): Map<number, Json> {
  const out = new Map<number, Json>();
  const collect = (n: Json) => {
    if (Array.isArray(n)) n.forEach(collect);
    else if (n !== null && typeof n === 'object') {
      const tc = n['bgp.update.path_attribute.type_code'];
      if (typeof tc === 'string') out.set(Number(tc), n);
      else for (const v of Object.values(n)) collect(v);
    }
  };
  collect(fieldSubtree(tree, 'bgp.update.path_attributes') ?? null);
  return out;
}

function fieldSubtree(node: Json, key: string): Json | undefined {
  if (Array.isArray(node)) {
    for (const x of node) {
      const r = fieldSubtree(x, key);
      if (r !== undefined) return r;
    }
  } else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === key && v !== null && typeof v === 'object') return v;
      const r = fieldSubtree(v, key);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/** Prefix records ("a/len" or "a/len#id") found in dicts holding a `*_prefix` field and bgp.prefix_length. */
function prefixesIn(node: Json | undefined, prefixKey: string): string[] {
  const out: string[] = [];
  const walk = (n: Json | undefined) => {
    if (n === undefined || n === null || typeof n !== 'object') return;
    if (Array.isArray(n)) {
      n.forEach(walk);
      return;
    }
    if (prefixKey in n && 'bgp.prefix_length' in n) {
      const ps = fieldValuesShallow(n, prefixKey);
      const ls = fieldValuesShallow(n, 'bgp.prefix_length');
      const ids = fieldValuesShallow(n, 'bgp.nlri_path_id');
      ps.forEach((p, i) => {
        out.push(`${canon(p)}/${ls[i]}${ids[i] !== undefined ? `#${ids[i]}` : ''}`);
      });
    }
    for (const v of Object.values(n)) walk(v);
  };
  walk(node);
  return out;
}

function fieldValuesShallow(n: { [k: string]: Json }, key: string): string[] {
  const v = n[key];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function canon(addr: string): string {
  return addr.includes(':') ? expand6(addr) : addr;
}

// ------------------------------------------------------------------ summaries

/** The comparable view of one message (only fields both decoders expose). */
export interface Summary {
  type: number;
  length: number;
  open?: {
    myAs: number;
    holdTime: number;
    bgpId: string;
    caps: number[];
    as4: number[];
    mp: string[];
    addPath: string[];
  };
  update?: {
    withdrawn: string[];
    nlri: string[];
    attrTypes: number[];
    origin?: number;
    asPath?: number[];
    nextHop?: string;
    med?: number;
    localPref?: number;
    communities?: string[];
    large?: string[];
    mpReach?: { afi: number; safi: number; nextHop: string; linkLocal?: string; nlri: string[] };
    mpUnreach?: { afi: number; safi: number; withdrawn: string[] };
  };
  notification?: { code: number; subcode: number };
}

const nums = (xs: string[]) => xs.map(Number);

export function summarizeTshark(tree: { [k: string]: Json }): Summary {
  const s: Summary = { type: Number(tree['bgp.type']), length: Number(tree['bgp.length']) };
  if (s.type === 1) {
    s.open = {
      myAs: Number(tree['bgp.open.myas']),
      holdTime: Number(tree['bgp.open.holdtime']),
      bgpId: String(tree['bgp.open.identifier']),
      caps: nums(fieldValues(tree, 'bgp.cap.type')),
      as4: nums(fieldValues(tree, 'bgp.cap.4as')),
      mp: fieldValues(tree, 'bgp.cap.mp.afi').map((a, i) => `${a}/${fieldValues(tree, 'bgp.cap.mp.safi')[i]}`),
      addPath: fieldValues(tree, 'bgp.cap.ap.afi').map(
        (a, i) => `${a}/${fieldValues(tree, 'bgp.cap.ap.safi')[i]}/${fieldValues(tree, 'bgp.cap.ap.sendreceive')[i]}`,
      ),
    };
  } else if (s.type === 2) {
    const attrs = attributes(tree);
    const u: NonNullable<Summary['update']> = {
      withdrawn: prefixesIn(fieldSubtree(tree, 'bgp.update.withdrawn_routes'), 'bgp.withdrawn_prefix'),
      nlri: prefixesIn(fieldSubtree(tree, 'bgp.update.nlri'), 'bgp.nlri_prefix'),
      attrTypes: [...attrs.keys()].sort((a, b) => a - b),
    };
    const one = (t: number, k: string) => {
      const a = attrs.get(t);
      return a === undefined ? undefined : fieldValues(a, k)[0];
    };
    const o = one(1, 'bgp.update.path_attribute.origin');
    if (o !== undefined) u.origin = Number(o);
    const ap = attrs.get(2);
    if (ap !== undefined) {
      u.asPath = nums([
        ...fieldValues(ap, 'bgp.update.path_attribute.as_path_segment.as4'),
        ...fieldValues(ap, 'bgp.update.path_attribute.as_path_segment.as2'),
      ]);
    }
    const nh = one(3, 'bgp.update.path_attribute.next_hop');
    if (nh !== undefined) u.nextHop = nh;
    const med = one(4, 'bgp.update.path_attribute.multi_exit_disc');
    if (med !== undefined) u.med = Number(med);
    const lp = one(5, 'bgp.update.path_attribute.local_pref');
    if (lp !== undefined) u.localPref = Number(lp);
    const c = attrs.get(8);
    if (c !== undefined) {
      const v = fieldValues(c, 'bgp.update.path_attribute.community_value');
      const wk = fieldValues(c, 'bgp.update.path_attribute.community_wellknown');
      u.communities = fieldValues(c, 'bgp.update.path_attribute.community_as').map((a, i) => `${a}:${v[i]}`);
      if (wk.length > 0) u.communities.push(...wk.map((x) => `wk:${Number(x)}`));
    }
    const lc = attrs.get(32);
    if (lc !== undefined) {
      const l1 = fieldValues(lc, 'bgp.large_communities.ldp1');
      const l2 = fieldValues(lc, 'bgp.large_communities.ldp2');
      u.large = fieldValues(lc, 'bgp.large_communities.ga').map((g, i) => `${g}:${l1[i]}:${l2[i]}`);
    }
    const mr = attrs.get(14);
    if (mr !== undefined) {
      const ll = fieldValues(mr, 'bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6.link_local')[0];
      u.mpReach = {
        afi: Number(fieldValues(mr, 'bgp.update.path_attribute.mp_reach_nlri.afi')[0]),
        safi: Number(fieldValues(mr, 'bgp.update.path_attribute.mp_reach_nlri.safi')[0]),
        nextHop: canon(
          fieldValues(mr, 'bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6')[0] ??
            fieldValues(mr, 'bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4')[0] ??
            '',
        ),
        nlri: [...prefixesIn(mr, 'bgp.mp_reach_nlri_ipv6_prefix'), ...prefixesIn(mr, 'bgp.mp_reach_nlri_ipv4_prefix')],
      };
      if (ll !== undefined) u.mpReach.linkLocal = canon(ll);
    }
    const mu = attrs.get(15);
    if (mu !== undefined) {
      u.mpUnreach = {
        afi: Number(fieldValues(mu, 'bgp.update.path_attribute.mp_unreach_nlri.afi')[0]),
        safi: Number(fieldValues(mu, 'bgp.update.path_attribute.mp_unreach_nlri.safi')[0]),
        withdrawn: [
          ...prefixesIn(mu, 'bgp.mp_unreach_nlri_ipv6_prefix'),
          ...prefixesIn(mu, 'bgp.mp_unreach_nlri_ipv4_prefix'),
        ],
      };
    }
    s.update = u;
  } else if (s.type === 3) {
    const minorKey = Object.keys(tree).find((k) => k.startsWith('bgp.notify.minor_error'));
    s.notification = {
      code: Number(fieldValues(tree, 'bgp.notify.major_error')[0]),
      subcode: Number(minorKey === undefined ? 0 : tree[minorKey]),
    };
  }
  return s;
}

const CAP_CODE: Record<string, number> = {
  multiprotocol: 1,
  'route-refresh': 2,
  'extended-message': 6,
  'graceful-restart': 64,
  'four-octet-as': 65,
  'add-path': 69,
  'enhanced-route-refresh': 70,
  fqdn: 73,
};
const ATTR_CODE: Record<string, number> = {
  origin: 1,
  asPath: 2,
  nextHop: 3,
  med: 4,
  localPref: 5,
  atomicAggregate: 6,
  aggregator: 7,
  communities: 8,
  originatorId: 9,
  clusterList: 10,
  mpReach: 14,
  mpUnreach: 15,
  as4Path: 17,
  as4Aggregator: 18,
  largeCommunities: 32,
};

const pfx = (p: Prefix) => `${canon(p.prefix)}/${p.len}${p.pathId !== undefined ? `#${p.pathId}` : ''}`;

/** Our decoded message in the same shape. `length` is the frame length; `dropped` = attribute types we dropped on decode. */
export function summarizeOurs(msg: BgpMessage, length: number, dropped: number[] = []): Summary {
  const typeCode = { open: 1, update: 2, notification: 3, keepalive: 4, 'route-refresh': 5 }[msg.type];
  const s: Summary = { type: typeCode, length };
  if (msg.type === 'open') {
    s.open = {
      myAs: msg.myAs,
      holdTime: msg.holdTimeSec,
      bgpId: msg.bgpId,
      caps: msg.capabilities.map((c) => (c.type === 'unknown' ? c.code : (CAP_CODE[c.type] ?? -1))),
      as4: msg.capabilities.flatMap((c) => (c.type === 'four-octet-as' ? [c.asn] : [])),
      mp: msg.capabilities.flatMap((c) => (c.type === 'multiprotocol' ? [`${c.afi}/${c.safi}`] : [])),
      addPath: msg.capabilities.flatMap((c) =>
        c.type === 'add-path'
          ? c.families.map((f) => `${f.afi}/${f.safi}/${['receive', 'send', 'both'].indexOf(f.mode) + 1}`)
          : [],
      ),
    };
  } else if (msg.type === 'update') {
    const a = msg.attrs;
    const types = Object.keys(a)
      .filter((k) => k !== 'unknown')
      .map((k) => ATTR_CODE[k] ?? -1);
    for (const x of a.unknown ?? []) types.push(x.typeCode);
    types.push(...dropped);
    const u: NonNullable<Summary['update']> = {
      withdrawn: msg.withdrawn.map(pfx),
      nlri: msg.nlri.map(pfx),
      attrTypes: types.sort((x, y) => x - y),
    };
    if (a.origin !== undefined) u.origin = ['igp', 'egp', 'incomplete'].indexOf(a.origin);
    if (a.asPath !== undefined) u.asPath = a.asPath.flatMap((seg) => seg.asns);
    if (a.nextHop !== undefined) u.nextHop = a.nextHop;
    if (a.med !== undefined) u.med = a.med;
    if (a.localPref !== undefined) u.localPref = a.localPref;
    if (a.communities !== undefined) {
      const wk = a.communities.filter((c) => c >= 0xffff0000);
      u.communities = a.communities.filter((c) => c < 0xffff0000).map((c) => `${Math.floor(c / 65536)}:${c & 0xffff}`);
      if (wk.length > 0) u.communities.push(...wk.map((c) => `wk:${c}`));
    }
    if (a.largeCommunities !== undefined)
      u.large = a.largeCommunities.map((l) => `${l.globalAdmin}:${l.localData1}:${l.localData2}`);
    if (a.mpReach !== undefined) {
      u.mpReach = {
        afi: a.mpReach.afi,
        safi: a.mpReach.safi,
        nextHop: canon(a.mpReach.nextHop),
        nlri: a.mpReach.nlri.map(pfx),
      };
      if (a.mpReach.linkLocalNextHop !== undefined) u.mpReach.linkLocal = canon(a.mpReach.linkLocalNextHop);
    }
    if (a.mpUnreach !== undefined) {
      u.mpUnreach = { afi: a.mpUnreach.afi, safi: a.mpUnreach.safi, withdrawn: a.mpUnreach.withdrawn.map(pfx) };
    }
    s.update = u;
  } else if (msg.type === 'notification') {
    s.notification = { code: msg.code, subcode: msg.subcode };
  }
  return s;
}

/** Decodes each message of a flow with `ctx`; throws on any decode failure. */
export function decodeAll(frames: Buffer[], ctx: CodecContext): BgpMessage[] {
  return frames.map((f, i) => {
    const r = decodeMessage(f, ctx);
    if (!r.ok)
      throw new Error(
        `message ${i} (${f.toString('hex').slice(0, 60)}…): ${r.error.code}/${r.error.subcode} ${r.error.message}`,
      );
    if (r.attrErrors.length > 0)
      throw new Error(`message ${i}: attribute errors ${r.attrErrors.map((e) => e.message).join(', ')}`);
    return r.msg;
  });
}
