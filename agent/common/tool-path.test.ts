import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { toolPath } from './tool-path.js';

test('toolPath: PATH first, then the system directories; a path or an unknown name unchanged', () => {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-toolpath-'));
  try {
    const mine = join(dir, 'sh');
    writeFileSync(mine, '#!/bin/sh\n');
    chmodSync(mine, 0o755);
    assert.equal(toolPath('sh', dir), mine, 'PATH wins');
    writeFileSync(join(dir, 'notexec'), '');
    assert.equal(toolPath('notexec', dir), 'notexec', 'not executable: not taken');
    // /bin/sh exists on every Debian machine; a PATH without it still finds it.
    assert.match(toolPath('sh', '/nonexistent'), /^\/(usr\/)?s?bin\/sh$/);
    assert.equal(toolPath('sh', ''), toolPath('sh', '/nonexistent'));
    assert.equal(toolPath('/x/y'), '/x/y');
    assert.equal(toolPath('petrel-no-such-tool', dir), 'petrel-no-such-tool');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
