/**
 * A delegated IPAM plugin that hangs (issue 13): the petrel plugin kills it with its whole process
 * group at `delegateTimeoutMs`, answers CNI code 102, runs the delegate's DEL to give back what it
 * may have taken, and leaves no veth, route or address behind. The delegate is a shell script in
 * CNI_PATH that starts a background child and hangs; one variant first has the reference
 * host-local plugin allocate, so the rollback's effect on a real IPAM store is visible.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import { linkNames, type Netns } from '../../helpers/netns.js';
import { PETREL_BINS, pluginDir, REF_PLUGINS, startWorld, type World } from './harness.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', PETREL_BINS);
const TIMEOUT_MS = 1500;

/** Live (non-zombie) processes of process group `pgid`. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function eventually(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface IpRoute {
  dst: string;
  dev?: string;
}

describe('petrel plugin with a hanging delegated IPAM plugin', { skip }, () => {
  let w: World;
  let bin: string;
  let log: string;
  before(async () => {
    w = await startWorld();
    bin = join(w.tmp, 'cni-bin');
    mkdirSync(bin);
    log = join(w.tmp, 'delegate.log');
    // Records each call (command, its PID = its process group, the background child), optionally
    // runs host-local first, and on ADD hangs with a background child sleeping too.
    writeFileSync(
      join(bin, 'hang-ipam'),
      [
        '#!/bin/sh',
        'in=$(cat)',
        `echo "$CNI_COMMAND $$" >> ${log}`,
        'case "$in" in *\'"hostLocalFirst":true\'*)',
        `  echo "$in" | ${REF_PLUGINS}/host-local > /dev/null || exit 1 ;;`,
        'esac',
        'if [ "$CNI_COMMAND" = ADD ]; then',
        '  sleep 300 &',
        `  echo "bg $!" >> ${log}`,
        '  sleep 301',
        'fi',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(join(bin, 'hang-ipam'), 0o755);
  });
  after(async () => {
    await w?.destroy();
  });

  let n = 0;
  async function hangingAdd(pod: Netns, ipam: Record<string, unknown>) {
    n++;
    writeFileSync(log, '');
    const conf = {
      cniVersion: '1.0.0',
      name: 'petrel-hang',
      type: 'petrel',
      agentSocket: w.socket,
      logLevel: 'warn',
      delegateTimeoutMs: TIMEOUT_MS,
      ipam: { type: 'hang-ipam', ...ipam },
    };
    const t0 = Date.now();
    const r = await w.cni(
      'petrel',
      {
        command: 'ADD',
        containerId: `hang${process.pid}x${n}`,
        netns: pod.path,
        ifName: 'eth0',
        args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=hang;K8S_POD_NAME=p',
        path: `${bin}:${pluginDir()}:${REF_PLUGINS}`,
      },
      conf,
    );
    return { r, ms: Date.now() - t0 };
  }

  function calls(): { cmd: string; pid: number }[] {
    return readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [cmd, pid] = l.split(' ');
        return { cmd: cmd as string, pid: Number(pid) };
      });
  }

  async function assertNothingLeft(pod: Netns, linksBefore: string[], routesBefore: string[]) {
    assert.deepEqual(await linkNames(pod), ['lo'], 'no interface in the pod');
    assert.deepEqual(await linkNames(w.node), linksBefore, 'no host veth');
    const routes = (await w.node.ipJson<IpRoute[]>('route', 'show')).map((x) => `${x.dst} ${x.dev ?? ''}`);
    assert.deepEqual(routes, routesBefore, 'no host route');
  }

  test('ADD: code 102 at delegateTimeoutMs, the delegate and its children killed, its DEL run, nothing left', async () => {
    const pod = await w.pod();
    const linksBefore = await linkNames(w.node);
    const routesBefore = (await w.node.ipJson<IpRoute[]>('route', 'show')).map((x) => `${x.dst} ${x.dev ?? ''}`);
    const { r, ms } = await hangingAdd(pod, {});
    assert.equal(r.code, 1, r.stderr);
    const err = r.json as { code: number; msg: string; details?: string };
    assert.equal(err.code, 102, r.stdout);
    assert.match(err.msg, /hang-ipam/);
    assert.ok(ms >= TIMEOUT_MS, `returned after ${ms} ms, before the deadline`);
    assert.ok(ms < TIMEOUT_MS * 2 + 8000, `returned after ${ms} ms`);
    const c = calls();
    assert.deepEqual(
      c.map((x) => x.cmd),
      ['ADD', 'bg', 'DEL'],
      'ADD hung (with a background child), then the rollback ran the delegate DEL',
    );
    const addPid = c[0]?.pid as number;
    const bgPid = c[1]?.pid as number;
    await eventually('the hung ADD and its children are gone', () => groupMembers(addPid).length === 0);
    assert.equal(existsSync(`/proc/${bgPid}/cmdline`) && groupMembers(addPid).includes(bgPid), false);
    await assertNothingLeft(pod, linksBefore, routesBefore);
  });

  test('ADD after host-local allocated, then hung: 102, and the rollback DEL gave the address back', async () => {
    const pod = await w.pod();
    const dataDir = join(w.tmp, 'host-local');
    const linksBefore = await linkNames(w.node);
    const routesBefore = (await w.node.ipJson<IpRoute[]>('route', 'show')).map((x) => `${x.dst} ${x.dev ?? ''}`);
    const { r } = await hangingAdd(pod, {
      hostLocalFirst: true,
      ranges: [[{ subnet: '10.201.0.0/24' }]],
      dataDir,
    });
    assert.equal((r.json as { code: number }).code, 102, r.stdout);
    assert.deepEqual(
      calls().map((x) => x.cmd),
      ['ADD', 'bg', 'DEL'],
    );
    await eventually('the hung ADD group is gone', () => groupMembers(calls()[0]?.pid as number).length === 0);
    // host-local keeps one file per allocated address under dataDir/<network name>/.
    const store = join(dataDir, 'petrel-hang');
    assert.ok(existsSync(store), 'host-local did allocate (its store exists)');
    const held = readdirSync(store).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    assert.deepEqual(held, [], 'no address left allocated in host-local');
    await assertNothingLeft(pod, linksBefore, routesBefore);
  });
});
