/**
 * Scratch directories for tests: made under the system temp dir and removed when the test process
 * exits (passed or failed), for files nothing stops explicitly (a PKI, a kubeconfig).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];
process.on('exit', () => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A new directory `petrel-PREFIX-XXXXXX` in the temp dir, deleted at process exit. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `petrel-${prefix}-`));
  made.push(dir);
  return dir;
}
