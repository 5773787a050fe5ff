/**
 * Many allocator processes against one real etcd: no duplicate address, every handle accounted
 * for, `petrelctl ipam check` clean; and the same with etcd stopped and restarted mid-run.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { needs } from '../../helpers/needs.js';
import { helperScript, petrelctl } from '../../helpers/petrelctl.js';

interface WorkerReport {
  held: Record<string, string[]>;
  uncertain: string[];
  assigned: number;
  released: number;
  failures: Record<string, number>;
}

function runWorker(
  endpoint: string,
  id: number,
  node: string,
  ops: number,
  timeoutMs: number,
  maxSeconds = 3600,
  stopFile = '',
  onStarted: () => void = () => {},
): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [
        helperScript('ipam-worker'),
        endpoint,
        String(id),
        node,
        String(ops),
        String(1000 + id),
        String(timeoutMs),
        String(maxSeconds),
        ...(stopFile ? [stopFile] : []),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => {
      const had = err.includes('started\n');
      err += b.toString();
      if (!had && err.includes('started\n')) onStarted();
    });
    p.on('exit', (code) => {
      if (code !== 0) reject(new Error(`worker ${id} exited ${code}: ${err}`));
      else resolve(JSON.parse(out) as WorkerReport);
    });
  });
}

interface ShowJson {
  pools: { blocks: { cidr: string; node: string | null; allocations: { ip: string; handle: string }[] }[] }[];
}

async function verify(ep: string, reports: WorkerReport[]) {
  // 1. No address is believed held by two handles.
  const owner = new Map<string, string>();
  for (const r of reports) {
    for (const [h, ips] of Object.entries(r.held)) {
      for (const ip of ips) {
        assert.ok(!owner.has(ip), `duplicate address ${ip}: ${owner.get(ip)} and ${h}`);
        owner.set(ip, h);
      }
    }
  }
  // 2. etcd agrees: every allocation belongs to a handle a worker holds (or whose release was
  //    ambiguous), and every certainly-held address is allocated to its handle.
  const show = await petrelctl(ep, 'ipam', 'show', '--json');
  assert.equal(show.code, 0, show.stderr);
  const inEtcd = new Map<string, string>();
  for (const p of (JSON.parse(show.stdout) as ShowJson).pools) {
    for (const b of p.blocks) for (const a of b.allocations) inEtcd.set(a.ip, a.handle);
  }
  const uncertain = new Set(reports.flatMap((r) => r.uncertain));
  for (const [ip, h] of inEtcd) {
    assert.ok(owner.get(ip) === h || uncertain.has(h), `etcd has ${ip} for ${h}, which no worker holds`);
  }
  for (const [ip, h] of owner) {
    if (uncertain.has(h)) continue;
    assert.equal(inEtcd.get(ip), h, `${h} believes it holds ${ip}`);
  }
  // 3. The consistency check is clean.
  const chk = await petrelctl(ep, 'ipam', 'check', '--json');
  assert.equal(chk.code, 0, `ipam check: ${chk.stdout}`);
  return { live: inEtcd.size, blocks: (JSON.parse(show.stdout) as ShowJson).pools.flatMap((p) => p.blocks) };
}

describe('IPAM under concurrency (real etcd, separate processes)', { skip: needs('etcd', 'bundles') }, () => {
  let etcd: EtcdHandle;
  /** Every worker's report so far: later runs verify against the state earlier ones left. */
  const all: WorkerReport[] = [];
  before(async () => {
    etcd = await startEtcd();
    const r = await petrelctl(etcd.endpoint, 'ipam', 'pool', 'add', 'conc', '--cidr', '10.128.0.0/16');
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => {
    await etcd?.destroy();
  });

  test('8 allocator processes on 4 nodes, 2,000 interleaved assignments and releases', async () => {
    const reports = await Promise.all(
      Array.from({ length: 8 }, (_, i) => runWorker(etcd.endpoint, i, `node-${i % 4}`, 250, 5000)),
    );
    const total = reports.reduce((n, r) => n + r.assigned + r.released, 0);
    const failures = reports.reduce((n, r) => n + Object.values(r.failures).reduce((a, b) => a + b, 0), 0);
    assert.equal(failures, 0, `unexpected failures: ${JSON.stringify(reports.map((r) => r.failures))}`);
    assert.ok(total >= 1900, `ops done: ${total}`);
    all.push(...reports);
    const { blocks } = await verify(etcd.endpoint, all);
    // Affinity: each node assigns from its own blocks; no block is shared between nodes.
    const nodes = new Set(blocks.map((b) => b.node));
    assert.deepEqual([...nodes].sort(), ['node-0', 'node-1', 'node-2', 'node-3']);
  });

  test('etcd stopped and restarted mid-run: clear failures or success, consistent afterwards', async () => {
    // Once every worker is running: etcd down for 1.5 s, then 2 s more of work, then stop.
    const stopFile = join(tmpdir(), `petrel-ipam-stop-${process.pid}`);
    rmSync(stopFile, { force: true });
    let started = 0;
    let allStarted: () => void = () => {};
    const ready = new Promise<void>((r) => {
      allStarted = r;
    });
    const work = Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        runWorker(etcd.endpoint, 100 + i, `node-${i % 4}`, 1_000_000, 1000, 120, stopFile, () => {
          if (++started === 8) allStarted();
        }),
      ),
    );
    await ready;
    await etcd.stop();
    await delay(1500);
    await etcd.restart();
    await delay(2000);
    writeFileSync(stopFile, '');
    const reports = await work;
    rmSync(stopFile, { force: true });
    const kinds = new Set(reports.flatMap((r) => Object.keys(r.failures)));
    assert.ok(kinds.size > 0, 'the outage was seen by the workers');
    assert.deepEqual(
      [...kinds].filter((k) => k !== 'unavailable'),
      [],
      `only 'unavailable' failures: ${[...kinds]}`,
    );
    all.push(...reports);
    await verify(etcd.endpoint, all);
  });
});
