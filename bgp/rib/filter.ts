/** Import/export filters by prefix and community: first matching rule wins. */
import { community, type LargeCommunity } from '../codec/index.js';
import { type ParsedPrefix, parsePrefix, prefixWithin } from './prefix.js';
import type { RouteAttrs } from './types.js';

export interface PrefixMatch {
  /** e.g. '10.244.0.0/16'. Without ge/le only this exact prefix matches. */
  prefix: string;
  /** Match longer prefixes within `prefix` of at least this length. */
  ge?: number;
  /** ... and at most this length. */
  le?: number;
}

export interface FilterRule {
  action: 'accept' | 'reject';
  /** Matches when the route's prefix matches any of these (absent = any prefix). */
  prefixes?: PrefixMatch[];
  /** Matches when the route carries any of these ('65000:100' or large '65000:1:2'); absent = any. */
  communities?: string[];
}

export interface RouteFilter {
  rules: FilterRule[];
  /** When no rule matches; default accept. */
  defaultAction?: 'accept' | 'reject';
}

export class FilterConfigError extends Error {
  override readonly name = 'FilterConfigError';
}

interface CompiledRule {
  action: 'accept' | 'reject';
  prefixes?: { net: ParsedPrefix; ge: number; le: number }[];
  communities?: number[];
  large?: LargeCommunity[];
}

/**
 * A compiled filter. `always` is set when the answer does not depend on the route (no rules), so
 * callers on the hot path can skip parsing the prefix.
 */
export type CompiledFilter = ((prefix: ParsedPrefix, attrs: RouteAttrs) => boolean) & { readonly always?: boolean };

/** Parses a filter once; throws FilterConfigError on an invalid prefix or community. */
export function compileFilter(f: RouteFilter | undefined): CompiledFilter {
  if (f === undefined || f.rules.length === 0) {
    const d = f?.defaultAction !== 'reject';
    return Object.assign(() => d, { always: d });
  }
  const rules: CompiledRule[] = f.rules.map((r) => {
    const c: CompiledRule = { action: r.action };
    if (r.prefixes) {
      c.prefixes = r.prefixes.map((m) => {
        const net = parsePrefix(m.prefix);
        if (!net) throw new FilterConfigError(`invalid prefix ${m.prefix}`);
        const max = net.family === 'ipv4-unicast' ? 32 : 128;
        const exact = m.ge === undefined && m.le === undefined;
        return { net, ge: exact ? net.len : (m.ge ?? net.len), le: exact ? net.len : (m.le ?? max) };
      });
    }
    if (r.communities) {
      for (const text of r.communities) {
        const p = text.split(':').map(Number);
        if (p.some((x) => !Number.isInteger(x) || x < 0)) throw new FilterConfigError(`invalid community ${text}`);
        if (p.length === 2 && (p[0] as number) <= 0xffff && (p[1] as number) <= 0xffff) {
          c.communities ??= [];
          c.communities.push(community(p[0] as number, p[1] as number));
        } else if (p.length === 3) {
          c.large ??= [];
          c.large.push({
            globalAdmin: p[0] as number,
            localData1: p[1] as number,
            localData2: p[2] as number,
          });
        } else throw new FilterConfigError(`invalid community ${text}`);
      }
    }
    return c;
  });
  const def = f.defaultAction !== 'reject';
  return (prefix, attrs) => {
    for (const r of rules) {
      if (
        r.prefixes &&
        !r.prefixes.some((m) => prefix.len >= m.ge && prefix.len <= m.le && prefixWithin(prefix, m.net))
      )
        continue;
      if (r.communities || r.large) {
        const hasStd = r.communities?.some((c) => attrs.communities?.includes(c)) ?? false;
        const hasLarge =
          r.large?.some((l) =>
            attrs.largeCommunities?.some(
              (x) => x.globalAdmin === l.globalAdmin && x.localData1 === l.localData1 && x.localData2 === l.localData2,
            ),
          ) ?? false;
        if (!hasStd && !hasLarge) continue;
      }
      return r.action === 'accept';
    }
    return def;
  };
}
