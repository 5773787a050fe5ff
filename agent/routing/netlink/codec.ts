/**
 * rtnetlink route messages, pure (no I/O): what `petrel-netlink` (main.ts) writes to a
 * NETLINK_ROUTE socket for the reconciler's route changes, and how the kernel's answers are read.
 * Facts from the kernel's UAPI (linux/netlink.h, linux/rtnetlink.h); nothing here is copied code.
 *
 * One request per route: nlmsghdr (16 bytes) + rtmsg (12) + attributes RTA_DST, RTA_GATEWAY,
 * RTA_OIF (each 4-byte aligned TLVs), the way `ip route add|replace|del ... proto 80` builds them:
 * - add: NLM_F_CREATE|NLM_F_EXCL, so a destination held by any route (ours or foreign) fails with
 *   EEXIST and is never overwritten; replace: NLM_F_CREATE|NLM_F_REPLACE (the reconciler replaces
 *   only destinations it knows are ours); delete: RTM_DELROUTE with protocol 80 (the kernel then
 *   deletes only a route of ours) and scope RT_SCOPE_NOWHERE (matches any scope), like `ip`.
 * - scope: link for a unicast route with no gateway (a device route), universe otherwise.
 * - onlink: RTNH_F_ONLINK in rtm_flags.
 * Batching: requests go out many to one sendmsg; only the last of a chunk asks for an ACK, since
 * the kernel answers every failed request with an NLMSG_ERROR anyway and handles a chunk's requests
 * in order, so the last ACK means every earlier error has been queued (the socket sets
 * NETLINK_CAP_ACK, so an error echoes only the request's header, and NETLINK_EXT_ACK, so it may
 * carry the kernel's message text, e.g. "Nexthop has invalid gateway").
 */
import { formatIpv4, formatIpv6, parseIpv4Into, parseIpv6Into } from '../../common/ip.js';
import { PETREL_ROUTE_PROTO } from '../types.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const NETLINK_ROUTE = 0;
export const SOL_NETLINK = 270;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;

export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;

const RT_TABLE_MAIN = 254;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const RTN_UNICAST = 1;
const RTN_BLACKHOLE = 6;
const RTNH_F_ONLINK = 4;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_TABLE = 15;
const NLMSGERR_ATTR_MSG = 1;

const NLMSG_HDRLEN = 16;
const RTMSG_LEN = 12;

/** One route change as the helper receives it (device already resolved to an index). */
export interface RouteRequest {
  op: 'add' | 'replace' | 'delete';
  family: 4 | 6;
  type: 'unicast' | 'blackhole';
  /** "ADDR/LEN". */
  dst: string;
  gateway?: string;
  /** Interface index (0 = none). */
  oif?: number;
  onlink?: boolean;
}

export class CodecError extends Error {
  override readonly name = 'CodecError';
}

const align4 = (n: number) => (n + 3) & ~3;

/** The largest request: header + rtmsg + dst (4+16) + gateway (4+16) + oif (4+4). */
export const MAX_ROUTE_REQUEST = NLMSG_HDRLEN + RTMSG_LEN + 20 + 20 + 8;

function putAddr(out: Uint8Array, off: number, family: 4 | 6, text: string, what: string): number {
  const ok = family === 4 ? parseIpv4Into(text, out, off) : parseIpv6Into(text, out, off);
  if (!ok) throw new CodecError(`bad ${what} ${JSON.stringify(text)} for IPv${family}`);
  return family === 4 ? 4 : 16;
}

/**
 * Writes the request for `r` with sequence number `seq` at `off` of `out` (which must have
 * MAX_ROUTE_REQUEST bytes free there) and returns its length. Throws CodecError on bad input,
 * having written nothing the caller will send (the length is only known on success).
 */
export function encodeRouteRequest(r: RouteRequest, seq: number, ack: boolean, out: Uint8Array, off: number): number {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const slash = r.dst.indexOf('/');
  const addr = slash < 0 ? r.dst : r.dst.slice(0, slash);
  const len = slash < 0 ? (r.family === 4 ? 32 : 128) : Number(r.dst.slice(slash + 1));
  const max = r.family === 4 ? 32 : 128;
  if (!Number.isInteger(len) || len < 0 || len > max || (slash >= 0 && !/^\d{1,3}$/.test(r.dst.slice(slash + 1))))
    throw new CodecError(`bad destination ${JSON.stringify(r.dst)}`);
  const del = r.op === 'delete';
  const withNexthop = !del && r.type === 'unicast';
  if (withNexthop && !r.gateway && !r.oif) throw new CodecError(`route ${r.dst}: no gateway and no device`);

  // rtmsg
  let p = off + NLMSG_HDRLEN;
  out[p] = r.family === 4 ? AF_INET : AF_INET6; // rtm_family
  out[p + 1] = len; // rtm_dst_len
  out[p + 2] = 0; // rtm_src_len
  out[p + 3] = 0; // rtm_tos
  out[p + 4] = RT_TABLE_MAIN;
  out[p + 5] = PETREL_ROUTE_PROTO;
  out[p + 6] = del ? RT_SCOPE_NOWHERE : withNexthop && !r.gateway ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  out[p + 7] = r.type === 'blackhole' ? RTN_BLACKHOLE : RTN_UNICAST;
  dv.setUint32(p + 8, withNexthop && r.onlink ? RTNH_F_ONLINK : 0, true);
  p += RTMSG_LEN;

  // RTA_DST (omitted for a default route, as ip does)
  if (len > 0 || addr !== (r.family === 4 ? '0.0.0.0' : '::')) {
    const n = putAddr(out, p + 4, r.family, addr, 'destination');
    dv.setUint16(p, 4 + n, true);
    dv.setUint16(p + 2, RTA_DST, true);
    p += align4(4 + n);
  }
  if (withNexthop && r.gateway) {
    const n = putAddr(out, p + 4, r.family, r.gateway, 'gateway');
    dv.setUint16(p, 4 + n, true);
    dv.setUint16(p + 2, RTA_GATEWAY, true);
    p += align4(4 + n);
  }
  if (withNexthop && r.oif) {
    dv.setUint16(p, 8, true);
    dv.setUint16(p + 2, RTA_OIF, true);
    dv.setUint32(p + 4, r.oif, true);
    p += 8;
  }

  const total = p - off;
  const flags =
    NLM_F_REQUEST |
    (ack ? NLM_F_ACK : 0) |
    (r.op === 'add' ? NLM_F_CREATE | NLM_F_EXCL : r.op === 'replace' ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  dv.setUint32(off, total, true);
  dv.setUint16(off + 4, del ? RTM_DELROUTE : RTM_NEWROUTE, true);
  dv.setUint16(off + 6, flags, true);
  dv.setUint32(off + 8, seq >>> 0, true);
  dv.setUint32(off + 12, 0, true); // nlmsg_pid: the kernel
  return total;
}

/** The kernel's answer to one request: errno 0 is an ACK. */
export interface NetlinkAnswer {
  seq: number;
  /** Positive errno (0 = success). */
  errno: number;
  /** NETLINK_EXT_ACK text, when the kernel gave one. */
  message?: string;
}

/** Calls `fn` for each whole netlink message in `buf[0..len)` (a truncated one ends the walk). */
function eachMessage(dv: DataView, len: number, fn: (at: number, mlen: number, type: number) => void): void {
  for (let o = 0; o + NLMSG_HDRLEN <= len; ) {
    const mlen = dv.getUint32(o, true);
    if (mlen < NLMSG_HDRLEN || o + mlen > len) return;
    fn(o, mlen, dv.getUint16(o + 4, true));
    o += align4(mlen);
  }
}

/** Calls `fn` for each attribute (TLV) in `[from, end)`: its offset, length and type (flags masked off). */
function eachAttr(dv: DataView, from: number, end: number, fn: (at: number, tl: number, tt: number) => void): void {
  for (let t = from; t + 4 <= end; ) {
    const tl = dv.getUint16(t, true);
    if (tl < 4 || t + tl > end) return;
    fn(t, tl, dv.getUint16(t + 2, true) & 0x3fff);
    t += align4(tl);
  }
}

/** Reads every NLMSG_ERROR in `buf[0..len)` (other message types are skipped). */
export function parseAnswers(buf: Uint8Array, len: number): NetlinkAnswer[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NetlinkAnswer[] = [];
  eachMessage(dv, len, (o, mlen, type) => {
    if (type !== NLMSG_ERROR || mlen < NLMSG_HDRLEN + 4 + NLMSG_HDRLEN) return;
    const err = dv.getInt32(o + NLMSG_HDRLEN, true);
    // The echoed request header: its seq is the request's.
    const echo = o + NLMSG_HDRLEN + 4;
    const a: NetlinkAnswer = { seq: dv.getUint32(echo + 8, true), errno: err === 0 ? 0 : -err };
    // With NETLINK_CAP_ACK only the header is echoed; TLVs (EXT_ACK) follow it.
    const echoedLen = dv.getUint16(o + 6, true) & 0x100 /* NLM_F_CAPPED */ ? NLMSG_HDRLEN : dv.getUint32(echo, true);
    eachAttr(dv, echo + align4(echoedLen), o + mlen, (t, tl, tt) => {
      if (tt !== NLMSGERR_ATTR_MSG) return;
      let end = t + tl;
      while (end > t + 4 && buf[end - 1] === 0) end--;
      a.message = new TextDecoder().decode(buf.subarray(t + 4, end));
    });
    out.push(a);
  });
  return out;
}

/** A route notification of ours (protocol 80, main table) from the kernel's route multicast groups. */
export interface RouteEvent {
  deleted: boolean;
  family: 4 | 6;
  type: 'unicast' | 'blackhole';
  /** "ADDR/LEN". */
  dst: string;
  gateway?: string;
  /** Interface index (0 = none). */
  oif: number;
  onlink: boolean;
}

/**
 * Reads the RTM_NEWROUTE / RTM_DELROUTE notifications in `buf[0..len)` that the reconciler cares
 * about: protocol 80, main table, unicast or blackhole. A notification's nlmsg_pid is the port of
 * the socket whose request caused it: those with `skipPort` (our own request socket's) are our own
 * changes' echoes and are skipped; a change by anyone else, or by the kernel (port 0: a device
 * went away), is returned.
 */
export function parseRouteEvents(buf: Uint8Array, len: number, skipPort: number): RouteEvent[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: RouteEvent[] = [];
  eachMessage(dv, len, (o, mlen, type) => {
    if (type !== RTM_NEWROUTE && type !== RTM_DELROUTE) return;
    if (mlen < NLMSG_HDRLEN + RTMSG_LEN || dv.getUint32(o + 12, true) === skipPort >>> 0) return;
    const r = o + NLMSG_HDRLEN;
    const fam = buf[r];
    const rtype = buf[r + 7];
    if (fam !== AF_INET && fam !== AF_INET6) return;
    if (buf[r + 5] !== PETREL_ROUTE_PROTO || (rtype !== RTN_UNICAST && rtype !== RTN_BLACKHOLE)) return;
    const family = fam === AF_INET ? 4 : 6;
    const alen = family === 4 ? 4 : 16;
    const fmt = (at: number) => (family === 4 ? formatIpv4(buf, at) : formatIpv6(buf, at));
    let table = buf[r + 4] as number;
    let dst = family === 4 ? '0.0.0.0' : '::';
    let gateway: string | undefined;
    let oif = 0;
    eachAttr(dv, r + RTMSG_LEN, o + mlen, (t, tl, tt) => {
      if (tt === RTA_DST && tl >= 4 + alen) dst = fmt(t + 4);
      else if (tt === RTA_GATEWAY && tl >= 4 + alen) gateway = fmt(t + 4);
      else if (tt === RTA_OIF && tl >= 8) oif = dv.getUint32(t + 4, true);
      else if (tt === RTA_TABLE && tl >= 8) table = dv.getUint32(t + 4, true);
    });
    if (table !== RT_TABLE_MAIN) return;
    const e: RouteEvent = {
      deleted: type === RTM_DELROUTE,
      family,
      type: rtype === RTN_BLACKHOLE ? 'blackhole' : 'unicast',
      dst: `${dst}/${buf[r + 1]}`,
      oif,
      onlink: (dv.getUint32(r + 8, true) & RTNH_F_ONLINK) !== 0,
    };
    if (gateway) e.gateway = gateway;
    out.push(e);
  });
  return out;
}

/** strerror's text for the errnos a route request meets: the words classifyError (kernel-iproute2.ts) reads. */
const ERRNO_TEXT: Readonly<Record<number, string>> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  3: 'No such process',
  11: 'Resource temporarily unavailable',
  12: 'Cannot allocate memory',
  13: 'Permission denied',
  16: 'Device or resource busy',
  17: 'File exists',
  19: 'No such device',
  22: 'Invalid argument',
  95: 'Operation not supported',
  97: 'Address family not supported by protocol',
  100: 'Network is down',
  101: 'Network is unreachable',
  105: 'No buffer space available',
};

/** "RTNETLINK answers: <strerror>[: <kernel message>]", as `ip` reports the same failure. */
export function errnoMessage(errno: number, message?: string): string {
  const text = ERRNO_TEXT[errno] ?? `errno ${errno}`;
  return message ? `RTNETLINK answers: ${text}: ${message}` : `RTNETLINK answers: ${text}`;
}

// ------------------------------------------------------------------ the helper's stdin/stdout lines

/**
 * One change as a line for the helper: `OP FAMILY TYPE DST GATEWAY|- DEV|- ONLINK(0|1)`, every
 * field a token without spaces (the caller has checked them, see kernel-iproute2.ts tok()).
 */
export function formatRequestLine(r: {
  op: RouteRequest['op'];
  family: 4 | 6;
  type: RouteRequest['type'];
  dst: string;
  gateway?: string;
  dev?: string;
  onlink?: boolean;
}): string {
  return `${r.op} ${r.family} ${r.type} ${r.dst} ${r.gateway || '-'} ${r.dev || '-'} ${r.onlink ? 1 : 0}`;
}

export interface RequestLine {
  op: RouteRequest['op'];
  family: 4 | 6;
  type: RouteRequest['type'];
  dst: string;
  gateway?: string;
  dev?: string;
  onlink: boolean;
}

export function parseRequestLine(line: string): RequestLine {
  const f = line.split(' ');
  const [op, fam, type, dst, gw, dev, onlink] = f;
  if (f.length !== 7 || (op !== 'add' && op !== 'replace' && op !== 'delete'))
    throw new CodecError(`bad request line ${JSON.stringify(line)}`);
  if (fam !== '4' && fam !== '6') throw new CodecError(`bad family in ${JSON.stringify(line)}`);
  if (type !== 'unicast' && type !== 'blackhole') throw new CodecError(`bad type in ${JSON.stringify(line)}`);
  if (onlink !== '0' && onlink !== '1') throw new CodecError(`bad onlink flag in ${JSON.stringify(line)}`);
  return {
    op,
    family: fam === '4' ? 4 : 6,
    type,
    dst: dst as string,
    ...(gw !== '-' ? { gateway: gw } : {}),
    ...(dev !== '-' ? { dev } : {}),
    onlink: onlink === '1',
  };
}
