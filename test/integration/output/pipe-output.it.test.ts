/**
 * Issue 10 §1: output through a pipe to a slow reader arrives whole, for a success and for an
 * error exit, from petrelctl and from the CNI plugins (the executables operators and runtimes
 * run: bin/petrelctl and the packaged dist-sea/ plugins). The reader is `cat` on a real FIFO
 * that starts reading 1 s after the writer started: a process that exits with writes pending
 * loses everything past the pipe's 64 KiB.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { needs } from '../../helpers/needs.js';
import { PETRELCTL, petrelctl } from '../../helpers/petrelctl.js';
import { PETREL_BINS, pluginDir, startWorld, type World } from '../cni/harness.js';

const MB = 1 << 20;

interface Piped {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd` with stdout and stderr on FIFOs whose readers wait `delayMs` before reading; waits
 * for the command and both readers.
 */
function throughSlowPipes(cmd: string, args: string[], env: Record<string, string>, stdin = ''): Promise<Piped> {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-pipe-'));
  const script = `
    mkfifo "$D/o" "$D/e"
    (exec 3<"$D/o"; sleep 1; exec cat <&3 >"$D/out") & r1=$!
    (exec 3<"$D/e"; sleep 1; exec cat <&3 >"$D/err") & r2=$!
    "$@" >"$D/o" 2>"$D/e" <"$D/in"; echo $? >"$D/rc"
    wait $r1 $r2`;
  writeFileSync(join(dir, 'in'), stdin);
  return new Promise((resolve, reject) => {
    const p = spawn('bash', ['-c', script, 'pipe', cmd, ...args], {
      env: { ...process.env, ...env, D: dir },
      stdio: 'ignore',
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', () => {
      clearTimeout(timer);
      try {
        resolve({
          code: Number(readFileSync(join(dir, 'rc'), 'utf8').trim()),
          stdout: readFileSync(join(dir, 'out'), 'utf8'),
          stderr: readFileSync(join(dir, 'err'), 'utf8'),
        });
      } catch (err) {
        reject(err);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('petrelctl output through a slow pipe', { skip: needs('etcd', 'bundles') }, () => {
  let etcd: EtcdHandle;
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd?.destroy();
  });
  const ctl = (...args: string[]) => throughSlowPipes(PETRELCTL, ['--etcd-endpoints', etcd.endpoint, ...args], {});

  test('success: `ipam show --json` over 7,000 allocations (> 1 MB) arrives whole and parses; so does the table', async () => {
    const pool = await ctl('ipam', 'pool', 'add', 'big', '--cidr', '10.60.0.0/16', '--block-size', '20');
    assert.equal(pool.code, 0, pool.stderr);
    for (let i = 0; i < 7; i++) {
      const r = await petrelctl(etcd.endpoint, 'ipam', 'assign', '--node', 'n1', '--handle', `h${i}`, '--num', '1000');
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await ctl('ipam', 'show', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > MB, `only ${r.stdout.length} bytes`);
    const u = JSON.parse(r.stdout) as { pools: { blocks: { allocations: { ip: string }[] }[] }[] };
    const ips = u.pools.flatMap((p) => p.blocks.flatMap((bl) => bl.allocations.map((x) => x.ip)));
    assert.equal(new Set(ips).size, 7000);
    const show = await ctl('ipam', 'show');
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /10\.60\./);
  });

  test('error exit: a usage error naming a 120 KB option (one argv string is at most 128 KiB) arrives whole, exit 2', async () => {
    const name = `--${'x'.repeat(120_000)}`;
    const r = await ctl('ipam', 'show', name);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(name), `stderr has ${r.stderr.length} bytes, not the whole option`);
    // showHelpAfterError: the help text comes after the error line, so it arrived too.
    assert.match(r.stderr.slice(-4000), /Usage: petrelctl ipam show/);
  });

  test('error exit: a `bgp run` config error naming a 1.2 MB key arrives whole (exit 1, one "error:" line)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'petrel-pipe-cfg-'));
    try {
      const key = `k${'y'.repeat(1.2 * MB)}`;
      const file = join(dir, 'bgp.json');
      writeFileSync(file, JSON.stringify({ [key]: 1 }));
      const r = await ctl('bgp', 'run', '--config', file);
      assert.equal(r.code, 1, r.stderr.slice(0, 300));
      assert.match(r.stderr, /^petrelctl: error: /);
      assert.ok(r.stderr.includes(key), `stderr has ${r.stderr.length} bytes`);
      assert.equal(r.stderr.indexOf('\n'), r.stderr.length - 1, 'one line');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('CNI plugin output through a slow pipe', { skip: needs('root', 'netns', 'etcd', PETREL_BINS) }, () => {
  let w: World;
  before(async () => {
    w = await startWorld();
  });
  after(async () => {
    await w?.destroy();
  });
  const env = (command: string, id: string) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: id,
    CNI_NETNS: '/var/run/netns/none',
    CNI_IFNAME: 'eth0',
    CNI_PATH: pluginDir(),
    CNI_ARGS: '',
  });

  test('success: petrel-ipam ADD whose result carries 1.2 MB of DNS search domains arrives whole', async () => {
    const search = Array.from({ length: 60_000 }, (_, i) => `d${i}.svc.cluster.example`);
    const conf = {
      cniVersion: '1.0.0',
      name: 'pipe-test',
      type: 'petrel-ipam',
      agentSocket: w.socket,
      logLevel: 'warn',
      dns: { search },
    };
    const r = await throughSlowPipes(join(pluginDir(), 'petrel-ipam'), [], env('ADD', 'pipe1'), JSON.stringify(conf));
    assert.equal(r.code, 0, r.stdout.slice(0, 300));
    assert.ok(r.stdout.length > MB);
    const res = JSON.parse(r.stdout) as { ips: { address: string }[]; dns: { search: string[] } };
    assert.equal(res.dns.search.length, search.length);
    assert.equal(res.dns.search.at(-1), search.at(-1));
    assert.match(res.ips[0]?.address ?? '', /^10\.123\./);
    const del = await throughSlowPipes(join(pluginDir(), 'petrel-ipam'), [], env('DEL', 'pipe1'), JSON.stringify(conf));
    assert.equal(del.code, 0, del.stdout);
  });

  test('error exit: code 7 naming a 1.2 MB network name arrives whole on stdout, the log line on stderr', async () => {
    const name = `-${'n'.repeat(1.2 * MB)}`;
    const conf = JSON.stringify({ cniVersion: '1.0.0', name, type: 'petrel' });
    const r = await throughSlowPipes(join(pluginDir(), 'petrel'), [], env('ADD', 'pipe2'), conf);
    assert.equal(r.code, 1);
    const e = JSON.parse(r.stdout) as { code: number; details: string };
    assert.equal(e.code, 7);
    assert.equal(e.details, JSON.stringify(name));
    const log = JSON.parse(r.stderr.trim()) as { level: number; code: number; details: string };
    assert.equal(log.level, 40);
    assert.equal(log.details, JSON.stringify(name));
  });
});
