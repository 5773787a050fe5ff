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

/** Reads the InternalIP addresses of this node's Kubernetes Node (kubernetes-internal-ip). */
export type InternalIpSource = () => Promise<string[]>;

export async function autodetect(
  family: 4 | 6,
  method: DetectMethod,
  internalIps?: InternalIpSource,
): Promise<Detected & { ifaces: Iface[] }> {
  const ifaces = await readInterfaces();
  const src = method.kind === 'can-reach' ? await routeSource(method.dest) : undefined;
  let ips: string[] | undefined;
  if (method.kind === 'kubernetes-internal-ip') {
    if (!internalIps) return { ok: false, error: 'kubernetes-internal-ip needs the Kubernetes API', ifaces };
    ips = await internalIps();
  }
  return { ...detectAddress(ifaces, family, method, src, ips), ifaces };
}
