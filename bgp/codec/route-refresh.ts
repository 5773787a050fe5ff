/** ROUTE-REFRESH (RFC 2918 §3) with the enhanced route refresh subtypes (RFC 7313 §3.2). */
import { RouteRefreshLayout } from './layouts.js';
import type { Writer } from './writer.js';

/** 0 normal request, 1 Beginning of Route Refresh, 2 End of Route Refresh; 3..254 unassigned, 255 reserved. */
export const RouteRefreshSubtype = { Request: 0, BoRR: 1, EoRR: 2 } as const;
export type RouteRefreshSubtype = (typeof RouteRefreshSubtype)[keyof typeof RouteRefreshSubtype];

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  safi: number;
  /** RFC 7313 §5: a receiver ignores messages with an unknown subtype. */
  subtype: number;
}

export function decodeRouteRefresh(b: Buffer, start: number): RouteRefreshMessage {
  const { afi, subtype, safi } = RouteRefreshLayout.decode(b, start);
  return { type: 'route-refresh', afi, safi, subtype };
}

export function encodeRouteRefresh(msg: RouteRefreshMessage, w: Writer): void {
  w.layout(RouteRefreshLayout, { afi: msg.afi, subtype: msg.subtype, safi: msg.safi });
}
