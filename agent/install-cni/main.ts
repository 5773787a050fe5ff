/**
 * petrel-install-cni: the DaemonSet's init container (Calico's install-cni). Settings from the
 * environment (plan.ts), one line per action on stdout, then exit 0; a bad setting or a foreign
 * conflist: one line on stderr, exit 1, nothing written.
 */
import { readFileSync } from 'node:fs';
import { writeErr, writeOut } from '../common/output.js';
import { install } from './install.js';
import { InstallError, parseSettings } from './plan.js';

function main(): number {
  try {
    const s = parseSettings(process.env, (p) => readFileSync(p, 'utf8'));
    install(s, (line) => writeOut(`petrel-install-cni: ${line}\n`));
    return 0;
  } catch (err) {
    if (err instanceof InstallError) {
      writeErr(`petrel-install-cni: ${err.message}\n`);
      return 1;
    }
    writeErr(`petrel-install-cni: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

process.exitCode = main();
