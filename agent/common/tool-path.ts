/**
 * Where a system tool (ip, bridge, nft, sysctl, nsenter) is: the first executable of that name on
 * PATH, else in the standard system directories. A container or service whose PATH lacks /usr/sbin
 * (bridge, nft and sysctl live there on Debian) still programs the dataplane; without this the
 * agent's VXLAN FDB entries and NAT rules failed with ENOENT while routes (ip is also in /usr/bin)
 * worked. Looked up once per name.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const found = new Map<string, string>();

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The absolute path of executable `name` (PATH first, then SYSTEM_DIRS), or undefined. */
export function findTool(name: string, path: string | undefined = process.env.PATH): string | undefined {
  const key = `${path ?? ''}\0${name}`;
  const hit = found.get(key);
  if (hit) return hit;
  const dirs = [...(path ?? '').split(delimiter).filter((d) => d.startsWith('/')), ...SYSTEM_DIRS];
  const p = dirs.map((d) => join(d, name)).find(executable);
  if (p) found.set(key, p);
  return p;
}

/** What to spawn for `name`: findTool's path; `name` itself when already a path or not found (spawn then reports ENOENT with the name). */
export function toolPath(name: string, path: string | undefined = process.env.PATH): string {
  return name.includes('/') ? name : (findTool(name, path) ?? name);
}
