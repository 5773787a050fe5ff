/**
 * CNI spec versions this plugin speaks, and result conversion between them (SPEC "Version
 * considerations"). The plugin always answers in the request's `cniVersion`.
 *
 *  - 0.3.0 / 0.3.1 / 0.4.0: `ips[].version` ("4" | "6") is present.
 *  - 1.0.0: `ips[].version` removed.
 *  - 1.1.0: optional `interfaces[].mtu|socketPath|pciID`, `routes[].mtu|advmss|priority|table|scope`.
 */
import { CniCode, CniError } from './errors.js';
import type { CniResult } from './types.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const LATEST_VERSION: CniVersion = '1.1.0';

const SEMVER = /^(\d+)\.(\d+)\.(\d+)$/;

/** True for a `MAJOR.MINOR.PATCH` string. */
export function isSemver(v: string): boolean {
  return SEMVER.test(v);
}

/** Negative, zero or positive like a comparator. Both must be semver strings. */
export function compareVersions(a: string, b: string): number {
  const pa = SEMVER.exec(a);
  const pb = SEMVER.exec(b);
  if (!pa || !pb) throw new Error(`not a version: ${a} / ${b}`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupported(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/**
 * Validates a request's cniVersion: not a string or not semver -> 6 (decoding failure, SPEC
 * "bad version string"); a version we do not speak -> 1 (incompatible version).
 */
export function requireVersion(v: unknown): CniVersion {
  if (typeof v !== 'string' || !isSemver(v)) {
    throw new CniError(CniCode.DecodingFailure, 'cniVersion is not a version string', JSON.stringify(v ?? null));
  }
  if (!isSupported(v)) {
    throw new CniError(
      CniCode.IncompatibleVersion,
      'incompatible CNI versions',
      `config is "${v}", plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`,
    );
  }
  return v;
}

/** SPEC 0.4.0: CHECK exists from 0.4.0 on. SPEC 1.1.0: STATUS and GC exist from 1.1.0 on. */
export function requireAtLeast(v: CniVersion, min: CniVersion, command: string): void {
  if (compareVersions(v, min) < 0) {
    throw new CniError(CniCode.IncompatibleVersion, `config version does not allow ${command}`, `${v} < ${min}`);
  }
}

/**
 * The result as JSON in `version`. The input is the 1.1.0-shaped internal result; older versions
 * lose the 1.1.0 extras, versions before 1.0.0 gain `ips[].version`.
 */
export function formatResult(r: CniResult, version: CniVersion): Record<string, unknown> {
  const pre100 = compareVersions(version, '1.0.0') < 0;
  const pre110 = compareVersions(version, '1.1.0') < 0;
  const out: Record<string, unknown> = { cniVersion: version };
  if (r.interfaces) {
    out.interfaces = r.interfaces.map((i) => {
      const o: Record<string, unknown> = { name: i.name };
      if (i.mac !== undefined) o.mac = i.mac;
      if (i.sandbox !== undefined) o.sandbox = i.sandbox;
      if (!pre110 && i.mtu !== undefined) o.mtu = i.mtu;
      return o;
    });
  }
  if (r.ips) {
    out.ips = r.ips.map((ip) => {
      const o: Record<string, unknown> = {};
      if (pre100) o.version = ip.address.includes(':') ? '6' : '4';
      if (ip.interface !== undefined) o.interface = ip.interface;
      o.address = ip.address;
      if (ip.gateway !== undefined) o.gateway = ip.gateway;
      return o;
    });
  }
  if (r.routes) {
    out.routes = r.routes.map((rt) => {
      const o: Record<string, unknown> = { dst: rt.dst };
      if (rt.gw !== undefined) o.gw = rt.gw;
      if (!pre110) {
        for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
          if (rt[k] !== undefined) o[k] = rt[k];
        }
      }
      return o;
    });
  }
  out.dns = r.dns ?? {};
  return out;
}
