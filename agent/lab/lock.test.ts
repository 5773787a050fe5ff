import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { withLock } from './lab.js';
import { LabConfigError } from './layout.js';

test('withLock: commands on one lab run one at a time; a lock of a dead PID is taken over; no lab is an error', async () => {
  const root = mkdtempSync(join(tmpdir(), 'petrel-lab-lock-'));
  const old = process.env.PETREL_LAB_DIR;
  process.env.PETREL_LAB_DIR = root;
  try {
    mkdirSync(join(root, 'l1'));
    const log: string[] = [];
    const job = (tag: string) =>
      withLock('l1', async () => {
        log.push(`${tag} in`);
        await new Promise((r) => setImmediate(r));
        log.push(`${tag} out`);
      });
    await Promise.all([job('a'), job('b')]);
    assert.deepEqual(log, ['a in', 'a out', 'b in', 'b out']);
    // PID 2^22+1 is above Linux's pid_max default range: never alive.
    writeFileSync(join(root, 'l1', 'lock'), String(4194305));
    assert.equal(await withLock('l1', async () => 'taken over'), 'taken over');
    // An empty lock is one another command has just made and not yet written its PID into: it is
    // waited for, not taken over (taking it let two parallel add-pods both hold the lock).
    writeFileSync(join(root, 'l1', 'lock'), '');
    let entered = false;
    const waiting = withLock('l1', async () => {
      entered = true;
    });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(entered, false, 'an empty (fresh) lock is held');
    rmSync(join(root, 'l1', 'lock'));
    await waiting;
    assert.equal(entered, true);
    await assert.rejects(
      withLock('nope', async () => 0),
      LabConfigError,
    );
  } finally {
    if (old === undefined) delete process.env.PETREL_LAB_DIR;
    else process.env.PETREL_LAB_DIR = old;
    rmSync(root, { recursive: true, force: true });
  }
});
