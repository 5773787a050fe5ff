/**
 * IPAM benchmark: assignments per second and p50/p99 latency for 1, 8 and 32 concurrent callers
 * on one node (one allocator, as in the node agent) against a real etcd on loopback. The peer in
 * the same run is etcd itself: a single-key compare-and-swap transaction at the same concurrency,
 * the floor any etcd-backed IPAM write pays. Prints a table; writes bench/results/ipam.json.
 *   node dist/bench/ipam.js [--n 1000]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { systemClock } from '../agent/common/clock.js';
import { silentLogger } from '../agent/common/logger.js';
import { Ipam, openEtcdStore } from '../ipam-etcd/index.js';
import { startEtcd } from '../test/helpers/etcd.js';

/** `--n K` (default 1000). Without the flag indexOf is -1 and argv[0] (the node binary) must not be read as K. */
const nAt = process.argv.indexOf('--n');
const N = nAt > 0 ? Number(process.argv[nAt + 1]) : 1000;
if (!Number.isInteger(N) || N < 1) {
  console.error(`bench/ipam: --n must be a positive integer, got ${process.argv[nAt + 1]}`);
  process.exit(2);
}
const LEVELS = [1, 8, 32];

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function measure(c: number, n: number, op: (i: number) => Promise<unknown>) {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const s = performance.now();
        await op(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { perSec: n / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
}

async function main() {
  const etcd = await startEtcd();
  const store = await openEtcdStore({ endpoints: [etcd.endpoint], timeoutMs: 10_000 });
  const ipam = new Ipam(store, { clock: systemClock, log: silentLogger, maxRetries: 200 });
  const rows: Record<string, unknown>[] = [];
  try {
    await ipam.addPool({ name: 'bench', cidr: '10.200.0.0/16' });
    await ipam.setConfig({ maxBlocksPerHost: 64 });
    // Warm up the connection and claim the first block.
    await ipam.autoAssign({ handle: 'warm', node: 'bench-node', num4: 1 });
    for (const c of LEVELS) {
      const run = `c${c}`;
      const assign = await measure(c, N, (i) =>
        ipam.autoAssign({
          handle: `${run}-${i}`,
          node: 'bench-node',
          num4: 1,
          attrs: { pod: `p${i}`, namespace: 'bench' },
        }),
      );
      const release = await measure(c, N, (i) => ipam.releaseByHandle(`${run}-${i}`));
      // Peer: raw CAS transactions on distinct keys (create-if-absent), same concurrency.
      const raw = await measure(c, N, (i) =>
        store.commit(
          [{ key: `/bench/raw/${run}/${i}`, modRevision: null }],
          [{ key: `/bench/raw/${run}/${i}`, value: '{}' }],
        ),
      );
      rows.push({
        concurrency: c,
        assignPerSec: Math.round(assign.perSec),
        assignP50Ms: +assign.p50.toFixed(2),
        assignP99Ms: +assign.p99.toFixed(2),
        releasePerSec: Math.round(release.perSec),
        releaseP99Ms: +release.p99.toFixed(2),
        etcdTxnPerSec: Math.round(raw.perSec),
        etcdTxnP99Ms: +raw.p99.toFixed(2),
        assignVsTxn: +(assign.perSec / raw.perSec).toFixed(2),
      });
    }
  } finally {
    await store.close();
    await etcd.destroy();
  }
  const cols = Object.keys(rows[0] ?? {});
  const w = cols.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  console.log(`IPAM assignment benchmark: ${N} assignments per level, one node, etcd on loopback`);
  console.log(cols.map((k, i) => k.padStart(w[i]!)).join('  '));
  for (const r of rows) console.log(cols.map((k, i) => String(r[k]).padStart(w[i]!)).join('  '));
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/ipam.json',
    `${JSON.stringify({ date: new Date().toISOString(), n: N, rows }, null, 2)}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
