/**
 * Adj-RIB-In of one peer: every prefix received (also the ones the import policy rejected, so
 * counts and soft reconfiguration stay right), the accepted routes, and graceful-restart staleness.
 */
import type { FamilyName } from '../codec/index.js';
import { attrsKey } from './attrs-key.js';
import type { CompiledFilter } from './filter.js';
import { parsePrefix } from './prefix.js';
import type { PeerInfo, Route, RouteAttrs } from './types.js';

/** Why a received route was not accepted. */
export type RejectReason = 'as-loop' | 'originator-id' | 'cluster-loop' | 'filtered' | 'invalid-prefix';

export interface LocalIdentity {
  asn: number;
  routerId: string;
  /** Our cluster ID when acting as a route reflector (default: routerId, RFC 4456 §7). */
  clusterId: string;
}

/**
 * Import checks before policy: AS loop (RFC 4271 §9.1.2), ORIGINATOR_ID equal to our router ID
 * and our cluster ID in CLUSTER_LIST (RFC 4456 §8). Returns the attributes as the RIB keeps them
 * (attributes that only make sense inside the AS are dropped from eBGP routes) or the reason.
 */
export function importCheck(attrs: RouteAttrs, peer: PeerInfo, me: LocalIdentity): RouteAttrs | RejectReason {
  if (!peer.isIbgp) {
    for (const s of attrs.asPath) if (s.asns.includes(me.asn)) return 'as-loop';
    if (attrs.localPref !== undefined || attrs.originatorId !== undefined || attrs.clusterList !== undefined) {
      // BIRD: LOCAL_PREF/ORIGINATOR_ID/CLUSTER_LIST from an eBGP peer are discarded.
      const { localPref: _l, originatorId: _o, clusterList: _c, ...rest } = attrs;
      return rest;
    }
    return attrs;
  }
  if (attrs.originatorId === me.routerId) return 'originator-id';
  if (attrs.clusterList?.includes(me.clusterId)) return 'cluster-loop';
  return attrs;
}

export class AdjRibIn {
  /** prefix -> accepted route, or null when received but rejected. */
  private readonly rib = new Map<string, Route | null>();
  private acceptedCount = 0;
  /**
   * importCheck results by attribute object: the prefixes of one UPDATE share one attribute
   * object, so the check (and any copy it makes) runs once per UPDATE, not once per prefix.
   */
  private readonly checked = new WeakMap<RouteAttrs, RouteAttrs | RejectReason>();
  /** The last importCheck lookup (consecutive prefixes usually share the attribute object). */
  private lastAttrs: RouteAttrs | undefined;
  private lastChecked: RouteAttrs | RejectReason | undefined;
  /** Per-family counts of received and accepted prefixes. */
  readonly byFamily = new Map<FamilyName, { received: number; accepted: number }>();

  constructor(
    readonly peer: PeerInfo,
    private readonly me: LocalIdentity,
    private readonly importFilter: CompiledFilter,
  ) {}

  get received(): number {
    return this.rib.size;
  }
  get accepted(): number {
    return this.acceptedCount;
  }

  private count(f: FamilyName, dRecv: number, dAcc: number): void {
    let c = this.byFamily.get(f);
    if (!c) {
      c = { received: 0, accepted: 0 };
      this.byFamily.set(f, c);
    }
    c.received += dRecv;
    c.accepted += dAcc;
    this.acceptedCount += dAcc;
  }

  get(prefix: string): Route | undefined {
    return this.rib.get(prefix) ?? undefined;
  }

  /**
   * Records a received route. Returns the accepted route, or the reject reason. If an accepted
   * route was replaced by a rejected one, `replaced` tells the caller to remove it from the Loc-RIB.
   */
  update(
    prefix: string,
    family: FamilyName,
    attrs: RouteAttrs,
  ): { route?: Route; reject?: RejectReason; replaced: boolean } {
    const prev = this.rib.get(prefix);
    const wasAccepted = prev !== undefined && prev !== null;
    let checked = attrs === this.lastAttrs ? this.lastChecked : this.checked.get(attrs);
    if (checked === undefined) {
      checked = importCheck(attrs, this.peer, this.me);
      this.checked.set(attrs, checked);
    }
    this.lastAttrs = attrs;
    this.lastChecked = checked;
    let reject: RejectReason | undefined;
    if (typeof checked === 'string') reject = checked;
    else {
      const always = this.importFilter.always;
      const parsed = always === undefined ? parsePrefix(prefix) : undefined;
      if (always === undefined && !parsed) reject = 'invalid-prefix';
      else if (always === false || (parsed && !this.importFilter(parsed, checked))) reject = 'filtered';
      else {
        if (wasAccepted && (prev.attrs === checked || attrsKey(prev.attrs) === attrsKey(checked))) {
          // Same path again (route refresh, GR re-advertisement): keep the object, clear staleness.
          prev.stale = false;
          return { route: prev, replaced: false };
        }
        const route: Route = { prefix, family, attrs: checked, peer: this.peer, stale: false };
        this.rib.set(prefix, route);
        this.count(family, prev === undefined ? 1 : 0, wasAccepted ? 0 : 1);
        return { route, replaced: false };
      }
    }
    this.rib.set(prefix, null);
    this.count(family, prev === undefined ? 1 : 0, wasAccepted ? -1 : 0);
    return { reject, replaced: wasAccepted };
  }

  /** Removes a prefix; returns the accepted route it had (undefined if none or rejected). */
  withdraw(prefix: string, family: FamilyName): Route | undefined {
    const prev = this.rib.get(prefix);
    if (prev === undefined) return undefined;
    this.rib.delete(prefix);
    this.count(family, -1, prev === null ? 0 : -1);
    return prev ?? undefined;
  }

  /** RFC 4724 §4.2: mark the peer's routes stale (all families, or the given ones). */
  markStale(families?: readonly FamilyName[]): number {
    let n = 0;
    for (const r of this.rib.values()) {
      if (r && (!families || families.includes(r.family))) {
        r.stale = true;
        n++;
      }
    }
    return n;
  }

  /** Removes and returns the still-stale accepted routes of `family` (all families when undefined). */
  sweepStale(family?: FamilyName): Route[] {
    const out: Route[] = [];
    for (const [p, r] of this.rib) {
      if (r?.stale && (family === undefined || r.family === family)) {
        this.rib.delete(p);
        this.count(r.family, -1, -1);
        out.push(r);
      }
    }
    return out;
  }

  /** All accepted routes. */
  *routes(): IterableIterator<Route> {
    for (const r of this.rib.values()) if (r) yield r;
  }

  /** Forgets everything; returns the accepted routes. */
  clear(): Route[] {
    const out = [...this.routes()];
    this.rib.clear();
    this.acceptedCount = 0;
    this.byFamily.clear();
    return out;
  }
}
