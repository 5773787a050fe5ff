/**
 * The JSON config of `petrelctl bgp run`: parsing and validation into typed speaker options.
 * Validation fails fast with one BgpConfigError naming the offending key (`peers[1].asn: ...`).
 * Unknown keys are errors too, so a typo never silently falls back to a default.
 */
import { canonicalPrefix, compileFilter, type RouteFilter } from './rib/index.js';
import { type AnnounceOptions, DEFAULT_SEND_BUFFER, type PeerConfig, type SpeakerConfig } from './speaker/types.js';

export class BgpConfigError extends Error {
  override readonly name = 'BgpConfigError';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

export interface BgpRunConfig {
  speaker: SpeakerConfig;
  peers: PeerConfig[];
  announce: { prefix: string; options: AnnounceOptions }[];
  /** HTTP status + metrics endpoint (default 127.0.0.1:9179). */
  status: { address: string; port: number };
}

type Obj = Record<string, unknown>;

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isIpv6 = (s: string) =>
  /^[0-9a-fA-F:.]+$/.test(s) && s.includes(':') && canonicalPrefix(`${s}/128`) !== undefined;
const isIp = (s: string) => IPV4.test(s) || isIpv6(s);

function obj(v: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BgpConfigError(path, 'must be an object');
  for (const k of Object.keys(v))
    if (!keys.includes(k))
      throw new BgpConfigError(`${path}.${k}`.replace(/^\./, ''), `unknown key (known: ${keys.join(', ')})`);
  return v as Obj;
}
function int(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new BgpConfigError(path, `must be an integer ${min}..${max}`);
  return v;
}
function str(v: unknown, path: string): string {
  if (typeof v !== 'string' || v === '') throw new BgpConfigError(path, 'must be a non-empty string');
  return v;
}
function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw new BgpConfigError(path, 'must be true or false');
  return v;
}
function ip(v: unknown, path: string): string {
  const s = str(v, path);
  if (!isIp(s)) throw new BgpConfigError(path, `"${s}" is not an IP address`);
  return s;
}
function ipv4(v: unknown, path: string): string {
  const s = str(v, path);
  if (!IPV4.test(s)) throw new BgpConfigError(path, `"${s}" is not an IPv4 address`);
  return s;
}
function endpoint(v: unknown, path: string): { address: string; port: number } {
  const o = obj(v, path, ['address', 'port']);
  return { address: ip(o.address, `${path}.address`), port: int(o.port ?? 179, `${path}.port`, 0, 65535) };
}
const ASN_MAX = 4294967295;

function filter(v: unknown, path: string): RouteFilter {
  const o = obj(v, path, ['rules', 'defaultAction']);
  if (!Array.isArray(o.rules)) throw new BgpConfigError(`${path}.rules`, 'must be an array');
  const f: RouteFilter = {
    rules: o.rules.map((r, i) => {
      const rp = `${path}.rules[${i}]`;
      const ro = obj(r, rp, ['action', 'prefixes', 'communities']);
      if (ro.action !== 'accept' && ro.action !== 'reject')
        throw new BgpConfigError(`${rp}.action`, 'must be "accept" or "reject"');
      const rule: RouteFilter['rules'][number] = { action: ro.action };
      if (ro.prefixes !== undefined) {
        if (!Array.isArray(ro.prefixes)) throw new BgpConfigError(`${rp}.prefixes`, 'must be an array');
        rule.prefixes = ro.prefixes.map((m, j) => {
          const mp = `${rp}.prefixes[${j}]`;
          const mo = obj(m, mp, ['prefix', 'ge', 'le']);
          const prefix = str(mo.prefix, `${mp}.prefix`);
          if (!canonicalPrefix(prefix)) throw new BgpConfigError(`${mp}.prefix`, `"${prefix}" is not a prefix`);
          const out: { prefix: string; ge?: number; le?: number } = { prefix };
          if (mo.ge !== undefined) out.ge = int(mo.ge, `${mp}.ge`, 0, 128);
          if (mo.le !== undefined) out.le = int(mo.le, `${mp}.le`, 0, 128);
          return out;
        });
      }
      if (ro.communities !== undefined) {
        if (!Array.isArray(ro.communities)) throw new BgpConfigError(`${rp}.communities`, 'must be an array');
        rule.communities = ro.communities.map((c, j) => str(c, `${rp}.communities[${j}]`));
      }
      return rule;
    }),
  };
  if (o.defaultAction !== undefined) {
    if (o.defaultAction !== 'accept' && o.defaultAction !== 'reject')
      throw new BgpConfigError(`${path}.defaultAction`, 'must be "accept" or "reject"');
    f.defaultAction = o.defaultAction;
  }
  try {
    compileFilter(f);
  } catch (err) {
    throw new BgpConfigError(path, (err as Error).message);
  }
  return f;
}

const PEER_KEYS = [
  'address',
  'asn',
  'port',
  'passive',
  'holdTimeSec',
  'keepaliveSec',
  'connectRetrySec',
  'idleHoldSec',
  'idleHoldMaxSec',
  'localAddress',
  'multihop',
  'routeReflectorClient',
  'nextHopSelf',
  'families',
  'maxPrefixes',
  'importFilter',
  'exportFilter',
  'gracefulRestart',
  'shutdown',
  'description',
] as const;

function peer(v: unknown, path: string): PeerConfig {
  const o = obj(v, path, PEER_KEYS);
  const p: PeerConfig = { address: ip(o.address, `${path}.address`), asn: int(o.asn, `${path}.asn`, 1, ASN_MAX) };
  if (o.port !== undefined) p.port = int(o.port, `${path}.port`, 1, 65535);
  if (o.passive !== undefined) p.passive = bool(o.passive, `${path}.passive`);
  if (o.holdTimeSec !== undefined) {
    p.holdTimeSec = int(o.holdTimeSec, `${path}.holdTimeSec`, 0, 65535);
    if (p.holdTimeSec === 1 || p.holdTimeSec === 2)
      throw new BgpConfigError(`${path}.holdTimeSec`, 'must be 0 or at least 3 (RFC 4271 §4.2)');
  }
  if (o.keepaliveSec !== undefined) p.keepaliveSec = int(o.keepaliveSec, `${path}.keepaliveSec`, 1, 21845);
  if (o.connectRetrySec !== undefined) p.connectRetrySec = int(o.connectRetrySec, `${path}.connectRetrySec`, 1, 65535);
  if (o.idleHoldSec !== undefined) p.idleHoldSec = int(o.idleHoldSec, `${path}.idleHoldSec`, 0, 65535);
  if (o.idleHoldMaxSec !== undefined) p.idleHoldMaxSec = int(o.idleHoldMaxSec, `${path}.idleHoldMaxSec`, 0, 65535);
  if (o.localAddress !== undefined) p.localAddress = ip(o.localAddress, `${path}.localAddress`);
  if (o.multihop !== undefined) p.multihop = int(o.multihop, `${path}.multihop`, 1, 255);
  if (o.routeReflectorClient !== undefined)
    p.routeReflectorClient = bool(o.routeReflectorClient, `${path}.routeReflectorClient`);
  if (o.nextHopSelf !== undefined) p.nextHopSelf = bool(o.nextHopSelf, `${path}.nextHopSelf`);
  if (o.families !== undefined) {
    if (!Array.isArray(o.families) || o.families.length === 0)
      throw new BgpConfigError(`${path}.families`, 'must be a non-empty array of "ipv4" / "ipv6"');
    p.families = o.families.map((f, i) => {
      if (f !== 'ipv4' && f !== 'ipv6') throw new BgpConfigError(`${path}.families[${i}]`, 'must be "ipv4" or "ipv6"');
      return f;
    });
  }
  if (o.maxPrefixes !== undefined) {
    const mp = obj(o.maxPrefixes, `${path}.maxPrefixes`, ['limit', 'action']);
    p.maxPrefixes = { limit: int(mp.limit, `${path}.maxPrefixes.limit`, 1, ASN_MAX) };
    if (mp.action !== undefined) {
      if (mp.action !== 'cease' && mp.action !== 'warn' && mp.action !== 'discard')
        throw new BgpConfigError(`${path}.maxPrefixes.action`, 'must be "cease", "warn" or "discard"');
      p.maxPrefixes.action = mp.action;
    }
  }
  if (o.importFilter !== undefined) p.importFilter = filter(o.importFilter, `${path}.importFilter`);
  if (o.exportFilter !== undefined) p.exportFilter = filter(o.exportFilter, `${path}.exportFilter`);
  if (o.gracefulRestart !== undefined) p.gracefulRestart = bool(o.gracefulRestart, `${path}.gracefulRestart`);
  if (o.shutdown !== undefined) p.shutdown = bool(o.shutdown, `${path}.shutdown`);
  if (o.description !== undefined) p.description = str(o.description, `${path}.description`);
  return p;
}

/** Below one maximum-size (RFC 8654 extended) message a peer would pause after every UPDATE. */
const SEND_BUFFER_MIN = 65_536;
/** 16 GiB: far beyond any sane per-peer queue, still an exact integer. */
const SEND_BUFFER_MAX = 16 * 1024 ** 3;

function sendBuffer(v: unknown): NonNullable<SpeakerConfig['sendBuffer']> {
  const o = obj(v, 'sendBuffer', ['softLimitBytes', 'hardLimitBytes']);
  const out: NonNullable<SpeakerConfig['sendBuffer']> = {};
  if (o.softLimitBytes !== undefined)
    out.softLimitBytes = int(o.softLimitBytes, 'sendBuffer.softLimitBytes', SEND_BUFFER_MIN, SEND_BUFFER_MAX);
  if (o.hardLimitBytes !== undefined)
    out.hardLimitBytes = int(o.hardLimitBytes, 'sendBuffer.hardLimitBytes', SEND_BUFFER_MIN, SEND_BUFFER_MAX);
  const soft = out.softLimitBytes ?? DEFAULT_SEND_BUFFER.softLimitBytes;
  const hard = out.hardLimitBytes ?? DEFAULT_SEND_BUFFER.hardLimitBytes;
  if (hard <= soft)
    throw new BgpConfigError(
      out.hardLimitBytes !== undefined ? 'sendBuffer.hardLimitBytes' : 'sendBuffer.softLimitBytes',
      `hardLimitBytes (${hard}) must be greater than softLimitBytes (${soft})` +
        (out.hardLimitBytes === undefined || out.softLimitBytes === undefined ? ' (the other one is its default)' : ''),
    );
  return out;
}

const TOP_KEYS = [
  'asn',
  'routerId',
  'listen',
  'status',
  'gracefulRestart',
  'routeReflector',
  'nextHop',
  'multipath',
  'extendedMessage',
  'advertisementIntervalMs',
  'sendBuffer',
  'peers',
  'announce',
] as const;

/** Validates a parsed JSON value. Throws BgpConfigError. */
export function parseBgpConfig(v: unknown): BgpRunConfig {
  const o = obj(v, '', TOP_KEYS);
  const speaker: SpeakerConfig = { asn: int(o.asn, 'asn', 1, ASN_MAX), routerId: ipv4(o.routerId, 'routerId') };
  if (o.listen !== undefined) speaker.listen = endpoint(o.listen, 'listen');
  if (o.gracefulRestart !== undefined) {
    const g = obj(o.gracefulRestart, 'gracefulRestart', [
      'restartTimeSec',
      'restarting',
      'staleTimeSec',
      'selectionDeferralSec',
    ]);
    speaker.gracefulRestart = {
      restartTimeSec: int(g.restartTimeSec ?? 120, 'gracefulRestart.restartTimeSec', 1, 4095),
    };
    if (g.restarting !== undefined)
      speaker.gracefulRestart.restarting = bool(g.restarting, 'gracefulRestart.restarting');
    if (g.staleTimeSec !== undefined)
      speaker.gracefulRestart.staleTimeSec = int(g.staleTimeSec, 'gracefulRestart.staleTimeSec', 1, 65535);
    if (g.selectionDeferralSec !== undefined)
      speaker.gracefulRestart.selectionDeferralSec = int(
        g.selectionDeferralSec,
        'gracefulRestart.selectionDeferralSec',
        1,
        3600,
      );
  }
  if (o.routeReflector !== undefined) {
    const r = obj(o.routeReflector, 'routeReflector', ['clusterId']);
    speaker.routeReflector = {};
    if (r.clusterId !== undefined) speaker.routeReflector.clusterId = ipv4(r.clusterId, 'routeReflector.clusterId');
  }
  if (o.nextHop !== undefined) {
    const n = obj(o.nextHop, 'nextHop', ['ipv4', 'ipv6']);
    speaker.nextHop = {};
    if (n.ipv4 !== undefined) speaker.nextHop.ipv4 = ipv4(n.ipv4, 'nextHop.ipv4');
    if (n.ipv6 !== undefined) {
      const s = str(n.ipv6, 'nextHop.ipv6');
      if (!isIpv6(s)) throw new BgpConfigError('nextHop.ipv6', `"${s}" is not an IPv6 address`);
      speaker.nextHop.ipv6 = s;
    }
  }
  if (o.multipath !== undefined) speaker.multipath = bool(o.multipath, 'multipath');
  if (o.extendedMessage !== undefined) speaker.extendedMessage = bool(o.extendedMessage, 'extendedMessage');
  if (o.advertisementIntervalMs !== undefined)
    speaker.advertisementIntervalMs = int(o.advertisementIntervalMs, 'advertisementIntervalMs', 0, 600_000);
  if (o.sendBuffer !== undefined) speaker.sendBuffer = sendBuffer(o.sendBuffer);
  const peersRaw = o.peers ?? [];
  if (!Array.isArray(peersRaw)) throw new BgpConfigError('peers', 'must be an array');
  const peers = peersRaw.map((p, i) => peer(p, `peers[${i}]`));
  const seen = new Set<string>();
  peers.forEach((p, i) => {
    if (seen.has(p.address)) throw new BgpConfigError(`peers[${i}].address`, `duplicate peer ${p.address}`);
    seen.add(p.address);
  });
  const annRaw = o.announce ?? [];
  if (!Array.isArray(annRaw)) throw new BgpConfigError('announce', 'must be an array');
  const announce = annRaw.map((a, i) => {
    const path = `announce[${i}]`;
    const ao =
      typeof a === 'string' ? { prefix: a } : obj(a, path, ['prefix', 'nextHop', 'communities', 'med', 'localPref']);
    const prefix = str(ao.prefix, typeof a === 'string' ? path : `${path}.prefix`);
    if (!canonicalPrefix(prefix))
      throw new BgpConfigError(typeof a === 'string' ? path : `${path}.prefix`, `"${prefix}" is not a prefix`);
    const options: AnnounceOptions = {};
    if (ao.nextHop !== undefined) options.nextHop = ip(ao.nextHop, `${path}.nextHop`);
    if (ao.communities !== undefined) {
      if (!Array.isArray(ao.communities)) throw new BgpConfigError(`${path}.communities`, 'must be an array');
      options.communities = ao.communities.map((c, j) => {
        const s = str(c, `${path}.communities[${j}]`);
        if (!/^\d+:\d+(:\d+)?$/.test(s))
          throw new BgpConfigError(`${path}.communities[${j}]`, `"${s}" is not a community`);
        return s;
      });
    }
    if (ao.med !== undefined) options.med = int(ao.med, `${path}.med`, 0, ASN_MAX);
    if (ao.localPref !== undefined) options.localPref = int(ao.localPref, `${path}.localPref`, 0, ASN_MAX);
    return { prefix, options };
  });
  const status = o.status !== undefined ? endpoint(o.status, 'status') : { address: '127.0.0.1', port: 9179 };
  return { speaker, peers, announce, status };
}

/** Parses JSON text (syntax errors become BgpConfigError too). */
export function parseBgpConfigText(text: string): BgpRunConfig {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BgpConfigError('(file)', `invalid JSON: ${(err as Error).message}`);
  }
  return parseBgpConfig(v);
}
