import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { spawnGroup, waitFor } from './sh.js';

test('spawnGroup: output() is what this process wrote, not what an earlier one left in the appended file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-sh-'));
  try {
    const file = join(dir, 'echo.out');
    writeFileSync(file, 'listening\n');
    const p = spawnGroup('', 'sh', ['-c', 'echo second'], file);
    await waitFor('sh exits', () => p.exited(), 5000);
    assert.equal(p.output(), 'second\n');
    assert.equal(readFileSync(file, 'utf8'), 'listening\nsecond\n', 'the file itself is appended to');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
