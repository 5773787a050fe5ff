/**
 * The Kernel interface the reconciler drives, and its typed error. The real adapter is
 * kernel-iproute2.ts; fake-kernel.ts is the in-memory one for unit tests.
 *
 * Ownership: listRoutes() returns only routes with Petrel's protocol (PETREL_ROUTE_PROTO) in the
 * main table; neighbours and FDB entries are listed only on Petrel's own devices. `add` must fail
 * with kind 'exists' when any route (ours or foreign) holds the destination, so a foreign route is
 * never overwritten; `replace` is used only for a destination the reconciler knows is ours;
 * `delete` removes only a route with our protocol.
 */
import { fdbKey, neighKey, routeKey } from './plan.js';
import type { FdbSpec, NeighSpec, RouteSpec } from './types.js';

export const KernelErrorKind = {
  NotFound: 'not-found',
  Exists: 'exists',
  IfaceDown: 'iface-down',
  Transient: 'transient',
  Other: 'other',
} as const;
export type KernelErrorKind = (typeof KernelErrorKind)[keyof typeof KernelErrorKind];

export type KernelOp = 'list' | 'add' | 'replace' | 'delete';

/** A kernel call that failed, classified once (in the adapter) so callers branch on `kind`. */
export class KernelError extends Error {
  override readonly name = 'KernelError';
  constructor(
    readonly op: KernelOp,
    readonly kind: KernelErrorKind,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isKernelError(e: unknown): e is KernelError {
  return e instanceof KernelError;
}

export type KernelObject =
  | { type: 'route'; route: RouteSpec }
  | { type: 'neigh'; neigh: NeighSpec }
  | { type: 'fdb'; fdb: FdbSpec };

export interface Change {
  op: 'add' | 'replace' | 'delete';
  obj: KernelObject;
}

export type ChangeResult = { ok: true } | { ok: false; error: KernelError };

/**
 * What the kernel reports on its own: a route of ours added/changed/deleted (by us or by hand),
 * a foreign route on a destination, or `lost` (the monitor restarted or fell behind: list again).
 */
export type KernelEvent =
  | { type: 'route'; deleted: boolean; ours: boolean; route: RouteSpec }
  | { type: 'lost'; reason: string };

export interface Kernel {
  /** Petrel's routes (our protocol, main table), IPv4 and IPv6. */
  listRoutes(): Promise<RouteSpec[]>;
  /** Permanent neighbours on Petrel's devices. */
  listNeighbours(): Promise<NeighSpec[]>;
  /** Permanent FDB entries (with a remote `dst`) on Petrel's devices. */
  listFdb(): Promise<FdbSpec[]>;
  /** Applies the changes in order; one result per change. Rejects only when nothing could be tried. */
  apply(changes: readonly Change[]): Promise<ChangeResult[]>;
  /** Subscribes to kernel events; returns the unsubscribe function. */
  watch(onEvent: (e: KernelEvent) => void): () => void;
  close(): Promise<void>;
}

/** The reconciler's key of a kernel object: type + identity (route: family|dst in the main table). */
/** objectKey of a route from its routeKey (family|dst). */
export function routeObjectKey(key: string): string {
  return `route|${key}`;
}

export function objectKey(o: KernelObject): string {
  switch (o.type) {
    case 'route':
      return routeObjectKey(routeKey(o.route));
    case 'neigh':
      return `neigh|${neighKey(o.neigh)}`;
    case 'fdb':
      return `fdb|${fdbKey(o.fdb)}`;
  }
}
