/**
 * The configuration diff of a running speaker: old desired config, new desired config -> what
 * to do (declare, then apply: Speaker.applyConfig runs the plan; `petrelctl bgp run` calls it on
 * SIGHUP, and the node agent when its peers change). Pure: plain data in, a plan out.
 *
 * Complicating factors:
 * - Peers are keyed by address the way the speaker keys them: an IPv4-mapped IPv6 address is the
 *   IPv4 peer, and IPv6 text is compared in its canonical form (RFC 5952), so `fd00::0:2` and
 *   `fd00::2` are one peer, not a removal and an addition that would drop the session.
 * - Configs are compared by content with sorted keys: reordering keys in the file changes nothing.
 *   Defaults are not filled in: writing out `"port": 179` where it was absent counts as a change.
 * - Only a change of `description` is applied in place, and of `shutdown` by an administrative
 *   shutdown/enable; any other peer change (timers, capabilities, filters, AS, ...) is negotiated
 *   in or compiled into the session, so the peer is replaced (Cease 6/3, then a new session).
 * - Speaker-wide settings (AS, router ID, listen address, GR, ...) are in every session's OPEN or
 *   in the speaker's construction: they are reported in `restartRequired` and not applied; the
 *   sessions of unchanged peers stay up.
 */
import { canonicalPrefix } from '../rib/index.js';
import type { AnnounceOptions, PeerConfig, SpeakerConfig } from './types.js';

/** The desired state the diff works on (the `peers`/`announce` of BgpRunConfig, plus the speaker settings). */
export interface DesiredBgpConfig {
  /** Speaker-wide settings; absent: not compared. */
  speaker?: SpeakerConfig;
  peers: readonly PeerConfig[];
  announce: readonly { prefix: string; options: AnnounceOptions }[];
}

/** How a configured peer changes. */
export type PeerChangeAction =
  /** Only `description`: set in place, the session stays. */
  | 'update'
  /** `shutdown` became true (maybe with a new description): Cease 6/2, the peer stays configured. */
  | 'shutdown'
  /** `shutdown` became false (maybe with a new description): the session starts again. */
  | 'enable'
  /** Anything else: remove (Cease 6/3) and add with the new config. */
  | 'replace';

export interface PeerChange {
  /** The peer's key (see peerKey). */
  address: string;
  action: PeerChangeAction;
  /** The keys whose values differ, sorted. */
  keys: string[];
  from: PeerConfig;
  to: PeerConfig;
}

export interface SpeakerConfigDiff {
  /** New peers, in the order of the new config. */
  addPeers: PeerConfig[];
  /** Addresses (as written in the old config) of peers no longer configured. */
  removePeers: string[];
  changePeers: PeerChange[];
  /** Keys of peers whose config is the same: their sessions are not touched. */
  unchangedPeers: string[];
  /** Prefixes to originate that are new or have new options (canonical prefix). */
  announce: { prefix: string; options: AnnounceOptions }[];
  /** Originated prefixes no longer in the config (canonical prefix). */
  withdraw: string[];
  /** Speaker-wide keys that differ: only a restart of the speaker applies them. Sorted. */
  restartRequired: (keyof SpeakerConfig)[];
}

/** The key the speaker knows a peer by: IPv4-mapped IPv6 unmapped, IPv6 canonical (RFC 5952). */
export function peerKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const c = canonicalPrefix(`${address}/128`);
  return c === undefined ? address.toLowerCase() : c.slice(0, -4);
}

/** JSON with object keys sorted at every level: equal for equal contents whatever the key order. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x;
    const o = x as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, o[k]]),
    );
  });
}

function changedKeys(a: object, b: object): string[] {
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  return [...keys].filter((k) => stableJson(ra[k]) !== stableJson(rb[k])).sort();
}

function classify(keys: readonly string[], to: PeerConfig): PeerChangeAction {
  const other = keys.filter((k) => k !== 'description' && k !== 'shutdown');
  if (other.length > 0) return 'replace';
  if (!keys.includes('shutdown')) return 'update';
  return to.shutdown === true ? 'shutdown' : 'enable';
}

/**
 * Plans the change from `prev` to `next`. Peers are matched by peerKey; the configs in the plan
 * (and the addresses in removePeers) are as written in `prev` / `next`.
 */
export function diffSpeakerConfig(prev: DesiredBgpConfig, next: DesiredBgpConfig): SpeakerConfigDiff {
  const before = new Map(prev.peers.map((p) => [peerKey(p.address), p]));
  const after = new Map(next.peers.map((p) => [peerKey(p.address), p]));
  const diff: SpeakerConfigDiff = {
    addPeers: [],
    removePeers: [],
    changePeers: [],
    unchangedPeers: [],
    announce: [],
    withdraw: [],
    restartRequired: [],
  };
  for (const [k, from] of before) if (!after.has(k)) diff.removePeers.push(from.address);
  for (const [k, to] of after) {
    const from = before.get(k);
    if (from === undefined) {
      diff.addPeers.push(to);
      continue;
    }
    const keys = changedKeys({ ...from, address: k }, { ...to, address: k });
    if (keys.length === 0) diff.unchangedPeers.push(k);
    else diff.changePeers.push({ address: k, action: classify(keys, to), keys, from, to });
  }
  const canon = (p: string) => canonicalPrefix(p) ?? p;
  const annBefore = new Map(prev.announce.map((a) => [canon(a.prefix), stableJson(a.options)]));
  const annAfter = new Map(next.announce.map((a) => [canon(a.prefix), a.options]));
  for (const p of annBefore.keys()) if (!annAfter.has(p)) diff.withdraw.push(p);
  for (const [p, options] of annAfter)
    if (annBefore.get(p) !== stableJson(options)) diff.announce.push({ prefix: p, options });
  if (prev.speaker !== undefined && next.speaker !== undefined)
    diff.restartRequired = changedKeys(prev.speaker, next.speaker) as (keyof SpeakerConfig)[];
  return diff;
}

/** True when the diff changes nothing. */
export function isEmptyDiff(d: SpeakerConfigDiff): boolean {
  return (
    d.addPeers.length === 0 &&
    d.removePeers.length === 0 &&
    d.changePeers.length === 0 &&
    d.announce.length === 0 &&
    d.withdraw.length === 0 &&
    d.restartRequired.length === 0
  );
}
