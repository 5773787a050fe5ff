/**
 * CNI benchmark (issue 5), in one run:
 *  1. Plugin processes, executed inside a node netns like a runtime would: ADD and DEL latency
 *     p50/p99, sequential and 16 concurrent, for petrel (+ agent over the socket) and the
 *     reference ptp + host-local; `node -e 0` as the baseline of Node's own start-up.
 *  2. Through containerd's CRI (containerd inside the node netns): RunPodSandbox /
 *     StopPodSandbox / RemovePodSandbox medians for both networks, and a 100-pod burst
 *     (time until all 100 RunPodSandbox calls returned, i.e. all pods have addresses).
 * Targets (issue 10), each a ratio to the reference ptp + host-local in the same run: ADD p50 and
 * DEL p50 <= 2x; 16 concurrent ADDs p50 <= 2x; the 100-pod CRI burst <= 1.3x. `node -e 0` is
 * still printed as a reference point (the floor of the old Node SEA plugin), not a target.
 * Prints a table; writes bench/results/cni.json.
 *   node dist/bench/cni.js [--n 30] [--burst 100] [--cycles 10] [--no-cri] [--trace]
 * --trace runs the plugins with PETREL_CNI_TRACE=1 and prints, for the sequential petrel ADDs, the
 * median time of each phase mark (cni/trace.ts): where an ADD's milliseconds go.
 * The measuring loop runs in a child process inside the node netns (`--driver`), so that every
 * timing is one plugin process, without `ip netns exec` around it.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Containerd, startContainerd } from '../test/helpers/containerd.js';
import { CriClient } from '../test/helpers/cri.js';
import { createNetns, type Netns } from '../test/helpers/netns.js';
import { waitFor } from '../test/helpers/process.js';
import { pluginDir, REF_PLUGINS, startWorld, type World } from '../test/integration/cni/harness.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
}
const med = (xs: number[]) => pct(xs, 50);

// ------------------------------------------------------------------ driver (inside the node netns)

interface DriverJob {
  plugin: string;
  conf: Record<string, unknown>;
  cniPath: string;
  seq: string[];
  par: string[];
  baselineRuns: number;
  trace: boolean;
}
interface DriverOut {
  seqAdd: number[];
  seqDel: number[];
  parAdd: number[];
  parDel: number[];
  baseline: number[];
  /** 16 concurrent `node -e 0`: the floor for 16 concurrent Node plugin processes on this machine. */
  baselinePar16: number[];
  errors: string[];
  /** With --trace: each sequential ADD's `petrel-trace` marks (label -> ms since the spawn). */
  traces: Record<string, number>[];
}

function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  stdin: string,
  trace = false,
): Promise<{ ms: number; code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, {
      env: trace ? { ...env, PETREL_CNI_TRACE: '1', PETREL_CNI_TRACE_T0: String(Date.now()) } : env,
      stdio: ['pipe', 'pipe', trace ? 'pipe' : 'ignore'],
    });
    let out = '';
    let err = '';
    p.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    p.stderr?.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    p.on('close', (code) => resolve({ ms: performance.now() - t0, code: code ?? 1, out, err }));
    p.stdin?.end(stdin);
  });
}

async function driver(job: DriverJob): Promise<DriverOut> {
  const out: DriverOut = {
    seqAdd: [],
    seqDel: [],
    parAdd: [],
    parDel: [],
    baseline: [],
    baselinePar16: [],
    errors: [],
    traces: [],
  };
  let n = 0;
  const one = async (command: string, netns: string, id: string, prevResult?: unknown) => {
    const env = {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: id,
      CNI_NETNS: netns,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${id}`,
      CNI_PATH: job.cniPath,
    };
    const conf = prevResult ? { ...job.conf, prevResult } : job.conf;
    const r = await timed(job.plugin, [], env, JSON.stringify(conf), job.trace);
    if (r.code !== 0) out.errors.push(`${command} ${id}: ${r.out.slice(0, 300)}`);
    return { ms: r.ms, err: r.err, result: r.out ? (JSON.parse(r.out) as unknown) : undefined };
  };
  for (const ns of job.seq) {
    const id = `b${process.pid}s${n++}`;
    const a = await one('ADD', ns, id);
    out.seqAdd.push(a.ms);
    const marks = parseTrace(a.err);
    if (marks) out.traces.push({ ...marks, exit: a.ms });
    out.seqDel.push((await one('DEL', ns, id, a.result)).ms);
  }
  const ids = job.par.map(() => `b${process.pid}p${n++}`);
  const adds = await Promise.all(job.par.map((ns, i) => one('ADD', ns, ids[i] as string)));
  out.parAdd = adds.map((a) => a.ms);
  const dels = await Promise.all(job.par.map((ns, i) => one('DEL', ns, ids[i] as string, adds[i]?.result)));
  out.parDel = dels.map((d) => d.ms);
  for (let i = 0; i < job.baselineRuns; i++)
    out.baseline.push((await timed(process.execPath, ['-e', '0'], process.env, '')).ms);
  const par = await Promise.all(job.par.map(() => timed(process.execPath, ['-e', '0'], process.env, '')));
  out.baselinePar16 = par.map((r) => r.ms);
  return out;
}

/**
 * A `petrel-trace exec=ms label=ms ...` stderr line as label -> ms since the spawn (marks are ms
 * since the runtime's start; `exec` is the spawn-to-start time). Undefined without such a line.
 */
export function parseTrace(stderr: string): Record<string, number> | undefined {
  const line = stderr.split('\n').find((l) => l.startsWith('petrel-trace '));
  if (!line) return undefined;
  const out: Record<string, number> = {};
  let exec = 0;
  for (const part of line.slice('petrel-trace '.length).trim().split(' ')) {
    const [k, v] = part.split('=');
    if (!k || v === undefined) continue;
    if (k === 'exec') exec = Number(v);
    else if (!(k in out)) out[k] = Number(v);
  }
  for (const k of Object.keys(out)) out[k] = (out[k] as number) + exec;
  return { exec, ...out };
}

// ------------------------------------------------------------------ orchestration

async function pluginRound(w: World, name: string, plugin: string, conf: Record<string, unknown>, n: number) {
  const pods: Netns[] = [];
  try {
    for (let i = 0; i < n + 16; i++) pods.push(await createNetns('bp'));
    const job: DriverJob = {
      plugin,
      conf,
      cniPath: `${pluginDir()}:${REF_PLUGINS}`,
      seq: pods.slice(0, n).map((p) => p.path),
      par: pods.slice(n).map((p) => p.path),
      baselineRuns: 20,
      trace: TRACE && name === 'petrel',
    };
    const self = fileURLToPath(import.meta.url);
    const r = await w.node.exec(process.execPath, [self, '--driver', JSON.stringify(job)]);
    if (r.code !== 0) throw new Error(`driver ${name} failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as DriverOut;
    if (out.errors.length > 0) throw new Error(`${name}: ${out.errors.slice(0, 3).join('\n')}`);
    return out;
  } finally {
    for (const p of pods) await p.delete();
  }
}

interface CriRow {
  run: number;
  stop: number;
  remove: number;
  burstMs?: number;
  burstDistinct?: number;
}

async function criRound(
  w: World,
  name: string,
  plugins: Record<string, string>,
  pluginConf: Record<string, unknown>,
  cycles: number,
  burst: number,
): Promise<CriRow> {
  const dir = mkdtempSync(join(tmpdir(), `petrel-bench-${name}-`));
  let ctd: Containerd | undefined;
  let cri: CriClient | undefined;
  /** Every sandbox made and not yet removed: removed in `finally` if the round fails midway. */
  const live = new Set<string>();
  try {
    ctd = await startContainerd({
      dir,
      netnsPath: w.node.path,
      plugins,
      conflist: { cniVersion: '1.0.0', name: `bench-${name}`, plugins: [pluginConf] },
    });
    const c = new CriClient(ctd.socket);
    cri = c;
    await waitFor('NetworkReady', () => c.networkReady(), 20_000, 200);
    const t = { run: [] as number[], stop: [] as number[], remove: [] as number[] };
    for (let i = 0; i < cycles; i++) {
      const { id, ms } = await c.runPodSandbox({ name: `cyc-${i}`, logDirectory: ctd.logDir });
      live.add(id);
      t.run.push(ms);
      t.stop.push(await c.stopPodSandbox(id));
      t.remove.push(await c.removePodSandbox(id));
      live.delete(id);
    }
    const row: CriRow = { run: med(t.run), stop: med(t.stop), remove: med(t.remove) };
    if (burst > 0) {
      const t0 = performance.now();
      const ids = await Promise.all(
        Array.from({ length: burst }, async (_, i) => {
          const r = await c.runPodSandbox({ name: `burst-${i}`, logDirectory: ctd?.logDir ?? dir });
          live.add(r.id);
          return r;
        }),
      );
      row.burstMs = performance.now() - t0;
      const ips = await Promise.all(ids.map(async ({ id }) => (await c.status(id)).ip));
      row.burstDistinct = new Set(ips.filter(Boolean)).size;
      for (let i = 0; i < ids.length; i += 16) {
        await Promise.all(
          ids.slice(i, i + 16).map(async ({ id }) => {
            await c.stopPodSandbox(id);
            await c.removePodSandbox(id);
            live.delete(id);
          }),
        );
      }
    }
    return row;
  } finally {
    // A failed round (e.g. a RunPodSandbox timing out on a loaded machine) must not leave its
    // sandboxes (shims, pause processes, shm mounts) behind: remove them before containerd stops.
    const c = cri;
    const left = [...live];
    for (let i = 0; c && i < left.length; i += 16) {
      await Promise.all(
        left.slice(i, i + 16).map(async (id) => {
          await c.stopPodSandbox(id).catch(() => undefined);
          await c.removePodSandbox(id).catch(() => undefined);
        }),
      );
    }
    cri?.close();
    await ctd?.stop();
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      console.error(`bench: cannot remove ${dir}: ${(err as Error).message}`);
    }
  }
}

const TRACE = process.argv.includes('--trace');

const f = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(1));

async function main(): Promise<void> {
  const n = arg('n', 30);
  const burst = arg('burst', 100);
  const cycles = arg('cycles', 10);
  const withCri = !process.argv.includes('--no-cri');
  const w = await startWorld([{ name: 'default', cidr: '10.123.0.0/16' }]);
  const tmp = mkdtempSync(join(tmpdir(), 'petrel-bench-'));
  try {
    const petrelConf = {
      cniVersion: '1.0.0',
      name: 'bench-petrel',
      type: 'petrel',
      agentSocket: w.socket,
      logLevel: 'warn',
      ipam: { type: 'petrel-ipam' },
    };
    const ptpConf = {
      cniVersion: '1.0.0',
      name: 'bench-ptp',
      type: 'ptp',
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: '10.99.0.0/16' }]],
        routes: [{ dst: '0.0.0.0/0' }],
        dataDir: join(tmp, 'ipam'),
      },
    };
    const petrel = await pluginRound(w, 'petrel', join(pluginDir(), 'petrel'), petrelConf, n);
    const ptp = await pluginRound(w, 'ptp', join(REF_PLUGINS, 'ptp'), ptpConf, n);
    const baseline = med([...petrel.baseline, ...ptp.baseline]);
    const rows = [
      ['petrel (agent)', petrel],
      ['ptp + host-local', ptp],
    ] as const;
    const plugin = Object.fromEntries(
      rows.map(([name, o]) => [
        name,
        {
          seqAdd: { p50: pct(o.seqAdd, 50), p99: pct(o.seqAdd, 99) },
          seqDel: { p50: pct(o.seqDel, 50), p99: pct(o.seqDel, 99) },
          par16Add: { p50: pct(o.parAdd, 50), p99: pct(o.parAdd, 99) },
          par16Del: { p50: pct(o.parDel, 50), p99: pct(o.parDel, 99) },
        },
      ]),
    );
    console.log(`\nCNI plugin processes (ms; n=${n} sequential, 16 concurrent; binary: ${pluginDir()}/petrel)`);
    console.log(
      '| plugin | ADD p50 | ADD p99 | DEL p50 | DEL p99 | 16x ADD p50 | 16x ADD p99 | 16x DEL p50 | 16x DEL p99 |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const [name, o] of rows) {
      console.log(
        `| ${name} | ${[o.seqAdd, o.seqAdd, o.seqDel, o.seqDel, o.parAdd, o.parAdd, o.parDel, o.parDel]
          .map((xs, i) => f(pct(xs, i % 2 === 0 ? 50 : 99)))
          .join(' | ')} |`,
      );
    }
    if (petrel.traces.length > 0) {
      const labels = [...new Set(petrel.traces.flatMap((t) => Object.keys(t)))];
      const at = labels
        .map((l) => [l, med(petrel.traces.flatMap((t) => (t[l] === undefined ? [] : [t[l]])))] as const)
        .sort((a, b) => a[1] - b[1]);
      console.log(`\npetrel ADD phases (median ms since the spawn, ${petrel.traces.length} ADDs):`);
      console.log(at.map(([l, ms]) => `${l} ${ms.toFixed(1)}`).join(' | '));
    }
    const basePar = [...petrel.baselinePar16, ...ptp.baselinePar16];
    console.log(
      `| node -e 0 (baseline) | ${f(baseline)} | | | | ${f(pct(basePar, 50))} | ${f(pct(basePar, 99))} | | |`,
    );
    const ratio = (a: number[], b: number[]) => +(pct(a, 50) / pct(b, 50)).toFixed(2);
    const targets = {
      addP50OverPtp: ratio(petrel.seqAdd, ptp.seqAdd),
      delP50OverPtp: ratio(petrel.seqDel, ptp.seqDel),
      par16AddP50OverPtp: ratio(petrel.parAdd, ptp.parAdd),
    };
    let criResults: Record<string, CriRow> | undefined;
    if (withCri) {
      criResults = {
        petrel: await criRound(
          w,
          'petrel',
          { petrel: join(pluginDir(), 'petrel'), 'petrel-ipam': join(pluginDir(), 'petrel-ipam') },
          { type: 'petrel', agentSocket: w.socket, logLevel: 'warn', ipam: { type: 'petrel-ipam' } },
          cycles,
          burst,
        ),
        'ptp + host-local': await criRound(
          w,
          'ptp',
          { ptp: join(REF_PLUGINS, 'ptp'), 'host-local': join(REF_PLUGINS, 'host-local') },
          {
            type: 'ptp',
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: '10.98.0.0/16' }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: join(tmp, 'ipam2'),
            },
          },
          cycles,
          burst,
        ),
      };
      console.log(
        `\nThrough containerd CRI (ms; medians of ${cycles} cycles; burst of ${burst} RunPodSandbox at once)`,
      );
      console.log(
        '| network | RunPodSandbox | StopPodSandbox | RemovePodSandbox | burst: all addressed | distinct IPs |',
      );
      console.log('|---|---|---|---|---|---|');
      for (const [name, r] of Object.entries(criResults)) {
        console.log(
          `| ${name} | ${f(r.run)} | ${f(r.stop)} | ${f(r.remove)} | ${f(r.burstMs)} | ${r.burstDistinct ?? '-'} |`,
        );
      }
    }
    const pb = criResults?.petrel?.burstMs;
    const rb = criResults?.['ptp + host-local']?.burstMs;
    const burstOverPtp = pb !== undefined && rb !== undefined ? +(pb / rb).toFixed(2) : undefined;
    const verdict = (x: number | undefined, max: number) =>
      x === undefined ? 'not run' : `${x}x ${x <= max ? 'ok' : 'MISSED'}`;
    console.log(
      `\ntargets vs ptp + host-local: ADD p50 <= 2x: ${verdict(targets.addP50OverPtp, 2)}; DEL p50 <= 2x: ${verdict(targets.delP50OverPtp, 2)}; 16x ADD p50 <= 2x: ${verdict(targets.par16AddP50OverPtp, 2)}; 100-pod burst <= 1.3x: ${verdict(burstOverPtp, 1.3)}`,
    );
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/cni.json',
      `${JSON.stringify({ when: new Date().toISOString(), n, baselineNodeMs: baseline, baselineNode16ConcurrentP50Ms: pct(basePar, 50), plugin, cri: criResults, targets: { ...targets, burstOverPtp } }, null, 2)}\n`,
    );
  } finally {
    await w.destroy();
    rmSync(tmp, { recursive: true, force: true });
  }
}

const di = process.argv.indexOf('--driver');
if (di > 0) {
  driver(JSON.parse(process.argv[di + 1] ?? '{}') as DriverJob).then(
    (o) => process.stdout.write(JSON.stringify(o)),
    (err: unknown) => {
      process.stderr.write(String(err));
      process.exit(1);
    },
  );
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
