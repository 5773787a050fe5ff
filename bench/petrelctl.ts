/**
 * petrelctl vs etcdctl (issue 10), in one run against one real etcd on loopback: a single IPAM
 * command (`petrelctl ipam assign`, one address per call, new handle each time) against
 * `etcdctl put` of one key, sequential (p50/p99 of --n calls) and 8 callers at once (p50 of the
 * 8). Target: petrelctl's sequential p50 <= 3x etcdctl's. The shipped petrelctl is the Bun executable
 * dist-sea/petrelctl (`npm run package`); the Node bundle bin/petrelctl is measured beside it.
 * Prints a table; writes bench/results/petrelctl.json.
 *   node dist/bench/petrelctl.js [--n 20]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { startEtcd } from '../test/helpers/etcd.js';
import { PETRELCTL, ROOT } from '../test/helpers/petrelctl.js';

const SEA = `${ROOT}dist-sea/petrelctl`;
const SHIPPED = 'petrelctl ipam assign';
const NODE = 'petrelctl ipam assign (node bin/)';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

function timed(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ETCDCTL_API: '3' } });
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`${cmd} ${args.join(' ')}: ${err}`)),
    );
  });
}

async function main(): Promise<void> {
  const n = arg('n', 20);
  const etcd = await startEtcd();
  try {
    const ep = etcd.endpoint;
    let k = 0;
    if (!existsSync(SEA)) throw new Error(`${SEA} missing: npm run package`);
    const assign = (bin: string) => () =>
      timed(bin, ['--etcd-endpoints', ep, 'ipam', 'assign', '--node', 'n1', '--handle', `h${k++}`]);
    const ctl = assign(SEA);
    const put = () => timed('etcdctl', ['--endpoints', ep, 'put', `/bench/k${k++}`, 'v']);
    await timed(PETRELCTL, ['--etcd-endpoints', ep, 'ipam', 'pool', 'add', 'bench', '--cidr', '10.77.0.0/16']);
    const rows: Record<string, { seq: number[]; par8: number[] }> = {
      [SHIPPED]: { seq: [], par8: [] },
      [NODE]: { seq: [], par8: [] },
      'etcdctl put': { seq: [], par8: [] },
    };
    const both: [string, () => Promise<number>][] = [
      [SHIPPED, ctl],
      [NODE, assign(PETRELCTL)],
      ['etcdctl put', put],
    ];
    for (let i = 0; i < n; i++) for (const [name, f] of both) rows[name]?.seq.push(await f());
    for (const [name, f] of both) {
      const r = rows[name];
      if (r) r.par8 = await Promise.all(Array.from({ length: 8 }, f));
    }
    const fmt = (x: number) => x.toFixed(1);
    console.log(`\npetrelctl vs etcdctl (ms; n=${n} sequential, interleaved; 8 callers at once; shipped: ${SEA})`);
    console.log('| command | p50 | p99 | 8 at once p50 |');
    console.log('|---|---|---|---|');
    for (const [name, r] of Object.entries(rows))
      console.log(`| ${name} | ${fmt(pct(r.seq, 50))} | ${fmt(pct(r.seq, 99))} | ${fmt(pct(r.par8, 50))} |`);
    const a = rows[SHIPPED] as { seq: number[]; par8: number[] };
    const b = rows['etcdctl put'] as { seq: number[]; par8: number[] };
    const ratio = +(pct(a.seq, 50) / pct(b.seq, 50)).toFixed(2);
    const ratio8 = +(pct(a.par8, 50) / pct(b.par8, 50)).toFixed(2);
    console.log(
      `\ntarget: petrelctl p50 <= 3x etcdctl: ${ratio}x ${ratio <= 3 ? 'ok' : 'MISSED'} (8 at once: ${ratio8}x)`,
    );
    const summary = (xs: number[]) => ({ p50: pct(xs, 50), p99: pct(xs, 99) });
    mkdirSync('bench/results', { recursive: true });
    writeFileSync(
      'bench/results/petrelctl.json',
      `${JSON.stringify(
        {
          when: new Date().toISOString(),
          n,
          rows: Object.fromEntries(
            Object.entries(rows).map(([k2, r]) => [k2, { seq: summary(r.seq), par8: summary(r.par8) }]),
          ),
          targets: { petrelctlOverEtcdctlP50: ratio, par8Ratio: ratio8 },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await etcd.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
