/**
 * `petrelctl lab` as the lab tests drive it: the command, its state file, `status --json` (once or
 * until healthy), and the list of what a lab made (read before `down`, to check down removed it).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import type { LabSummary } from '../../agent/lab/report.js';
import { listNetns, pidAlive } from '../../agent/lab/sh.js';
import type { LabState } from '../../agent/lab/state.js';
import { PETRELCTL, run } from './petrelctl.js';

export const LAB_ROOT = '/run/petrel-lab';

export function labCli(timeoutMs: number) {
  const lab = (...args: string[]) => run(PETRELCTL, ['lab', ...args], {}, timeoutMs);
  const stateOf = (name: string) => JSON.parse(readFileSync(`${LAB_ROOT}/${name}/state.json`, 'utf8')) as LabState;
  const status = async (name: string) => {
    const r = await lab('status', '--name', name, '--json');
    return { code: r.code, s: JSON.parse(r.stdout) as LabSummary, stderr: r.stderr };
  };
  /** `lab status --json` until healthy (a restarted agent converges within seconds), else the last answer. */
  const statusHealthy = async (name: string, ms: number) => {
    const deadline = performance.now() + ms;
    for (;;) {
      const r = await status(name);
      if (r.code === 0 || performance.now() > deadline) return r;
    }
  };
  return { lab, stateOf, status, statusHealthy };
}

/** Everything a lab recorded: host PIDs (etcd, agents, lab procs, guest keeper and qemu), its namespace prefix, its directory. */
export function madeBy(s: LabState) {
  const pids = [
    s.etcd?.pid,
    s.guests?.keeperPid,
    ...s.nodes.map((n) => n.agentPid),
    ...s.nodes.map((n) => n.guest?.pid),
    ...s.procs.map((p) => p.pid),
  ];
  return { pids: pids.filter((p): p is number => typeof p === 'number'), prefix: `${s.prefix}-`, dir: s.dir };
}

/** After `down`: no namespace with the lab's prefix, no recorded process alive, its directory gone. */
export function assertGone(m: ReturnType<typeof madeBy>): void {
  assert.deepEqual(
    listNetns().filter((n) => n.startsWith(m.prefix)),
    [],
    'no namespace left',
  );
  assert.deepEqual(
    m.pids.filter((p) => pidAlive(p)),
    [],
    'no process left',
  );
  assert.equal(existsSync(m.dir), false, `${m.dir} removed`);
}
