/**
 * Network configuration from stdin (SPEC "Network configuration" + "Plugin configuration"):
 * parse and validate, with the spec's codes: 6 bad JSON / bad version string, 1 unsupported
 * version, 7 invalid config, 2 a field we understand but do not support (named with its value).
 *
 * `runtimeConfig` keys are matched case-insensitively: containerd sends Go field names
 * (`HostPort`, `Servers`) while the conventions and CRI-O use lowerCamel (cni.md §2.2).
 */
import type { LogLevel } from '../agent/common/logger.js';
import { ID_PATTERN } from './env.js';
import { CniCode, CniError } from './errors.js';
import { ipFamily, stripPrefix } from './ip.js';
import type { CniDns, CniResult, CniRoute } from './types.js';
import { type CniVersion, requireVersion } from './version.js';

/** Default deadline of one `ip`/`nsenter` child (netconf `ipTimeoutMs`). */
export const DEFAULT_IP_TIMEOUT_MS = 10_000;
/** Default deadline of a delegated IPAM plugin (netconf `delegateTimeoutMs`). */
export const DEFAULT_DELEGATE_TIMEOUT_MS = 30_000;

export const DEFAULT_AGENT_SOCKET = '/var/run/petrel/agent.sock';
export const PETREL_IPAM_TYPE = 'petrel-ipam';

export interface IpamConf {
  type: string;
  /** Pool names to allocate from (all usable pools when absent). */
  pools?: string[];
  assignIpv4: boolean;
  assignIpv6: boolean;
}

/** One entry of GC's `cni.dev/valid-attachments`. */
export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** Veth MTU; undefined = detected host MTU minus the pool's encapsulation overhead. */
  mtu?: number;
  logLevel: LogLevel;
  logFile?: string;
  agentSocket: string;
  /** Client-side timeout for one agent request, ms. */
  agentTimeoutMs: number;
  /** Deadline of one `ip -batch` / `nsenter` child, ms (then killed: code 102). */
  ipTimeoutMs: number;
  /** Deadline of one delegated plugin run (e.g. host-local ADD or DEL), ms (then killed: code 102). */
  delegateTimeoutMs: number;
  ipam?: IpamConf;
  dns?: CniDns;
  /** Static addresses requested through runtimeConfig `ips` / `args.cni.ips` (no prefix length). */
  staticIps: string[];
  /** runtimeConfig `dns` (capability "dns"), already mapped to result field names. */
  runtimeDns?: CniDns;
  prevResult?: CniResult;
  validAttachments?: Attachment[];
  /** The whole request object, for delegation (SPEC: delegated plugins get the same config). */
  raw: Record<string, unknown>;
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(msg: string, details = ''): CniError {
  return new CniError(CniCode.InvalidNetworkConfig, msg, details);
}

/** Case-insensitive key lookup (Go's encoding/json matches field names this way). */
export function ciGet(obj: Obj, key: string): unknown {
  if (key in obj) return obj[key];
  const lk = key.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lk) return obj[k];
  return undefined;
}

function stringList(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw invalid(`${what} must be a list of strings`);
  return v as string[];
}

function optString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${what} must be a string`, JSON.stringify(v));
  return v;
}

/** Parses a DNS object; `runtime` selects the runtimeConfig spelling (servers/searches/options). */
export function parseDns(v: unknown, runtime: boolean): CniDns | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalid('dns must be an object');
  const out: CniDns = {};
  const get = (k: string) => (runtime ? ciGet(v, k) : v[k]);
  const ns = get(runtime ? 'servers' : 'nameservers');
  if (ns !== undefined && ns !== null) out.nameservers = stringList(ns, 'dns nameservers');
  const search = get(runtime ? 'searches' : 'search');
  if (search !== undefined && search !== null) out.search = stringList(search, 'dns search');
  const options = get('options');
  if (options !== undefined && options !== null) out.options = stringList(options, 'dns options');
  const domain = runtime ? ciGet(v, 'domain') : v.domain;
  const d = optString(domain, 'dns domain');
  if (d !== undefined) out.domain = d;
  return out;
}

function optInt(v: unknown, what: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${what} must be an integer in ${min}..${max}`, JSON.stringify(v));
  }
  return v;
}

function bareIp(s: string, what: string): string {
  const ip = stripPrefix(s);
  if (ipFamily(ip) === undefined) throw invalid(`${what}: not an IP address`, s);
  return ip;
}

/** Lenient parse of a prevResult in any supported version (0.3.x `ips[].version` is ignored). */
export function parsePrevResult(v: unknown): CniResult {
  if (!isObj(v)) throw new CniError(CniCode.DecodingFailure, 'prevResult is not an object');
  const out: CniResult = {};
  const bad = (what: string) => new CniError(CniCode.DecodingFailure, `prevResult: ${what}`);
  if (v.interfaces !== undefined) {
    if (!Array.isArray(v.interfaces)) throw bad('interfaces must be a list');
    out.interfaces = v.interfaces.map((i: unknown) => {
      if (!isObj(i) || typeof i.name !== 'string') throw bad('interface without name');
      const o: NonNullable<CniResult['interfaces']>[number] = { name: i.name };
      if (typeof i.mac === 'string') o.mac = i.mac;
      if (typeof i.sandbox === 'string' && i.sandbox !== '') o.sandbox = i.sandbox;
      if (typeof i.mtu === 'number') o.mtu = i.mtu;
      return o;
    });
  }
  if (v.ips !== undefined) {
    if (!Array.isArray(v.ips)) throw bad('ips must be a list');
    out.ips = v.ips.map((ip: unknown) => {
      if (!isObj(ip) || typeof ip.address !== 'string') throw bad('ip without address');
      const o: NonNullable<CniResult['ips']>[number] = { address: ip.address };
      if (typeof ip.gateway === 'string') o.gateway = ip.gateway;
      if (typeof ip.interface === 'number') o.interface = ip.interface;
      return o;
    });
  }
  if (v.routes !== undefined) {
    if (!Array.isArray(v.routes)) throw bad('routes must be a list');
    out.routes = v.routes.map((r: unknown) => {
      if (!isObj(r) || typeof r.dst !== 'string') throw bad('route without dst');
      const o: CniRoute = { dst: r.dst };
      if (typeof r.gw === 'string') o.gw = r.gw;
      for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
        const x = r[k];
        if (typeof x === 'number') o[k] = x;
      }
      return o;
    });
  }
  if (isObj(v.dns)) {
    const d = parseDns(v.dns, false);
    if (d) out.dns = d;
  }
  return out;
}

function parseIpam(v: unknown): IpamConf | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalid('ipam must be an object');
  if (typeof v.type !== 'string' || v.type === '') throw invalid('ipam.type is required');
  const out: IpamConf = { type: v.type, assignIpv4: true, assignIpv6: false };
  if (v.pools !== undefined) {
    out.pools = stringList(v.pools, 'ipam.pools');
    if (out.pools.length === 0) delete out.pools;
  }
  for (const [key, field] of [
    ['assignIpv4', 'assignIpv4'],
    ['assignIpv6', 'assignIpv6'],
  ] as const) {
    const x = v[key];
    if (x === undefined) continue;
    if (typeof x !== 'boolean') throw invalid(`ipam.${key} must be a boolean`, JSON.stringify(x));
    out[field] = x;
  }
  if (out.type === PETREL_IPAM_TYPE && !out.assignIpv4 && !out.assignIpv6) {
    throw invalid('ipam: assignIpv4 and assignIpv6 are both false');
  }
  return out;
}

/** Reads just enough of stdin to learn the request's version (to shape an error reply). */
export function sniffVersion(stdin: string): string | undefined {
  try {
    const v = JSON.parse(stdin) as unknown;
    return isObj(v) && typeof v.cniVersion === 'string' ? v.cniVersion : undefined;
  } catch {
    return undefined;
  }
}

/** Parses and validates the request. `minimal` (VERSION) checks only the version. */
export function parseNetConf(stdin: string): NetConf {
  let v: unknown;
  try {
    v = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodingFailure, 'network configuration is not valid JSON', (err as Error).message);
  }
  if (!isObj(v)) throw new CniError(CniCode.DecodingFailure, 'network configuration is not a JSON object');
  if (v.cniVersion === undefined) throw invalid('cniVersion is required');
  const cniVersion = requireVersion(v.cniVersion);
  if (typeof v.name !== 'string' || !ID_PATTERN.test(v.name)) {
    throw invalid('name is required and must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$', JSON.stringify(v.name ?? null));
  }
  if (typeof v.type !== 'string' || v.type === '') throw invalid('type is required');
  // We do not masquerade in the plugin (outgoing NAT is a pool property the agent programs).
  if (v.ipMasq === true) throw new CniError(CniCode.UnsupportedField, 'unsupported field ipMasq', 'ipMasq=true');
  const logLevel = optString(v.logLevel, 'logLevel') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw invalid(`logLevel must be one of ${LOG_LEVELS.join(', ')}`, logLevel);
  }
  const conf: NetConf = {
    cniVersion,
    name: v.name,
    type: v.type,
    logLevel: logLevel as LogLevel,
    agentSocket: optString(v.agentSocket, 'agentSocket') || DEFAULT_AGENT_SOCKET,
    agentTimeoutMs: optInt(v.agentTimeoutMs, 'agentTimeoutMs', 100, 600_000) ?? 30_000,
    ipTimeoutMs: optInt(v.ipTimeoutMs, 'ipTimeoutMs', 100, 600_000) ?? DEFAULT_IP_TIMEOUT_MS,
    delegateTimeoutMs: optInt(v.delegateTimeoutMs, 'delegateTimeoutMs', 100, 600_000) ?? DEFAULT_DELEGATE_TIMEOUT_MS,
    staticIps: [],
    raw: v,
  };
  const mtu = optInt(v.mtu, 'mtu', 0, 65535);
  if (mtu !== undefined && mtu !== 0) {
    if (mtu < 68) throw invalid('mtu must be 0 (detect) or at least 68', String(mtu));
    conf.mtu = mtu;
  }
  const logFile = optString(v.logFile, 'logFile');
  if (logFile) conf.logFile = logFile;
  const ipam = parseIpam(v.ipam);
  if (ipam) conf.ipam = ipam;
  const dns = parseDns(v.dns, false);
  if (dns) conf.dns = dns;

  if (v.runtimeConfig !== undefined && v.runtimeConfig !== null) {
    if (!isObj(v.runtimeConfig)) throw invalid('runtimeConfig must be an object');
    const ips = ciGet(v.runtimeConfig, 'ips');
    if (ips !== undefined && ips !== null) {
      conf.staticIps.push(...stringList(ips, 'runtimeConfig.ips').map((s) => bareIp(s, 'runtimeConfig.ips')));
    }
    const rdns = parseDns(ciGet(v.runtimeConfig, 'dns'), true);
    if (rdns) conf.runtimeDns = rdns;
  }
  // CONVENTIONS.md: args.cni.ips carries the same request.
  if (isObj(v.args) && isObj(v.args.cni) && v.args.cni.ips !== undefined) {
    conf.staticIps.push(...stringList(v.args.cni.ips, 'args.cni.ips').map((s) => bareIp(s, 'args.cni.ips')));
  }
  if (v.prevResult !== undefined && v.prevResult !== null) conf.prevResult = parsePrevResult(v.prevResult);

  // SPEC 1.1.0 GC: libcni sends both spellings.
  const att = v['cni.dev/valid-attachments'] ?? v['cni.dev/attachments'];
  if (att !== undefined && att !== null) {
    if (!Array.isArray(att)) throw invalid('cni.dev/valid-attachments must be a list');
    conf.validAttachments = att.map((a: unknown) => {
      if (!isObj(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
        throw invalid('cni.dev/valid-attachments entries need containerID and ifname');
      }
      return { containerID: a.containerID, ifname: a.ifname };
    });
  }
  return conf;
}

/** The DNS for the result: config `dns`, with fields set by runtimeConfig `dns` taking precedence. */
export function resultDns(conf: NetConf): CniDns {
  return { ...(conf.dns ?? {}), ...(conf.runtimeDns ?? {}) };
}
