/**
 * BGP benchmark (issue 4), bgperf-style, every device under test (DUT) in the same run:
 *
 *  1. Ingest: a tester sends N peers x M unique IPv4 /32s (distinct per peer) to the DUT; a monitor
 *     peer of the DUT measures the time from the first tester session Established until it holds
 *     all N x M prefixes. Per DUT: time to converge, peak RSS of the DUT process (VmHWM), its CPU
 *     seconds in that window (utime+stime from /proc/PID/stat), and prefixes/s.
 *  2. Generator check: the same tester sending straight to the monitor (no DUT), and the tester's
 *     own "all written to the kernel" time in every run (bgperf2: testers (s) ~ elapsed (s) means
 *     you measured the generator).
 *  3. Route reflector: one tester client announces 5,160 prefixes, then withdraws one at a time;
 *     the time until the second client (the monitor) sees each gone: median and max of 20 rounds
 *     after 20 unmeasured ones ("cold") and of 20 more after 5,000 further withdrawals ("steady":
 *     Petrel's JIT has compiled the path by then; every DUT alike). Timestamps: CLOCK_MONOTONIC.
 * Every DUT imports everything and exports everything to every peer (its defaults, as in bgperf):
 * each tester also receives the other testers' routes, so the DUT sends (N-1) x M to each tester.
 * DUTs: Petrel (`bin/petrelctl bgp run --config FILE`, the bundle), BIRD 2 (`bird`), GoBGP
 * (`gobgpd`, no zebra). Tester and monitor are ours (bench/bgp-peers.ts, our codec).
 * Each run gets its own namespaces (`petrel-b-<pid>-<n>`): DUT, tester and monitor, with veths on
 * 10.98.1.0/24 (tester side; the tester's N source addresses are .11...) and 10.98.2.0/24
 * (monitor side). Nothing runs in or touches the root namespace; every process is stopped by PID
 * and every namespace deleted in `finally`. No DUT has a kernel protocol.
 * Targets (issue 4): Petrel faster than GoBGP, within 2x of BIRD's time and 5x of its memory.
 *   node dist/bench/bgp.js [--quick] [--dut petrel,bird,gobgp] [--workloads 10x10000,10x100000]
 * Prints tables; writes bench/results/bgp.json. PETREL_BENCH_NODE_ARGS adds Node flags to the
 * Petrel process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`); PETREL_BENCH_LOG=FILE appends every
 * Petrel run's stderr there (kept after the run).
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { birdConfig, type GobgpNeighbor, gobgpConfig, startBird, startGobgp } from '../test/helpers/bgp-peers.js';
import { createNetns, type Netns, vethBetween } from '../test/helpers/netns.js';
import { type Daemon, startDaemon, waitFor } from '../test/helpers/process.js';
import { type MonitorJob, runMonitor, runTester, type TesterJob } from './bgp-peers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const PETRELCTL = join(ROOT, 'bin/petrelctl');
const DUT_AS = 65000;
const MON_AS = 65100;
const CLK_TCK = 100;
/** A DUT that has not converged by then is reported as timed out (--timeout SEC, default 600). */
const CONVERGE_TIMEOUT_MS = (() => {
  const i = process.argv.indexOf('--timeout');
  return (i > 0 ? Number(process.argv[i + 1]) : 600) * 1000;
})();

type DutName = 'petrel' | 'bird' | 'gobgp';

interface Ev {
  ev: string;
  t: number;
  [k: string]: unknown;
}

/** A tester/monitor process inside a namespace, with its JSON events. */
interface Worker {
  d: Daemon;
  events: Ev[];
  wait(pred: (e: Ev) => boolean, what: string, timeoutMs?: number): Promise<Ev>;
  send(line: string): void;
}

function startWorker(ns: Netns, role: 'tester' | 'monitor', job: TesterJob | MonitorJob): Worker {
  const d = startDaemon(
    'ip',
    ['netns', 'exec', ns.name, process.execPath, SELF, '--worker', role, JSON.stringify(job)],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const events: Ev[] = [];
  let buf = '';
  d.proc.stdout?.on('data', (b: Buffer) => {
    buf += b.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('{')) events.push(JSON.parse(line) as Ev);
      i = buf.indexOf('\n');
    }
  });
  return {
    d,
    events,
    send: (line) => d.proc.stdin?.write(`${line}\n`),
    wait: (pred, what, timeoutMs = 30_000) =>
      waitFor(
        `${role}: ${what}`,
        () => {
          if (d.exited()) throw new Error(`${role} exited: ${d.output().slice(-2000)}`);
          return events.find(pred) as Ev;
        },
        timeoutMs,
        5,
      ),
  };
}

// ------------------------------------------------------------------ /proc

function procStatus(pid: number): { hwmKb: number; rssKb: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? Number.NaN);
  return { hwmKb: kb('VmHWM'), rssKb: kb('VmRSS') };
}

function cpuSec(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 (utime, stime); f[0] is field 3.
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

// ------------------------------------------------------------------ DUTs

/** The Node flags of a bundle's `#!/usr/bin/env -S node ...` line: the DUT runs as shipped. */
function shebangFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').slice(0, 200).split('\n')[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  return m ? (m[1] ?? '').trim().split(/\s+/).filter(Boolean) : [];
}

interface DutPeer {
  address: string;
  asn: number;
  passive: boolean;
  rrClient?: boolean;
  /** Local address of the DUT on this peer's link. */
  local: string;
}

interface DutHandle {
  pid: number;
  stop(): Promise<void>;
}

async function startDut(
  name: DutName,
  ns: Netns,
  routerId: string,
  peers: DutPeer[],
  rr: boolean,
  tmp: string,
): Promise<DutHandle> {
  if (name === 'petrel') {
    const file = join(tmp, 'petrel.json');
    writeFileSync(
      file,
      JSON.stringify({
        asn: DUT_AS,
        routerId,
        listen: { address: '0.0.0.0', port: 179 },
        status: { address: '127.0.0.1', port: 9179 },
        ...(rr ? { routeReflector: { clusterId: routerId } } : {}),
        peers: peers.map((p) => ({
          address: p.address,
          asn: p.asn,
          passive: p.passive,
          families: ['ipv4'],
          connectRetrySec: 1,
          idleHoldSec: 1,
          routeReflectorClient: p.rrClient ?? false,
        })),
      }),
    );
    const out = openSync('/dev/null', 'w');
    const log = openSync(
      process.env.PETREL_BENCH_LOG ?? join(tmp, 'petrel.log'),
      process.env.PETREL_BENCH_LOG ? 'a' : 'w',
    );
    const extra = (process.env.PETREL_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const d = startDaemon(
      'ip',
      [
        'netns',
        'exec',
        ns.name,
        process.execPath,
        ...shebangFlags(PETRELCTL),
        ...extra,
        PETRELCTL,
        '--log-level',
        'warn',
        'bgp',
        'run',
        '--config',
        file,
      ],
      // The route stream (one JSON line per best-route change) goes to /dev/null: it is part of
      // the work, but nobody reads it here.
      { stdio: ['ignore', out, log] },
    );
    closeSync(out);
    closeSync(log);
    return { pid: d.pid, stop: () => d.stop(10_000) };
  }
  if (name === 'bird') {
    const cfg = birdConfig({
      routerId,
      direct: rr,
      neighbors: peers.map((p, i) => ({
        name: `p${i}`,
        localAddress: p.local,
        localAs: DUT_AS,
        address: p.address,
        as: p.asn,
        passive: p.passive,
        // iBGP next hops resolve recursively through `protocol direct` (rr: true).
        extra: `connect delay time 1;${p.rrClient ? ` rr client; rr cluster id ${routerId};` : ''}`,
      })),
    });
    const b = await startBird(ns, cfg);
    return { pid: b.pid, stop: () => b.stop() };
  }
  const neighbors: GobgpNeighbor[] = peers.map((p) => ({
    address: p.address,
    as: p.asn,
    families: ['ipv4-unicast'],
    passive: p.passive,
    ...(p.rrClient ? { routeReflectorClusterId: routerId } : {}),
  }));
  const g = await startGobgp(ns, gobgpConfig({ routerId, as: DUT_AS, neighbors }));
  return { pid: g.pid, stop: () => g.stop() };
}

// ------------------------------------------------------------------ topology

interface Topo {
  dut: Netns;
  tst: Netns;
  mon: Netns;
  destroy(): Promise<void>;
}

const testerAddr = (i: number) => `10.98.1.${11 + i}`;

async function topo(nPeers: number): Promise<Topo> {
  const made: Netns[] = [];
  try {
    const dut = await createNetns('dut', 'petrel-b');
    made.push(dut);
    const tst = await createNetns('tst', 'petrel-b');
    made.push(tst);
    const mon = await createNetns('mon', 'petrel-b');
    made.push(mon);
    await vethBetween(dut, tst, { aName: 'to-tst', bName: 'to-dut', aAddr: '10.98.1.1/24' });
    for (let i = 0; i < nPeers; i++) await tst.ip('addr', 'add', `${testerAddr(i)}/24`, 'dev', 'to-dut');
    await vethBetween(dut, mon, { aName: 'to-mon', bName: 'to-dut', aAddr: '10.98.2.1/24', bAddr: '10.98.2.2/24' });
    return {
      dut,
      tst,
      mon,
      destroy: async () => {
        for (const ns of made) await ns.delete();
      },
    };
  } catch (err) {
    for (const ns of made) await ns.delete();
    throw err;
  }
}

// ------------------------------------------------------------------ runs

interface IngestResult {
  dut: DutName | 'sink';
  peers: number;
  perPeer: number;
  convergeSec: number;
  prefixesPerSec: number;
  /** Tester: first session up -> all tables written to the kernel. */
  testerSendSec: number;
  peakRssMb?: number;
  idleRssMb?: number;
  cpuSec?: number;
  error?: string;
}

async function ingest(dutName: DutName | 'sink', nPeers: number, perPeer: number): Promise<IngestResult> {
  const total = nPeers * perPeer;
  const t = await topo(nPeers);
  const tmp = mkdtempSync(join(tmpdir(), 'petrel-bench-bgp-'));
  const stops: (() => Promise<void>)[] = [];
  try {
    const peers = Array.from({ length: nPeers }, (_, i) => ({ address: testerAddr(i), asn: 65001 + i }));
    let dut: DutHandle | undefined;
    let mon: Worker;
    if (dutName === 'sink') {
      // The monitor listens on the DUT's address: the tester sends straight to it.
      mon = startWorker(t.dut, 'monitor', {
        address: '10.98.1.1',
        port: 179,
        asn: DUT_AS,
        routerId: '10.98.1.1',
        expected: total,
      });
      stops.push(() => mon.d.stop());
      await mon.wait((e) => e.ev === 'listening', 'listening');
    } else {
      mon = startWorker(t.mon, 'monitor', {
        address: '10.98.2.2',
        port: 179,
        asn: MON_AS,
        routerId: '10.98.2.2',
        expected: total,
      });
      stops.push(() => mon.d.stop());
      await mon.wait((e) => e.ev === 'listening', 'listening');
      const dutPeers: DutPeer[] = [
        ...peers.map((p) => ({ ...p, passive: true, local: '10.98.1.1' })),
        { address: '10.98.2.2', asn: MON_AS, passive: false, local: '10.98.2.1' },
      ];
      const d = await startDut(dutName, t.dut, '10.98.2.1', dutPeers, false, tmp);
      dut = d;
      stops.push(() => d.stop());
      await mon.wait((e) => e.ev === 'up', 'DUT session up', 60_000);
      await delay(500);
    }
    const idle = dut ? procStatus(dut.pid) : undefined;
    const cpu0 = dut ? cpuSec(dut.pid) : 0;
    const tester = startWorker(t.tst, 'tester', { dut: '10.98.1.1', port: 179, peers, dutAs: DUT_AS, perPeer });
    stops.push(() => tester.d.stop());
    const first = await tester.wait((e) => e.ev === 'firstUp', 'first session up', 60_000);
    const done = await mon.wait((e) => e.ev === 'complete', `all ${total} prefixes`, CONVERGE_TIMEOUT_MS);
    const sent = await tester.wait((e) => e.ev === 'allSent', 'all sent', 60_000);
    const convergeSec = (done.t - first.t) / 1000;
    const r: IngestResult = {
      dut: dutName,
      peers: nPeers,
      perPeer,
      convergeSec,
      prefixesPerSec: Math.round(total / convergeSec),
      testerSendSec: (sent.t - first.t) / 1000,
    };
    if (dut && idle) {
      r.cpuSec = cpuSec(dut.pid) - cpu0;
      r.peakRssMb = procStatus(dut.pid).hwmKb / 1024;
      r.idleRssMb = idle.rssKb / 1024;
    }
    return r;
  } catch (err) {
    return {
      dut: dutName,
      peers: nPeers,
      perPeer,
      convergeSec: Number.NaN,
      prefixesPerSec: Number.NaN,
      testerSendSec: Number.NaN,
      error: (err as Error).message,
    };
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    await t.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface RrResult {
  dut: DutName;
  tableSec: number;
  /** Rounds RR_WARMUP+1 .. RR_WARMUP+RR_ROUNDS after start ("cold"). */
  withdrawMs: number[];
  medianMs: number;
  maxMs: number;
  /** RR_ROUNDS rounds after RR_STEADY more (steady state). */
  steadyMs: number[];
  steadyMedianMs: number;
  steadyMaxMs: number;
  error?: string;
}

const RR_ROUNDS = 20;
/** Withdrawals before the first measured ones (sessions settled). */
const RR_WARMUP = 20;
/**
 * Withdrawals (1 ms apart) between the cold and the steady-state measurement, for every DUT
 * alike. A route reflector runs for months; Petrel's code paths are interpreted until the JIT
 * has seen them a few thousand times (decoding one small UPDATE: ~60 us cold, 0.3 us compiled),
 * which the first rounds after start measure. Both figures are printed.
 */
const RR_STEADY = 5000;
const RR_TABLE = RR_WARMUP + RR_ROUNDS + RR_STEADY + RR_ROUNDS + 100;

async function reflectorWithdraw(dutName: DutName): Promise<RrResult> {
  const t = await topo(1);
  const tmp = mkdtempSync(join(tmpdir(), 'petrel-bench-bgp-'));
  const stops: (() => Promise<void>)[] = [];
  try {
    const mon = startWorker(t.mon, 'monitor', {
      address: '10.98.2.2',
      port: 179,
      asn: DUT_AS,
      routerId: '10.98.2.2',
      expected: RR_TABLE,
      watch: true,
    });
    stops.push(() => mon.d.stop());
    await mon.wait((e) => e.ev === 'listening', 'listening');
    const dutPeers: DutPeer[] = [
      { address: testerAddr(0), asn: DUT_AS, passive: true, rrClient: true, local: '10.98.1.1' },
      { address: '10.98.2.2', asn: DUT_AS, passive: false, rrClient: true, local: '10.98.2.1' },
    ];
    const d = await startDut(dutName, t.dut, '10.98.2.1', dutPeers, true, tmp);
    stops.push(() => d.stop());
    await mon.wait((e) => e.ev === 'up', 'DUT session up', 60_000);
    const tester = startWorker(t.tst, 'tester', {
      dut: '10.98.1.1',
      port: 179,
      peers: [{ address: testerAddr(0), asn: DUT_AS }],
      dutAs: DUT_AS,
      perPeer: RR_TABLE,
    });
    stops.push(() => tester.d.stop());
    const first = await tester.wait((e) => e.ev === 'firstUp', 'session up', 60_000);
    const full = await mon.wait((e) => e.ev === 'complete', 'reflected table', 120_000);
    const withdrawMs: number[] = [];
    const steadyMs: number[] = [];
    const coldEnd = RR_WARMUP + RR_ROUNDS;
    const steadyStart = coldEnd + RR_STEADY;
    for (let k = 0; k < steadyStart + RR_ROUNDS; k++) {
      const measured = (k >= RR_WARMUP && k < coldEnd) || k >= steadyStart;
      await delay(measured ? 100 : k < RR_WARMUP ? 20 : 1);
      tester.send(`withdraw 0 ${k}`);
      const s = await tester.wait((e) => e.ev === 'withdrawSent' && e.index === k, `withdraw ${k} sent`);
      const g = await mon.wait((e) => e.ev === 'withdrawn' && e.index === k, `withdraw ${k} seen`, 60_000);
      if (measured) (k < coldEnd ? withdrawMs : steadyMs).push(g.t - s.t);
    }
    const med = (l: number[]) => {
      const x = [...l].sort((a, b) => a - b);
      return ((x[RR_ROUNDS / 2 - 1] as number) + (x[RR_ROUNDS / 2] as number)) / 2;
    };
    return {
      dut: dutName,
      tableSec: (full.t - first.t) / 1000,
      withdrawMs,
      medianMs: med(withdrawMs),
      maxMs: Math.max(...withdrawMs),
      steadyMs,
      steadyMedianMs: med(steadyMs),
      steadyMaxMs: Math.max(...steadyMs),
    };
  } catch (err) {
    return {
      dut: dutName,
      tableSec: Number.NaN,
      withdrawMs: [],
      medianMs: Number.NaN,
      maxMs: Number.NaN,
      steadyMs: [],
      steadyMedianMs: Number.NaN,
      steadyMaxMs: Number.NaN,
      error: (err as Error).message,
    };
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    await t.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ main

function argList(name: string): string[] | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : undefined;
}

const f = (x: number | undefined, d = 2) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the BGP benchmark needs root (network namespaces)');
  const quick = process.argv.includes('--quick');
  const duts = (argList('dut') ?? ['petrel', 'bird', 'gobgp']) as DutName[];
  const workloads = (argList('workloads') ?? (quick ? ['10x10000'] : ['10x10000', '10x100000'])).map((w) => {
    const [n, m] = w.split('x').map(Number);
    return { n: n as number, m: m as number };
  });
  const ingestResults: IngestResult[] = [];
  for (const w of workloads) {
    for (const d of ['sink' as const, ...duts]) {
      process.stderr.write(`ingest ${w.n}x${w.m} ${d} ...\n`);
      const r = await ingest(d, w.n, w.m);
      if (r.error) process.stderr.write(`  error: ${r.error}\n`);
      ingestResults.push(r);
    }
  }
  const rrResults: RrResult[] = [];
  for (const d of duts) {
    process.stderr.write(`reflector withdraw ${d} ...\n`);
    const r = await reflectorWithdraw(d);
    if (r.error) process.stderr.write(`  error: ${r.error}\n`);
    rrResults.push(r);
  }

  console.log('\nIngest: N peers x M /32s -> DUT -> monitor (tester and monitor: Petrel codec, one process each)');
  console.log(
    '| workload | DUT | converge (s) | prefixes/s | peak RSS (MB) | idle RSS (MB) | CPU (s) | tester send (s) |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of ingestResults) {
    console.log(
      `| ${r.peers}x${r.perPeer} | ${r.dut === 'sink' ? 'none (tester -> monitor)' : r.dut} | ${f(r.convergeSec)} | ${Number.isNaN(r.prefixesPerSec) ? '-' : r.prefixesPerSec} | ${f(r.peakRssMb, 1)} | ${f(r.idleRssMb, 1)} | ${f(r.cpuSec)} | ${f(r.testerSendSec)} |${r.error ? ` error: ${r.error.slice(0, 120)}` : ''}`,
    );
  }
  console.log(
    `\nRoute reflector: one client withdraws one of its ${RR_TABLE} prefixes at a time; time until the other client sees it gone (ms; ${RR_ROUNDS} rounds each: "cold" after ${RR_WARMUP} unmeasured, "steady" after ${RR_STEADY} more)`,
  );
  console.log('| reflector | cold median | cold max | steady median | steady max | initial table (s) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rrResults)
    console.log(
      `| ${r.dut} | ${f(r.medianMs, 2)} | ${f(r.maxMs, 2)} | ${f(r.steadyMedianMs, 2)} | ${f(r.steadyMaxMs, 2)} | ${f(r.tableSec)} |${r.error ? ` error: ${r.error.slice(0, 120)}` : ''}`,
    );

  const targets: Record<string, Record<string, boolean | undefined>> = {};
  for (const w of workloads) {
    const get = (d: string) => ingestResults.find((r) => r.dut === d && r.peers === w.n && r.perPeer === w.m);
    const p = get('petrel');
    const b = get('bird');
    const g = get('gobgp');
    const ok = (x: boolean) => (Number.isNaN(p?.convergeSec ?? Number.NaN) ? undefined : x);
    targets[`${w.n}x${w.m}`] = {
      fasterThanGobgp: p && g ? ok(p.convergeSec < g.convergeSec) : undefined,
      within2xBirdTime: p && b ? ok(p.convergeSec <= 2 * b.convergeSec) : undefined,
      within5xBirdMemory:
        p?.peakRssMb !== undefined && b?.peakRssMb !== undefined ? ok(p.peakRssMb <= 5 * b.peakRssMb) : undefined,
    };
  }
  const pr = rrResults.find((r) => r.dut === 'petrel');
  const gr = rrResults.find((r) => r.dut === 'gobgp');
  const br = rrResults.find((r) => r.dut === 'bird');
  targets.reflectorWithdrawSteady = {
    fasterThanGobgp: pr && gr ? pr.steadyMedianMs < gr.steadyMedianMs : undefined,
    within2xBirdTime: pr && br ? pr.steadyMedianMs <= 2 * br.steadyMedianMs : undefined,
  };
  targets.reflectorWithdrawCold = {
    fasterThanGobgp: pr && gr ? pr.medianMs < gr.medianMs : undefined,
    within2xBirdTime: pr && br ? pr.medianMs <= 2 * br.medianMs : undefined,
  };
  console.log('\ntargets (Petrel): ');
  for (const [k, v] of Object.entries(targets))
    console.log(
      `  ${k}: ${Object.entries(v)
        .map(([n, x]) => `${n}=${x === undefined ? 'n/a' : x}`)
        .join(' ')}`,
    );
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench/results/bgp.json'),
    `${JSON.stringify(
      {
        when: new Date().toISOString(),
        host: { cpus: (await import('node:os')).cpus().length, node: process.version },
        tester: 'petrel codec (packUpdates/encodeMessage), one process, N sessions',
        monitor: 'petrel codec (Framer/decodeMessage, NLRI walked directly), passive',
        ingest: ingestResults,
        reflectorWithdraw: rrResults,
        targets,
      },
      null,
      2,
    )}\n`,
  );
}

const wi = process.argv.indexOf('--worker');
if (wi > 0) {
  const role = process.argv[wi + 1];
  const job = JSON.parse(process.argv[wi + 2] ?? '{}') as TesterJob & MonitorJob;
  if (role === 'tester') runTester(job);
  else runMonitor(job);
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
