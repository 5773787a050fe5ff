/**
 * Attribute identity for grouping and change detection. The key is the attribute set serialised
 * once per attribute object and remembered (a WeakMap, so it goes with the object): routes that
 * share an attribute object (every prefix of one received UPDATE, and their exported copies, see
 * exportRoute) share one key computation.
 */
import type { RouteAttrs } from './types.js';

const keys = new WeakMap<RouteAttrs, string>();

/** The identity of an attribute set: equal keys <=> equal attributes. */
export function attrsKey(a: RouteAttrs): string {
  let k = keys.get(a);
  if (k === undefined) {
    k = JSON.stringify(a, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
    keys.set(a, k);
  }
  return k;
}
