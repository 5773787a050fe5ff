/**
 * Thin test side of the VM harness (agent/lab/vm, shipped code that `petrelctl lab` also uses):
 * the rig defaults for tests, and the "nothing left" check every VM test ends with.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Rig } from '../../agent/lab/vm/index.js';
import { netnsExists } from './netns.js';

export { type GuestInfo, type Rig, runGuests, type StartGuestsOptions, startGuests } from '../../agent/lab/vm/index.js';

/** Guest memory for tests: enough for node + a few processes, three guests fit beside the others. */
export const TEST_GUEST_MEM_MB = 768;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** After rig.destroy(): no qemu process, tap, namespace (when the rig made it) or run dir remains. */
export function assertRigGone(rig: Rig, opts: { netnsOwned: boolean }): void {
  for (const g of rig.guests) assert.equal(alive(g.pid), false, `qemu of ${g.name} (pid ${g.pid}) still running`);
  assert.equal(existsSync(rig.runDir), false, `run dir ${rig.runDir} still there`);
  if (opts.netnsOwned) assert.equal(netnsExists(rig.netns), false, `netns ${rig.netns} still there`);
}
