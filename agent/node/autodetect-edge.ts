/** The I/O edge of autodetection: `ip -json addr` and `ip -json route get DEST`. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type Detected, type DetectMethod, detectAddress, type Iface, parseIpAddrJson } from './autodetect.js';

const run = promisify(execFile);

export async function readInterfaces(): Promise<Iface[]> {
  // Generous: the first `ip` in a busy guest can take seconds. Callers retry on failure.
  const { stdout } = await run('ip', ['-json', 'addr', 'show'], { timeout: 15_000 });
  return parseIpAddrJson(stdout);
}

/** The kernel's source address toward `dest`, or undefined when there is no route. */
export async function routeSource(dest: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('ip', ['-json', 'route', 'get', dest], { timeout: 5000 });
    const r = JSON.parse(stdout) as { prefsrc?: string }[];
    return r[0]?.prefsrc;
  } catch {
    return undefined;
  }
}

export async function autodetect(family: 4 | 6, method: DetectMethod): Promise<Detected & { ifaces: Iface[] }> {
  const ifaces = await readInterfaces();
  const src = method.kind === 'can-reach' ? await routeSource(method.dest) : undefined;
  return { ...detectAddress(ifaces, family, method, src), ifaces };
}
