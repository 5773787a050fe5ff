/**
 * Codec throughput: decode and encode of UPDATEs packed with IPv4 /26 prefixes (classic NLRI)
 * and with IPv6 /64 prefixes in MP_REACH_NLRI, each with the production prefix loops ("direct")
 * and with the buffer-layout PrefixLayout/ByteBoundedSeq loops ("buffer-layout").
 *
 *   node dist/bench/codec.js [--seconds 1.5] [--prefixes 200000]
 *
 * Prints a table and writes bench/results/codec.json. Target (issue 3): decode >= 1,000,000
 * IPv4 prefixes/s.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  type CodecContext,
  decodeMessage,
  encodeMessage,
  makeContext,
  type Prefix,
  packUpdates,
  type UpdateMessage,
} from '../bgp/codec/index.js';
import { useLayoutNlri } from '../bgp/codec/nlri.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const SECONDS = arg('seconds', 1.5);
const N = arg('prefixes', 200_000);

interface Workload {
  name: string;
  ctx: CodecContext;
  frames: Buffer[];
  msgs: UpdateMessage[];
  prefixes: number;
  bytes: number;
}

function workload(name: string, ctx: CodecContext, msg: UpdateMessage): Workload {
  const frames = packUpdates(msg, ctx);
  const msgs: UpdateMessage[] = [];
  let prefixes = 0;
  let bytes = 0;
  for (const f of frames) {
    const r = decodeMessage(f, ctx);
    if (!r.ok || r.msg.type !== 'update') throw new Error('workload does not decode');
    msgs.push(r.msg);
    prefixes += r.msg.nlri.length + (r.msg.attrs.mpReach?.nlri.length ?? 0);
    bytes += f.length;
  }
  return { name, ctx, frames, msgs, prefixes, bytes };
}

const v4: Prefix[] = Array.from({ length: N }, (_, i) => ({
  prefix: `10.${(i >> 10) & 255}.${(i >> 2) & 255}.${(i & 3) * 64}`,
  len: 26,
}));
// distinct /64s: fd00:<hi>:<lo>::/64
const v6: Prefix[] = Array.from({ length: N }, (_, i) => ({
  prefix: `fd00:${((i >>> 16) + 1).toString(16)}:${(i & 0xffff).toString(16)}::`,
  len: 64,
}));
const ctx = makeContext();
const ctxExt = makeContext({ extendedMessage: true });
const base = { origin: 'igp' as const, asPath: [{ type: 'sequence' as const, asns: [65001] }], med: 0 };
const workloads: Workload[] = [
  workload('ipv4 /26 classic (4096 B msgs)', ctx, {
    type: 'update',
    withdrawn: [],
    attrs: { ...base, nextHop: '10.99.0.1' },
    nlri: v4,
  }),
  workload('ipv6 /64 MP_REACH (4096 B msgs)', ctx, {
    type: 'update',
    withdrawn: [],
    attrs: { ...base, mpReach: { afi: 2, safi: 1, nextHop: 'fd99::1', linkLocalNextHop: 'fe80::1', nlri: v6 } },
    nlri: [],
  }),
  workload('ipv4 /26 classic (65535 B ext msgs)', ctxExt, {
    type: 'update',
    withdrawn: [],
    attrs: { ...base, nextHop: '10.99.0.1' },
    nlri: v4,
  }),
];

function timeLoop(fn: () => void): { passes: number; sec: number } {
  fn(); // warm-up
  const t0 = performance.now();
  let passes = 0;
  let sec = 0;
  do {
    fn();
    passes++;
    sec = (performance.now() - t0) / 1000;
  } while (sec < SECONDS || passes < 3);
  return { passes, sec };
}

interface Row {
  workload: string;
  impl: 'direct' | 'buffer-layout';
  op: 'decode' | 'encode';
  messages: number;
  prefixesPerSec: number;
  bytesPerSec: number;
  nsPerPrefix: number;
}
const rows: Row[] = [];

for (const impl of ['direct', 'buffer-layout'] as const) {
  useLayoutNlri(impl === 'buffer-layout');
  for (const w of workloads) {
    let sink = 0;
    const dec = timeLoop(() => {
      for (const f of w.frames) {
        const r = decodeMessage(f, w.ctx);
        if (r.ok) sink++;
      }
    });
    const enc = timeLoop(() => {
      for (const m of w.msgs) sink += encodeMessage(m, w.ctx).length;
    });
    if (sink === 0) throw new Error('nothing decoded');
    for (const [op, t] of [
      ['decode', dec],
      ['encode', enc],
    ] as const) {
      const pps = (w.prefixes * t.passes) / t.sec;
      rows.push({
        workload: w.name,
        impl,
        op,
        messages: w.frames.length,
        prefixesPerSec: Math.round(pps),
        bytesPerSec: Math.round((w.bytes * t.passes) / t.sec),
        nsPerPrefix: Math.round((1e9 / pps) * 10) / 10,
      });
    }
  }
}
useLayoutNlri(false);

const fmt = (n: number) => n.toLocaleString('en-US');
const header = ['workload', 'impl', 'op', 'msgs', 'prefixes/s', 'MB/s', 'ns/prefix'];
const table = rows.map((r) => [
  r.workload,
  r.impl,
  r.op,
  String(r.messages),
  fmt(r.prefixesPerSec),
  (r.bytesPerSec / 1e6).toFixed(1),
  r.nsPerPrefix.toFixed(1),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => (t[i] as string).length)));
const line = (cells: string[]) =>
  cells.map((c, i) => (i >= 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ');
console.log(
  `BGP codec throughput (${N.toLocaleString('en-US')} prefixes per workload, node ${process.version}, ${cpus()[0]?.model ?? 'cpu?'})`,
);
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const t of table) console.log(line(t));

const target = rows.find(
  (r) => r.impl === 'direct' && r.op === 'decode' && r.workload.startsWith('ipv4 /26 classic (4096'),
);
const ok = (target?.prefixesPerSec ?? 0) >= 1_000_000;
console.log(
  `\ntarget decode >= 1,000,000 IPv4 prefixes/s: ${ok ? 'met' : 'NOT met'} (${fmt(target?.prefixesPerSec ?? 0)}/s)`,
);

const outDir = new URL('../../bench/results/', import.meta.url);
mkdirSync(outDir, { recursive: true });
writeFileSync(
  new URL('codec.json', outDir),
  `${JSON.stringify({ node: process.version, cpu: cpus()[0]?.model, prefixesPerWorkload: N, seconds: SECONDS, targetMet: ok, rows }, null, 2)}\n`,
);
console.log('wrote bench/results/codec.json');
