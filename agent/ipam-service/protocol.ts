/**
 * The agent's IPAM socket protocol, shared by the server (agent/ipam-service/server.ts) and the
 * CNI plugins' client (cni/agent-client.ts). Pure types and codecs, no runtime imports: the plugin bundle
 * imports this file directly so that bin/petrel never pulls the agent's etcd client.
 *
 * Transport: a Unix stream socket (default /var/run/petrel/agent.sock, mode 0600, root only).
 * Framing: one JSON object per line (UTF-8, "\n"-terminated), at most MAX_LINE_BYTES per line.
 * A client writes a request line and reads one response line per request, in order; it may send
 * several requests on one connection. The plugin opens one connection per invocation.
 *
 *   request  {"v":1,"id":7,"op":"assign","handle":"k8s-pod-network.<cid>","num4":1,"num6":0,
 *             "pools":["default"],"ips":["10.244.0.9"],"attrs":{"namespace":"ns","pod":"p"}}
 *   response {"v":1,"id":7,"ok":true,"assignments":[{"ip":"10.244.0.9","family":4,
 *             "block":"10.244.0.0/26","pool":"default","ipipMode":"Never","vxlanMode":"Never"}]}
 *   failure  {"v":1,"id":7,"ok":false,"error":{"kind":"exhausted","message":"..."}}
 *
 * Operations:
 *   assign  — addresses for a handle. Idempotent: if the handle already holds addresses they are
 *             returned unchanged (a repeated ADD gets the same address). `ips` requests specific
 *             addresses (checked against the pools, and against `pools` when given); otherwise
 *             num4/num6 are auto-assigned. The agent adds `node` to `attrs`. `gateways: true`
 *             (the standalone petrel-ipam, for plugins such as ptp that need an on-subnet
 *             gateway) first gives the node one address per usable pool under the handle
 *             `petrel-gateway.<node>` and returns `poolCidr` and `gateway` with each address.
 *   release — frees every address of `handle`; releasing an unknown handle succeeds (released: []).
 *   get     — the addresses `handle` holds now (CHECK).
 *   status  — ok when the datastore answers and at least one enabled pool exists (STATUS).
 *   gc      — releases every handle that starts with `prefix` and is not in `keep` (GC).
 *
 * Error kinds are the IPAM's (ipam-etcd/errors.ts) plus 'bad-request' and 'internal'; the plugin
 * maps 'unavailable' and 'retries-exhausted' to CNI code 11, 'invalid'/'not-found'/'in-use' to 7,
 * 'exhausted' to 100.
 */

import type { IpamErrorKind } from '../../ipam-etcd/errors.js';

export const PROTOCOL_VERSION = 1;
export const MAX_LINE_BYTES = 1 << 20;

export type EncapModeWire = 'Always' | 'CrossSubnet' | 'Never';

export interface WireAssignment {
  ip: string;
  family: 4 | 6;
  block: string;
  pool: string;
  ipipMode: EncapModeWire;
  vxlanMode: EncapModeWire;
  /** With `gateways: true`: the pool's CIDR and its reserved gateway address (see assign). */
  poolCidr?: string;
  gateway?: string;
  /**
   * The veth MTU the agent's data plane planned for pods (uplink minus the encapsulation in use,
   * agent/routing/mtu.ts): the plugin uses it unless its config sets `mtu`, so veths and tunnels
   * never disagree. Absent before the agent has planned its routes.
   */
  podMtu?: number;
}

export type AgentRequest =
  | {
      v: 1;
      id: number;
      op: 'assign';
      handle: string;
      num4: number;
      num6: number;
      pools?: string[];
      ips?: string[];
      attrs?: Record<string, string>;
      gateways?: boolean;
    }
  | { v: 1; id: number; op: 'release'; handle: string }
  | { v: 1; id: number; op: 'get'; handle: string }
  | { v: 1; id: number; op: 'status' }
  | { v: 1; id: number; op: 'gc'; prefix: string; keep: string[] };

export type AgentOp = AgentRequest['op'];

/** The IPAM's error kinds, plus the service's own. */
export type WireErrorKind = IpamErrorKind | 'bad-request' | 'internal';

export interface WireError {
  kind: WireErrorKind;
  message: string;
}

export type AgentResponse =
  | { v: 1; id: number; ok: true; assignments?: WireAssignment[]; released?: string[]; pools?: number }
  | { v: 1; id: number; ok: false; error: WireError };

/** Encodes one message as a line. */
export function encodeLine(msg: AgentRequest | AgentResponse): string {
  return `${JSON.stringify(msg)}\n`;
}

const OPS: readonly AgentOp[] = ['assign', 'release', 'get', 'status', 'gc'];

function isStrList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Validates a request line; returns a WireError for anything malformed (server side). */
export function decodeRequest(line: string): AgentRequest | { bad: WireError; id: number } {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return { bad: { kind: 'bad-request', message: 'request is not JSON' }, id: 0 };
  }
  if (typeof v !== 'object' || v === null) return { bad: { kind: 'bad-request', message: 'not an object' }, id: 0 };
  const r = v as Record<string, unknown>;
  const id = typeof r.id === 'number' ? r.id : 0;
  const fail = (message: string) => ({ bad: { kind: 'bad-request' as const, message }, id });
  if (r.v !== PROTOCOL_VERSION) return fail(`unsupported protocol version ${String(r.v)}`);
  if (typeof r.op !== 'string' || !(OPS as readonly string[]).includes(r.op)) return fail(`unknown op ${String(r.op)}`);
  const op = r.op as AgentOp;
  if (op === 'status') return { v: 1, id, op };
  if (op === 'gc') {
    if (typeof r.prefix !== 'string' || r.prefix === '') return fail('gc needs prefix');
    if (!isStrList(r.keep)) return fail('gc needs keep: string[]');
    return { v: 1, id, op, prefix: r.prefix, keep: r.keep };
  }
  if (typeof r.handle !== 'string' || r.handle === '') return fail(`${op} needs handle`);
  if (op === 'release' || op === 'get') return { v: 1, id, op, handle: r.handle };
  const num4 = r.num4 ?? 0;
  const num6 = r.num6 ?? 0;
  if (typeof num4 !== 'number' || typeof num6 !== 'number' || num4 < 0 || num6 < 0 || num4 > 16 || num6 > 16) {
    return fail('assign needs num4/num6 in 0..16');
  }
  const out: AgentRequest = { v: 1, id, op, handle: r.handle, num4, num6 };
  if (r.pools !== undefined) {
    if (!isStrList(r.pools)) return fail('pools must be string[]');
    out.pools = r.pools;
  }
  if (r.ips !== undefined) {
    if (!isStrList(r.ips)) return fail('ips must be string[]');
    out.ips = r.ips;
  }
  if (r.attrs !== undefined) {
    if (typeof r.attrs !== 'object' || r.attrs === null) return fail('attrs must be an object');
    const attrs: Record<string, string> = {};
    for (const [k, x] of Object.entries(r.attrs)) if (typeof x === 'string') attrs[k] = x;
    out.attrs = attrs;
  }
  if (r.gateways === true) out.gateways = true;
  if (num4 + num6 === 0 && !out.ips?.length) return fail('assign asks for no address');
  return out;
}
