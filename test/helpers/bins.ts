/** Where the executables under test live, and the needs() capability that they are built. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ProbedCapability } from './needs.js';
import { ROOT } from './petrelctl.js';

export const SEA_DIR = join(ROOT, 'dist-sea');
export const BIN_DIR = join(ROOT, 'bin');
export const REF_PLUGINS = '/usr/lib/cni';

/** Where the plugin executables under test live (PETREL_CNI_BIN_DIR overrides). */
export function pluginDir(): string {
  if (process.env.PETREL_CNI_BIN_DIR) return process.env.PETREL_CNI_BIN_DIR;
  return existsSync(join(SEA_DIR, 'petrel')) && existsSync(join(SEA_DIR, 'petrel-ipam')) ? SEA_DIR : BIN_DIR;
}

/** The plugin executables and the agent bundle, as a needs() capability: `needs('root', PETREL_BINS)`. */
export const PETREL_BINS: ProbedCapability = {
  name: 'petrel-bins',
  probe: () => {
    const d = pluginDir();
    for (const f of [
      join(d, 'petrel'),
      join(d, 'petrel-ipam'),
      join(BIN_DIR, 'petrel-agent'),
      join(BIN_DIR, 'petrelctl'),
    ]) {
      if (!existsSync(f)) return `needs ${f} (npm run build; npm run package)`;
    }
    return false;
  },
};
