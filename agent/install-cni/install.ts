/**
 * install-cni's edge: copies the plugin executables into the host's CNI bin dir and writes the
 * conflist into its net dir, each through a temp file in the same directory, fsync and rename (the
 * runtime never sees half a file). Everything is decided (plan.ts) before anything is written.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InstallError, type InstallSettings, PLUGINS, planBinary, planConflist, renderConflist } from './plan.js';

/** Writes `data` to `dir/name` atomically (temp in the same dir, fsync, rename). */
function atomicWrite(dir: string, name: string, data: Buffer | string, mode: number): void {
  const tmp = join(dir, `.${name}.petrel-tmp-${process.pid}`);
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, join(dir, name));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function readIf(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

export function install(s: InstallSettings, say: (line: string) => void): void {
  // Decide everything first: a bad template or a foreign conflist writes nothing.
  const { text } = renderConflist(s);
  let names: string[];
  try {
    names = readdirSync(s.netDir);
  } catch (err) {
    throw new InstallError(`CNI_NET_DIR ${s.netDir}: ${(err as Error).message}`);
  }
  const existing = new Map<string, string>();
  for (const n of names) {
    if (n.startsWith('.')) continue;
    const b = readIf(join(s.netDir, n));
    if (b) existing.set(n, b.toString('utf8'));
  }
  const conf = planConflist(s, text, existing);
  const copies: { name: string; data: Buffer }[] = [];
  for (const name of PLUGINS) {
    const src = readIf(join(s.sourceDir, name));
    if (!src) {
      if (!s.skipBinaries.includes(name))
        throw new InstallError(
          `${join(s.sourceDir, name)} is missing: the image ships it (or list it in SKIP_CNI_BINARIES)`,
        );
      continue;
    }
    const dest = readIf(join(s.binDir, name));
    const action = planBinary(name, s, sha256(src), dest ? sha256(dest) : undefined);
    if (action === 'copy') copies.push({ name, data: src });
    else say(`${join(s.binDir, name)}: ${action}`);
  }
  for (const c of copies) {
    atomicWrite(s.binDir, c.name, c.data, 0o755);
    const back = readIf(join(s.binDir, c.name));
    if (!back || sha256(back) !== sha256(c.data))
      throw new InstallError(`${join(s.binDir, c.name)}: copy does not verify`);
    say(`${join(s.binDir, c.name)}: installed (${c.data.length} bytes)`);
  }
  // The conflist last: the runtime starts sending pods as soon as it appears.
  if (conf.action === 'write') {
    atomicWrite(s.netDir, s.confName, text, 0o644);
    say(`${join(s.netDir, s.confName)}: written`);
  } else say(`${join(s.netDir, s.confName)}: unchanged`);
  for (const w of conf.warnings) say(`warning: ${w}`);
}
