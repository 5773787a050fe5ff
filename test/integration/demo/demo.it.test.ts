/**
 * Issue 10 §2: scripts/demo.sh (the README's main command) ends everything it started. Runs the
 * demo, then proves that no process, network namespace or mount of that run is left: nothing
 * whose command line names the run's temp dir or tag, no netns with the tag, no mount under
 * /run/netns of it, and the temp dir is gone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import { ROOT } from '../../helpers/petrelctl.js';
import { PETREL_BINS } from '../cni/harness.js';

function processesMentioning(needles: string[]): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // exited meanwhile
    }
    if (needles.some((n) => cmd.includes(n))) out.push(`${pid}: ${cmd}`);
  }
  return out;
}

test('scripts/demo.sh: demo done, and no process, netns, mount or temp dir of the run is left', {
  skip: needs('root', 'netns', 'etcd', 'etcdctl', 'bundles', PETREL_BINS),
  timeout: 300_000,
}, () => {
  const r = spawnSync('bash', [join(ROOT, 'scripts/demo.sh')], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `demo failed:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  assert.match(r.stdout, /demo done/);
  const m = /socket (\/tmp\/petrel-demo\.[^/]+)\/agent\.sock, run tag (petrel-demo-\d+)/.exec(r.stdout);
  assert.ok(m, 'the demo names its temp dir and tag');
  const [, tmp, tag] = m as unknown as [string, string, string];
  // The agent's and etcd's command lines name the temp dir; the pod servers' run in netns of the tag.
  assert.deepEqual(processesMentioning([tmp, tag]), []);
  const netns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.ok(!netns.includes(tag), `netns left:\n${netns}`);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(tag) || l.includes(tmp));
  assert.deepEqual(mounts, []);
  assert.equal(existsSync(tmp), false, `${tmp} left`);
});
