/**
 * `petrelctl lab` benchmarks (issue 11), each beside its anchor in the same run:
 *
 *  1. `lab up` wall time, 3 and 10 nodes (netns, mode never, 2 pods per node), through the CLI as a
 *     user runs it (until the summary says healthy: BGP mesh up, pod x pod TCP all OK). Anchor: the
 *     floor of the same machine without Petrel: the same namespaces, bridge and etcd
 *     (agent/lab/cluster.ts with no agent) and the same number of pods wired by the reference
 *     `ptp` + `host-local` plugins. Ratio = lab up / floor.
 *  1b. `lab up --mode ipip` wall time with 3 qemu guests (real kernel: this one has no ipip), 2 pods
 *     per node, until healthy, with the phases from its progress lines. Anchor: the floor of the
 *     same guests without Petrel: boot 3 guests (the same rig, in a private netns) and make in each
 *     the same number of Node process starts that a node's share of lab up makes (the agent, and
 *     per pod the plugin, the IPAM plugin and the echo server), which under TCG dominate.
 *  2. pod churn: pods added and removed (CNI ADD then DEL) round-robin over the 3 nodes of a lab,
 *     pods/s; anchor: `ptp` + `host-local` ADD/DEL in the same node namespaces. Ratio = ptp / petrel.
 *  3. add-pod -> reachable: from the start of a pod's CNI ADD on node-1 until a pod on node-2 gets an
 *     answer from its kernel (a TCP SYN to a closed port every 10 ms, answered by RST), p50/p99
 *     (informational: no peer has this path).
 *
 *   node dist/bench/lab.js [--churn 30] [--reach 10] [--sizes 3,10] [--guests 3 (0: skip 1b)]
 * Prints one table per part; writes bench/results/lab.json. Namespaces petrel-b-PID-*, labs under a
 * temp PETREL_LAB_DIR; everything removed at the end (also on failure).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCluster, initialState, type LabCluster, REF_PLUGINS } from '../agent/lab/cluster.js';
import { run } from '../agent/lab/sh.js';
import { GuestMode, startGuests } from '../agent/lab/vm/index.js';
import { BIN_DIR, pluginDir } from '../test/helpers/bins.js';
import { PETRELCTL, ROOT } from '../test/helpers/petrelctl.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? def) : def;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const fmt = (n: number, d = 1) => n.toFixed(d);

let seq = 0;
const labRoot = mkdtempSync(join(tmpdir(), 'petrel-bench-lab-'));
const live = new Set<LabCluster>();

/** A cluster of `nodes` nodes in this process (index 200+: away from users' labs). */
async function cluster(nodes: number, agents: boolean): Promise<LabCluster> {
  seq++;
  const state = initialState({
    name: `bench${seq}`,
    index: 200 + seq,
    prefix: `petrel-b-${process.pid}-${seq}`,
    dir: join(labRoot, `c${seq}`),
    mode: 'never',
    ipv6: false,
    pools: agents ? [{ name: 'bench', cidr: '10.244.0.0/16', blockSize: 26 }] : [],
    nodeExec: process.execPath,
    binDir: BIN_DIR,
    pluginDir: pluginDir(),
    now: new Date().toISOString(),
  });
  const c = await buildCluster(state, { nodes, startAgents: agents, logLevel: 'warn' });
  live.add(c);
  return c;
}

async function drop(c: LabCluster): Promise<void> {
  await c.destroy();
  live.delete(c);
}

/** CNI ADD/DEL of the reference ptp plugin with host-local IPAM (subnet per node) in a node netns. */
async function ptp(c: LabCluster, command: 'ADD' | 'DEL', node: number, pod: string, subnetIndex: number) {
  const n = c.node(node);
  const netconf = {
    cniVersion: '1.0.0',
    name: 'bench-ptp',
    type: 'ptp',
    ipam: {
      type: 'host-local',
      subnet: `10.250.${subnetIndex}.0/24`,
      dataDir: join(c.state.dir, `host-local-${node}`),
    },
  };
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: command,
    CNI_CONTAINERID: pod,
    CNI_NETNS: `/var/run/netns/${c.state.prefix}-${pod}`,
    CNI_IFNAME: 'eth0',
    CNI_PATH: REF_PLUGINS,
  };
  const r = await c.nodeNetns(n.name).exec(join(REF_PLUGINS, 'ptp'), [], { input: JSON.stringify(netconf), env });
  if (r.code !== 0) throw new Error(`ptp ${command} ${pod}: ${r.stdout} ${r.stderr}`);
}

async function floorUp(nodes: number, podsPerNode: number): Promise<number> {
  const t0 = performance.now();
  const c = await cluster(nodes, false);
  try {
    for (const n of c.state.nodes)
      for (let j = 1; j <= podsPerNode; j++) {
        const pod = `f-${n.index}-${j}`;
        await c.makeNetns(pod);
        await ptp(c, 'ADD', n.index, pod, n.index);
      }
    return performance.now() - t0;
  } finally {
    await drop(c);
  }
}

async function labUpCli(nodes: number, mode = 'never', podsPerNode = 2): Promise<{ ms: number; stdout: string }> {
  const name = `b${process.pid % 100000}n${nodes}${mode === 'never' ? '' : 'g'}`;
  const env = { PETREL_LAB_DIR: labRoot };
  const t0 = performance.now();
  const r = await run(
    PETRELCTL,
    ['lab', 'up', '--name', name, '--nodes', String(nodes), '--mode', mode, '--pods-per-node', String(podsPerNode)],
    { env: { ...process.env, ...env }, timeoutMs: 900_000 },
  );
  const ms = performance.now() - t0;
  await run(PETRELCTL, ['lab', 'down', '--name', name], { env: { ...process.env, ...env } });
  if (r.code !== 0) throw new Error(`lab up --nodes ${nodes} -> ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr}`);
  return { ms, stdout: r.stdout };
}

/** The elapsed seconds of the first progress line matching `re` ("[ 12.3s] ..."). */
function phaseAt(stdout: string, re: RegExp): number {
  const line = stdout.split('\n').find((l) => re.test(l));
  return Number(/^\[\s*([\d.]+)s\]/.exec(line ?? '')?.[1] ?? Number.NaN);
}

/**
 * The guests' floor: boot `n` guests and, in each at once, `starts` Node process starts in turn
 * (the agent's, and per pod the plugin's, the IPAM plugin's and the echo server's).
 */
async function guestFloor(n: number, starts: number): Promise<{ ms: number; bootMs: number }> {
  const t0 = performance.now();
  const rig = await startGuests({
    n,
    bridgeCidr: '10.96.250.1/24',
    mode: GuestMode.Serve,
    memMb: 768,
    bootTimeoutMs: 240_000,
    log: () => {},
  });
  try {
    const bootMs = performance.now() - t0;
    const rs = await rig.execAll(
      `i=0; while [ $i -lt ${starts} ]; do node -e 0 || exit 1; i=$((i + 1)); done`,
      600_000,
    );
    if (rs.some((r) => r.code !== 0)) throw new Error(`guest floor: ${rs.map((r) => r.output).join('\n')}`);
    return { ms: performance.now() - t0, bootMs };
  } finally {
    await rig.stop(20_000).catch(() => undefined);
    await rig.destroy();
  }
}

async function churn(c: LabCluster, n: number): Promise<{ petrel: number; ptp: number }> {
  const nodes = c.state.nodes.length;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const name = `churn-${i}`;
    await c.addPod((i % nodes) + 1, name);
    await c.removePod(name);
  }
  const petrel = (2 * n) / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const node = (i % nodes) + 1;
    const pod = `ptp-${i}`;
    const ns = await c.makeNetns(pod);
    await ptp(c, 'ADD', node, pod, 100 + node);
    await ptp(c, 'DEL', node, pod, 100 + node);
    await ns.delete();
    c.state.netns = c.state.netns.filter((x) => x !== ns.name);
  }
  const ref = (2 * n) / ((performance.now() - t0) / 1000);
  return { petrel, ptp: ref };
}

// A TCP SYN to a closed port every 10 ms: an RST back (ECONNREFUSED) is the pod's kernel answering.
const REACH_LOOP = `
const net = require('net');
const [ip, ms] = process.argv.slice(1);
const t0 = Date.now();
const once = () => {
  const s = net.connect({ host: ip, port: 9 });
  const next = () => { s.destroy(); if (Date.now() - t0 > Number(ms)) { process.stdout.write('timeout'); process.exit(1); } setTimeout(once, 10); };
  s.setTimeout(200, next);
  s.on('connect', () => { process.stdout.write('ok'); process.exit(0); });
  s.on('error', (e) => { if (e.code === 'ECONNREFUSED') { process.stdout.write('ok'); process.exit(0); } next(); });
};
once();
`;

/** ms from the start of CNI ADD on node-1 to the first echo reply from a pod on node-2. */
async function reach(c: LabCluster, n: number): Promise<number[]> {
  const src = await c.addPod(2, 'reach-src');
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const name = `reach-${i}`;
    const t0 = performance.now();
    const p = await c.addPod(1, name);
    const r = await c
      .nodeNetns('node-2')
      .exec('ip', ['netns', 'exec', src.netns, process.execPath, '-e', REACH_LOOP, p.ip, '10000']);
    if (r.stdout !== 'ok') throw new Error(`pod ${p.ip} not reachable from node-2: ${r.stdout} ${r.stderr}`);
    out.push(performance.now() - t0);
    await c.removePod(name);
  }
  return out;
}

async function main(): Promise<void> {
  const sizes = arg('sizes', '3,10').split(',').map(Number);
  const nChurn = Number(arg('churn', '30'));
  const nReach = Number(arg('reach', '10'));
  const nGuests = Number(arg('guests', '3'));
  const results: Record<string, unknown> = { date: new Date().toISOString(), root: ROOT };

  const up: { nodes: number; labUpMs: number; floorMs: number; ratio: number }[] = [];
  for (const nodes of sizes) {
    const labUpMs = (await labUpCli(nodes)).ms;
    const floorMs = await floorUp(nodes, 2);
    up.push({ nodes, labUpMs, floorMs, ratio: labUpMs / floorMs });
  }
  console.log('\nlab up wall time (netns, mode never, 2 pods per node, until healthy) vs the floor without Petrel');
  console.log('| nodes | lab up (s) | floor: netns + bridge + etcd + ptp pods (s) | ratio |');
  console.log('|---|---|---|---|');
  for (const r of up)
    console.log(`| ${r.nodes} | ${fmt(r.labUpMs / 1000)} | ${fmt(r.floorMs / 1000)} | ${fmt(r.ratio, 2)} |`);
  results.up = up;

  if (nGuests > 0) {
    const pods = 2;
    const g = await labUpCli(nGuests, 'ipip', pods);
    const floor = await guestFloor(nGuests, 1 + 3 * pods);
    const phases = {
      bootS: phaseAt(g.stdout, /guests booted/),
      agentsS: phaseAt(g.stdout, /pods through the petrel CNI plugin/),
      podsS: phaseAt(g.stdout, /waiting for BGP sessions/),
      healthyS: phaseAt(g.stdout, /\] up$/),
    };
    console.log(
      `\nlab up --mode ipip, ${nGuests} qemu guests (TCG), ${pods} pods per node, until healthy, vs the guests' floor`,
    );
    console.log(
      '| guests | lab up (s) | guests booted at (s) | agents up at (s) | pods added at (s) | healthy at (s) | floor: boot + same Node starts (s) | floor boot (s) | ratio |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| ${nGuests} | ${fmt(g.ms / 1000)} | ${fmt(phases.bootS)} | ${fmt(phases.agentsS)} | ${fmt(phases.podsS)} | ${fmt(phases.healthyS)} | ${fmt(floor.ms / 1000)} | ${fmt(floor.bootMs / 1000)} | ${fmt(g.ms / floor.ms, 2)} |`,
    );
    results.guests = {
      guests: nGuests,
      podsPerNode: pods,
      labUpMs: g.ms,
      ...phases,
      floorMs: floor.ms,
      floorBootMs: floor.bootMs,
      ratio: g.ms / floor.ms,
    };
  }

  const c = await cluster(3, true);
  try {
    const ch = await churn(c, nChurn);
    console.log(`\npod churn (CNI ADD + DEL, round-robin over 3 nodes, ${nChurn} pods each)`);
    console.log('| plugin | CNI calls/s (ADD + DEL) | ratio ptp/petrel |');
    console.log('|---|---|---|');
    console.log(`| petrel (agent IPAM, etcd) | ${fmt(ch.petrel)} | ${fmt(ch.ptp / ch.petrel, 2)} |`);
    console.log(`| ptp + host-local (reference) | ${fmt(ch.ptp)} | 1.00 |`);
    results.churn = { pods: nChurn, ...ch, ratio: ch.ptp / ch.petrel };

    const rs = await reach(c, nReach);
    console.log(`\nadd-pod on node-1 -> answer (TCP RST) to a pod on node-2 (n=${nReach}; informational)`);
    console.log('| p50 (ms) | p99 (ms) |');
    console.log('|---|---|');
    console.log(`| ${fmt(pct(rs, 50), 0)} | ${fmt(pct(rs, 99), 0)} |`);
    results.reach = { n: nReach, p50Ms: pct(rs, 50), p99Ms: pct(rs, 99), samplesMs: rs };
  } finally {
    await drop(c);
  }

  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'lab.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log('\nwrote bench/results/lab.json');
}

main()
  .catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of [...live]) await drop(c).catch(() => {});
    rmSync(labRoot, { recursive: true, force: true });
  });
