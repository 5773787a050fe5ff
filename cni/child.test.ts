/**
 * runWithDeadline with real processes (/bin/sh, sleep): the deadline kills the child's whole
 * process group, grandchildren included, and returns without waiting for pipes they held.
 * spawnWithDeadline starts a child before its input is known: its deadline counts from run(),
 * and cancel() lets an unneeded child exit. Deadlines are a few hundred ms; nothing needs root.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runWithDeadline, spawnWithDeadline } from './child.js';

/** True while `pid` is a live process (not gone, not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    // "pid (comm) S ...": the state follows the last ')'.
    const s = readFileSync(stat, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** PIDs of every live process in process group `pgid` (from /proc). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const d of readdirProc()) {
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
      // fields after comm: state ppid pgrp ...
      if (Number(rest[2]) === pgid && rest[0] !== 'Z') out.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}
function readdirProc(): string[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d));
}

/** Waits (briefly) until `check` holds: a SIGKILLed process needs a moment to be reaped. */
async function eventually(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('runs a process: stdin in, stdout/stderr and exit code out, no timeout', async () => {
  const r = await runWithDeadline(['/bin/sh', '-c', 'cat; echo err >&2; exit 3'], 'hello', 5000);
  assert.deepEqual(r, { code: 3, stdout: 'hello', stderr: 'err\n', timedOut: false });
});

test('an unknown command rejects (ENOENT), it does not hang or time out', async () => {
  await assert.rejects(runWithDeadline(['/nonexistent/petrel-test-binary'], '', 5000), { code: 'ENOENT' });
});

test('past the deadline the whole group dies: the child, a background grandchild and a nested one', async () => {
  // The script starts a sleeping child in the background, a subshell that starts another, prints
  // their PIDs and its own, then hangs itself.
  const script = [
    'sleep 300 &',
    'echo "bg $!"',
    '( sleep 301 & echo "nested $!"; wait ) &',
    'echo "sub $!"',
    'echo "self $$"',
    'sleep 302',
  ].join('\n');
  const t0 = Date.now();
  const r = await runWithDeadline(['/bin/sh', '-c', script], '', 700);
  const took = Date.now() - t0;
  assert.equal(r.timedOut, true);
  assert.equal(r.code, 137, 'reported like a SIGKILL');
  assert.ok(took < 3000, `returned ${took} ms after start (deadline 700 ms)`);
  const pids = Object.fromEntries(
    r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string])
      .map(([k, v]) => [k, Number(v)]),
  ) as Record<string, number>;
  assert.deepEqual(Object.keys(pids).sort(), ['bg', 'nested', 'self', 'sub'], r.stdout);
  const self = pids.self as number;
  await eventually('every process of the group gone', () => groupMembers(self).length === 0);
  for (const [name, pid] of Object.entries(pids)) assert.equal(alive(pid), false, `${name} (${pid}) still alive`);
});

test('a leader that exits while its grandchild holds stdout: returns at the deadline and kills the grandchild', async () => {
  // Without the group kill the pipe stays open as long as the grandchild lives (300 s).
  const r = await runWithDeadline(['/bin/sh', '-c', 'sleep 300 & echo "bg $!"; echo "self $$"; exit 0'], '', 500);
  assert.equal(r.timedOut, true, 'the pipe never closed: the deadline ended the wait');
  const bg = Number(/bg (\d+)/.exec(r.stdout)?.[1]);
  const self = Number(/self (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(bg > 0 && self > 0, r.stdout);
  await eventually('grandchild gone', () => !alive(bg));
  await eventually('group empty', () => groupMembers(self).length === 0);
});

test('a process that finishes before its deadline is not killed and its children are left alone', async () => {
  // A daemonising child that closes its pipes is not ours to kill once the leader exited cleanly.
  const r = await runWithDeadline(['/bin/sh', '-c', 'sleep 5 >/dev/null 2>&1 & echo "bg $!"'], '', 3000);
  assert.equal(r.timedOut, false);
  assert.equal(r.code, 0);
  const bg = Number(/bg (\d+)/.exec(r.stdout)?.[1]);
  try {
    assert.equal(alive(bg), true, 'no kill without a deadline');
  } finally {
    process.kill(bg, 'SIGKILL');
  }
});

test('spawnWithDeadline: the deadline counts from run(), not from the start', async () => {
  // Idle for longer than its deadline before it gets work: it must not be killed for that.
  const child = spawnWithDeadline(['/bin/sh', '-c', 'read x; echo "got $x"'], 300, undefined);
  await new Promise((r) => setTimeout(r, 700));
  const r = await child.run('work\n');
  assert.deepEqual(r, { code: 0, stdout: 'got work\n', stderr: '', timedOut: false });
});

test('spawnWithDeadline: run() still enforces the deadline once it has work', async () => {
  const child = spawnWithDeadline(['/bin/sh', '-c', 'read x; sleep 30'], 300, undefined);
  const started = Date.now();
  const r = await child.run('go\n');
  assert.equal(r.timedOut, true);
  assert.equal(r.code, 137);
  assert.ok(Date.now() - started < 5000, 'returned at the deadline, not after sleep 30');
});

test('spawnWithDeadline: cancel() closes stdin, so an unneeded child exits on its own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-child-'));
  try {
    const pidFile = join(dir, 'pid');
    // Like an empty `ip -batch`: reads stdin to its end, then exits.
    const child = spawnWithDeadline(['/bin/sh', '-c', `echo $$ > ${pidFile}; cat >/dev/null`], 5000, undefined);
    await eventually('child wrote its pid', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(alive(pid), 'waiting for input');
    child.cancel();
    await eventually('cancelled child exited', () => !alive(pid));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
