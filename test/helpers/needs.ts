/**
 * Capability checks for integration tests (STYLE §8).
 *
 *   test('...', { skip: needs('root', 'etcd') }, async () => { ... });
 *
 * needs() returns false when everything is present, else the reason. Outside CI the test is then
 * skipped with that reason. Under CI=true a missing capability must fail the run, so needs()
 * registers a failing test naming what is missing (once per capability) and the dependent test is
 * skipped; a green CI therefore never hides a skipped integration test.
 *
 * Every capability check in the tests goes through needs(): a named Capability probed here, or a
 * ProbedCapability whose probe lives beside the files it checks (the CNI harness knows where the
 * plugin executables are). Never put a bare reason string in `skip:`; under CI=true it would pass.
 * A case that does not apply to a mode is a different thing (test/integration/bgp/lib.ts
 * `onlyWhen`): it is skipped with "does not apply: ..." also under CI, as nothing is missing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { findTool } from '../../agent/common/tool-path.js';

export type Capability =
  | 'root'
  | 'netns'
  | 'etcd'
  | 'etcdctl'
  | 'bird'
  | 'bird2'
  | 'gobgpd'
  | 'frr'
  | 'exabgp'
  | 'tshark'
  | 'containerd'
  | 'cni-plugins'
  | 'bundles'
  | 'qemu'
  | 'chromium'
  | 'kubectl';

const BIRD16_CACHE = process.env.PETREL_BIRD16_DIR ?? '/var/cache/petrel/bird16';

const onPath = (cmd: string): boolean => findTool(cmd) !== undefined;

const probes: Record<Capability, () => string | false> = {
  root: () => (process.getuid?.() === 0 ? false : 'needs root'),
  netns: () => {
    if (process.getuid?.() !== 0) return 'needs root for network namespaces';
    try {
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
      return false;
    } catch {
      return 'needs iproute2 with netns support';
    }
  },
  etcd: () => (onPath('etcd') ? false : 'needs etcd (Debian etcd-server)'),
  etcdctl: () => (onPath('etcdctl') ? false : 'needs etcdctl (Debian etcd-client)'),
  bird: () => (existsSync(`${BIRD16_CACHE}/usr/sbin/bird`) ? false : `needs BIRD 1.6 unpacked in ${BIRD16_CACHE}`),
  bird2: () => (onPath('bird') && onPath('birdc') ? false : 'needs bird2'),
  gobgpd: () => (onPath('gobgpd') ? false : 'needs gobgpd'),
  frr: () => (existsSync('/usr/lib/frr/bgpd') ? false : 'needs frr'),
  exabgp: () => (onPath('exabgp') ? false : 'needs exabgp'),
  tshark: () => (onPath('tshark') ? false : 'needs tshark'),
  containerd: () => (onPath('containerd') && onPath('runc') ? false : 'needs containerd and runc'),
  'cni-plugins': () => (existsSync('/usr/lib/cni/ptp') ? false : 'needs containernetworking-plugins'),
  // qemu guests (test/integration/vm): TCG, so KVM is not required; the stock Debian kernel and a
  // static busybox for the harness's initramfs (agent/lab/vm).
  qemu: () => {
    if (!onPath('qemu-system-x86_64')) return 'needs qemu-system-x86_64 (Debian qemu-system-x86)';
    let kernels: string[] = [];
    try {
      kernels = readdirSync('/boot').filter((n) => n.startsWith('vmlinuz-'));
    } catch {
      /* no /boot */
    }
    if (kernels.length === 0) return 'needs a /boot/vmlinuz-* (Debian linux-image-amd64)';
    if (!existsSync('/bin/busybox') && !process.env.PETREL_VM_BUSYBOX) return 'needs a static busybox (busybox-static)';
    return false;
  },
  // petrelctl ui tests drive Debian's chromium with puppeteer-core (a devDependency) over a pipe.
  chromium: () => (existsSync('/usr/bin/chromium') ? false : 'needs chromium (Debian chromium)'),
  kubectl: () => (onPath('kubectl') ? false : 'needs kubectl'),
  bundles: () => (existsSync(new URL('../../../bin/petrelctl', import.meta.url)) ? false : 'needs `npm run build`'),
};

/** A capability probed by code outside this file: `probe` returns false when present, else the reason. */
export interface ProbedCapability {
  name: string;
  probe: () => string | false;
}

const cache = new Map<string, string | false>();
const reportedInCi = new Set<string>();

export const isCi = process.env.CI === 'true';

export function needs(...caps: (Capability | ProbedCapability)[]): string | false {
  const reasons: string[] = [];
  for (const c of caps) {
    const cap = typeof c === 'string' ? c : c.name;
    let r = cache.get(cap);
    if (r === undefined) {
      r = typeof c === 'string' ? probes[c]() : c.probe();
      cache.set(cap, r);
    }
    if (r === false) continue;
    reasons.push(r);
    if (isCi && !reportedInCi.has(cap)) {
      reportedInCi.add(cap);
      const reason = r;
      test(`capability ${cap} is present (CI=true)`, () => {
        throw new Error(`${reason}: under CI=true a missing capability fails the run`);
      });
    }
  }
  return reasons.length === 0 ? false : reasons.join('; ');
}
