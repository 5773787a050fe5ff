/**
 * petrel-netlink: the agent's route writer, a Bun single executable (scripts/package-sea.mjs)
 * that holds one NETLINK_ROUTE socket (Bun's FFI to libc: socket, bind, setsockopt, send, recv,
 * if_nametoindex) and writes the reconciler's route changes as rtnetlink requests, many per
 * sendmsg (codec.ts). It replaces `ip -batch` for routes, which costs ~35 µs of `ip`'s own parsing
 * per route; the kernel's work is the same. The agent (kernel-netlink.ts) starts it, in the node's
 * namespace, and talks to it over stdin/stdout:
 *
 *   in:  `B <id> <n>` then n lines `OP FAMILY TYPE DST GATEWAY|- DEV|- ONLINK`  (codec.ts)
 *        `W`: watch the kernel's routes from now on (see below)
 *   out: `E <id> <index> <message>` per failed line, then `D <id>`; `F <message>` when the socket
 *        cannot be opened (then it exits 1).
 *        With W: `M add|delete FAMILY TYPE DST GATEWAY|- DEV|- ONLINK` for each change to a route of
 *        ours (protocol 80, main table) that someone else made (another process, or the kernel
 *        when a device went away), and `L <reason>` when notifications were lost (the agent
 *        resyncs). Our own changes' notifications are dropped here, by the port of the socket that
 *        caused them (nlmsg_pid), so a 100k-route burst costs the agent nothing to watch; the
 *        watching socket's receive buffer is forced to 64 MiB (root: not capped by rmem_max) and is
 *        drained after every chunk of requests and polled every 20 ms while changes come (backing off to
 *        250 ms when quiet: an idle node's helper wakes 4 times a second).
 *
 * A device name is resolved to its index once per batch (a tunnel device recreated between batches
 * gets its new index). No answer within the receive timeout (5 s) fails the rest of the chunk as
 * "Resource temporarily unavailable" (transient: the reconciler retries) and reopens the socket.
 */
import { dlopen, FFIType, type Pointer, ptr, read } from 'bun:ffi';
import {
  CodecError,
  encodeRouteRequest,
  errnoMessage,
  formatRequestLine,
  MAX_ROUTE_REQUEST,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  parseAnswers,
  parseRequestLine,
  parseRouteEvents,
  type RouteRequest,
  SOL_NETLINK,
} from './codec.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const SOCK_NONBLOCK = 0x800;
const MSG_DONTWAIT = 0x40;
/** Legacy multicast group bits (bind's nl_groups): RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE. */
const ROUTE_GROUPS = 0x40 | 0x400;
const WATCH_RCVBUF = 64 << 20;
/** Polling the watching socket: every 20 ms while changes come, backing off to 250 ms when quiet. */
const WATCH_POLL_MIN_MS = 20;
const WATCH_POLL_MAX_MS = 250;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVBUFFORCE = 33;
const SO_SNDBUF = 7;
const SO_SNDBUFFORCE = 32;
const SO_RCVTIMEO = 20;
const EINTR = 4;
const EAGAIN = 11;
const ENOBUFS = 105;
/** Requests per sendmsg: ~64 KiB, well inside the send buffer. */
const CHUNK = 1024;

const { symbols: c } = dlopen('libc.so.6', {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  if_nametoindex: { args: [FFIType.ptr], returns: FFIType.u32 },
  if_indextoname: { args: [FFIType.u32, FFIType.ptr], returns: FFIType.ptr },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const errno = (): number => read.i32(c.__errno_location() as Pointer, 0);

function setInt(fd: number, level: number, name: number, value: number): boolean {
  const v = new Int32Array([value]);
  return c.setsockopt(fd, level, name, ptr(v), 4) === 0;
}

function openSocket(): number {
  const fd = Number(c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (fd < 0) throw new Error(`netlink socket: errno ${errno()}`);
  const sa = new Uint8Array(12);
  new DataView(sa.buffer).setUint16(0, AF_NETLINK, true);
  if (c.bind(fd, ptr(sa), 12) !== 0) throw new Error(`netlink bind: errno ${errno()}`);
  // Room for a whole chunk's answers even if every request fails.
  if (!setInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)) setInt(fd, SOL_SOCKET, SO_RCVBUF, 8 << 20);
  if (!setInt(fd, SOL_SOCKET, SO_SNDBUFFORCE, 4 << 20)) setInt(fd, SOL_SOCKET, SO_SNDBUF, 4 << 20);
  setInt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
  setInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
  const tv = new BigInt64Array([5n, 0n]); // struct timeval { 5 s, 0 µs }
  c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ptr(tv), 16);
  return fd;
}

let fd = (() => {
  try {
    return openSocket();
  } catch (e) {
    process.stdout.write(`F ${(e as Error).message}\n`);
    process.exit(1);
  }
})();
/** The request socket's netlink port: the nlmsg_pid of the notifications our own changes cause. */
function portOf(sock: number): number {
  const sa = new Uint8Array(12);
  const len = new Uint32Array([12]);
  if (c.getsockname(sock, ptr(sa), ptr(len)) !== 0) return 0;
  return new DataView(sa.buffer).getUint32(4, true);
}
let port = portOf(fd);
let seq = 1;
const sendBuf = new Uint8Array(CHUNK * MAX_ROUTE_REQUEST);
const recvBuf = new Uint8Array(1 << 20);
const out: string[] = [];

function ifindex(name: string, cache: Map<string, number>): number {
  let i = cache.get(name);
  if (i === undefined) {
    i = Number(c.if_nametoindex(ptr(Buffer.from(`${name}\0`))));
    cache.set(name, i);
  }
  return i;
}

/** Sends one chunk (encoded requests with their batch indexes) and collects its answers. */
function sendChunk(id: string, len: number, seqs: Map<number, number>, lastSeq: number): void {
  let off = 0;
  while (off < len) {
    const w = Number(c.send(fd, ptr(sendBuf.subarray(off)), len - off, 0));
    if (w < 0) {
      const e = errno();
      if (e === EINTR) continue;
      failChunk(id, seqs, errnoMessage(e));
      return;
    }
    off += w;
  }
  for (;;) {
    const r = Number(c.recv(fd, ptr(recvBuf), recvBuf.length, 0));
    if (r < 0) {
      const e = errno();
      if (e === EINTR) continue;
      // Answers lost (ENOBUFS) or none in time: what happened to the rest is unknown.
      failChunk(id, seqs, errnoMessage(e === ENOBUFS ? ENOBUFS : EAGAIN));
      return;
    }
    for (const a of parseAnswers(recvBuf, r)) {
      const idx = seqs.get(a.seq);
      if (idx === undefined) continue;
      seqs.delete(a.seq);
      if (a.errno !== 0) out.push(`E ${id} ${idx} ${errnoMessage(a.errno, a.message)}`);
      if (a.seq === lastSeq) return;
    }
  }
}

/** Every request of the chunk without an answer yet fails with `msg`; the socket is reopened. */
function failChunk(id: string, seqs: Map<number, number>, msg: string): void {
  for (const idx of seqs.values()) out.push(`E ${id} ${idx} ${msg}`);
  seqs.clear();
  c.close(fd);
  fd = openSocket();
  port = portOf(fd);
}

// ------------------------------------------------------------------ watching (W)
let mon = -1;
const monBuf = new Uint8Array(1 << 20);
const nameBuf = new Uint8Array(16);

function ifname(index: number): string | undefined {
  if (c.if_indextoname(index, ptr(nameBuf)) === null) return undefined;
  const end = nameBuf.indexOf(0);
  return new TextDecoder().decode(nameBuf.subarray(0, end < 0 ? 16 : end));
}

function startWatch(): void {
  if (mon >= 0) return;
  const s = Number(c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  const sa = new Uint8Array(12);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_NETLINK, true);
  dv.setUint32(8, ROUTE_GROUPS, true);
  if (s < 0 || c.bind(s, ptr(sa), 12) !== 0) {
    process.stdout.write(`L cannot watch routes: errno ${errno()}\n`);
    if (s >= 0) c.close(s);
    return;
  }
  if (!setInt(s, SOL_SOCKET, SO_RCVBUFFORCE, WATCH_RCVBUF)) setInt(s, SOL_SOCKET, SO_RCVBUF, WATCH_RCVBUF);
  mon = s;
  let every = WATCH_POLL_MIN_MS;
  const tick = () => {
    every = drainWatch() ? WATCH_POLL_MIN_MS : Math.min(every * 2, WATCH_POLL_MAX_MS);
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}

/** Reads every queued notification; writes the changes that are not our own. True if any was queued. */
function drainWatch(): boolean {
  if (mon < 0) return false;
  let any = false;
  const lines: string[] = [];
  let lost = false;
  for (;;) {
    const r = Number(c.recv(mon, ptr(monBuf), monBuf.length, MSG_DONTWAIT));
    if (r < 0) {
      const e = errno();
      if (e === EINTR) continue;
      if (e === ENOBUFS) {
        lost = true;
        continue;
      }
      break; // EAGAIN: nothing more queued
    }
    if (r === 0) break;
    any = true;
    for (const ev of parseRouteEvents(monBuf, r, port)) {
      const dev = ev.oif ? ifname(ev.oif) : undefined;
      lines.push(
        `M ${formatRequestLine({ op: ev.deleted ? 'delete' : 'add', family: ev.family, type: ev.type, dst: ev.dst, ...(ev.gateway ? { gateway: ev.gateway } : {}), ...(dev ? { dev } : {}), onlink: ev.onlink })}`,
      );
    }
  }
  if (lost) lines.push('L route notifications lost (ENOBUFS)');
  if (lines.length) process.stdout.write(`${lines.join('\n')}\n`);
  return any || lost;
}

function runBatch(id: string, lines: string[]): void {
  const devs = new Map<string, number>();
  let len = 0;
  let seqs = new Map<number, number>();
  let lastSeq = 0;
  let inChunk = 0;
  const flush = () => {
    if (inChunk === 0) return;
    // Only the chunk's last request asks for an ACK (see codec.ts): re-encode its flags.
    const dv = new DataView(sendBuf.buffer);
    dv.setUint16(lastOff + 6, dv.getUint16(lastOff + 6, true) | 0x4, true);
    sendChunk(id, len, seqs, lastSeq);
    drainWatch();
    len = 0;
    inChunk = 0;
    seqs = new Map();
  };
  let lastOff = 0;
  lines.forEach((line, idx) => {
    let req: RouteRequest;
    try {
      const l = parseRequestLine(line);
      const oif = l.dev ? ifindex(l.dev, devs) : 0;
      if (l.dev && oif === 0 && l.op !== 'delete') {
        out.push(`E ${id} ${idx} Cannot find device "${l.dev}"`);
        return;
      }
      req = { op: l.op, family: l.family, type: l.type, dst: l.dst, oif, onlink: l.onlink };
      if (l.gateway) req.gateway = l.gateway;
      const s = seq;
      seq = (seq + 1) >>> 0 || 1;
      const n = encodeRouteRequest(req, s, false, sendBuf, len);
      seqs.set(s, idx);
      lastOff = len;
      lastSeq = s;
      len += n;
      inChunk++;
    } catch (e) {
      out.push(`E ${id} ${idx} ${e instanceof CodecError ? e.message : String(e)}`);
      return;
    }
    if (inChunk >= CHUNK) flush();
  });
  flush();
  out.push(`D ${id}`);
  process.stdout.write(`${out.join('\n')}\n`);
  out.length = 0;
}

// ------------------------------------------------------------------ stdin framing
let buf = '';
let pending: { id: string; n: number; lines: string[] } | null = null;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  buf += d;
  let i = buf.indexOf('\n');
  let start = 0;
  while (i >= 0) {
    const line = buf.slice(start, i);
    start = i + 1;
    if (pending) {
      pending.lines.push(line);
    } else if (line === 'W') {
      startWatch();
    } else {
      const m = /^B (\S+) (\d+)$/.exec(line);
      if (!m) {
        process.stdout.write(`F bad frame ${JSON.stringify(line.slice(0, 80))}\n`);
        process.exit(1);
      }
      pending = { id: m[1] as string, n: Number(m[2]), lines: [] };
    }
    if (pending && pending.lines.length === pending.n) {
      const p = pending;
      pending = null;
      runBatch(p.id, p.lines);
    }
    i = buf.indexOf('\n', start);
  }
  buf = buf.slice(start);
});
process.stdin.on('end', () => {
  c.close(fd);
  process.exit(0);
});
