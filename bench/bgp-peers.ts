/**
 * The two ends of the BGP benchmark (bench/bgp.ts), each run as its own Node process inside its
 * own network namespace, built on our codec (`bgp/codec/index.ts`):
 *
 * - tester: opens N TCP sessions (one per source address, each its own eBGP/iBGP peer) and, as
 *   soon as each is Established, blasts that peer's pre-encoded UPDATEs (`packUpdates` +
 *   `encodeMessage`, encoded before connecting so encoding is not timed). Commands on stdin
 *   (`withdraw P J`, `announce P J`) send single-prefix UPDATEs for the reflector test.
 * - monitor: listens, accepts any number of sessions and counts the distinct prefixes it holds
 *   (a bitmap over the benchmark's /32 range); it prints `complete` when it has all of them.
 *   OPEN/KEEPALIVE/NOTIFICATION go through Framer + decodeMessage; UPDATE NLRI and withdrawn
 *   prefixes are walked directly (RFC 4271 §4.3 layout) so the monitor stays cheap at 1M prefixes.
 *   Used as the sink too (the tester sending straight to it, no DUT): the generator's ceiling.
 *
 * Both print one JSON line per event on stdout with `t` = CLOCK_MONOTONIC in ms (process.hrtime),
 * one clock for every process on the host. (performance.timeOrigin + now() is not: each
 * process fixes its own origin from the wall clock at start, which put a random offset of up to
 * a millisecond between tester and monitor into the sub-millisecond reflector figures.)
 */
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { createInterface } from 'node:readline';
import {
  type CodecContext,
  DEFAULT_CONTEXT,
  decodeMessage,
  encodeMessage,
  Framer,
  KEEPALIVE,
  maxMessageLen,
  negotiate,
  type OpenMessage,
  type Prefix,
  packUpdates,
} from '../bgp/codec/index.js';
import { buildOpen } from '../bgp/fsm/index.js';

/** Prefixes are /32s from 20.0.0.0 upwards: peer p's j-th prefix is index p*M + j. */
export const PREFIX_BASE = 0x14000000;
const HOLD_TIME_SEC = 180;

export const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...o, t: now() })}\n`);

export function prefixOf(index: number): Prefix {
  const a = (PREFIX_BASE + index) >>> 0;
  return { prefix: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`, len: 32 };
}

export interface TesterJob {
  dut: string;
  port: number;
  /** One entry per peer: source address, AS, router ID. */
  peers: { address: string; asn: number }[];
  /** The AS the DUT speaks. */
  dutAs: number;
  perPeer: number;
  /** Index of peer 0's first prefix (prefix index = offset + p*perPeer + j). */
  offset?: number;
}

export interface MonitorJob {
  address: string;
  port: number;
  asn: number;
  routerId: string;
  /** Prefix count that completes the run. */
  expected: number;
  /** Print every withdrawn/announced prefix index (small tables only: the reflector test). */
  watch?: boolean;
}

/** A minimal BGP session over a socket: OPEN, KEEPALIVE exchange, keepalives, frames to `onFrame`. */
function bgpSession(
  sock: Socket,
  open: OpenMessage,
  onUp: (ctx: CodecContext) => void,
  onUpdate: (frame: Uint8Array) => void,
): void {
  const framer = new Framer();
  let ctx = DEFAULT_CONTEXT;
  let up = false;
  let ka: NodeJS.Timeout | undefined;
  sock.setNoDelay(true);
  sock.write(encodeMessage(open, ctx));
  sock.on('data', (chunk) => {
    const { frames, error } = framer.push(chunk);
    for (const f of frames) {
      if (f[18] === 2 && up) {
        onUpdate(f);
        continue;
      }
      const r = decodeMessage(f, ctx);
      if (!r.ok) {
        emit({ ev: 'error', error: r.error.message });
        sock.destroy();
        return;
      }
      const m = r.msg;
      if (m.type === 'open') {
        ctx = negotiate(open, m);
        framer.maxMessageLen = maxMessageLen(ctx);
        sock.write(encodeMessage(KEEPALIVE, ctx));
      } else if (m.type === 'keepalive' && !up) {
        up = true;
        ka = setInterval(() => sock.write(encodeMessage(KEEPALIVE, ctx)), (HOLD_TIME_SEC / 3) * 1000);
        onUp(ctx);
      } else if (m.type === 'notification') {
        emit({ ev: 'notification', code: m.code, subcode: m.subcode, remote: sock.remoteAddress });
      }
    }
    if (error) {
      emit({ ev: 'error', error: error.message });
      sock.destroy();
    }
  });
  sock.on('error', (err) => emit({ ev: 'error', error: err.message, remote: sock.remoteAddress }));
  sock.on('close', () => {
    if (ka) clearInterval(ka);
    emit({ ev: 'closed', remote: sock.remoteAddress });
  });
}

export function runTester(job: TesterJob): void {
  const offset = job.offset ?? 0;
  // Pre-encode every peer's table (4096-byte UPDATEs: the tester never offers extended messages).
  const t0 = now();
  const tables = job.peers.map((p, i) => {
    const nlri: Prefix[] = [];
    for (let j = 0; j < job.perPeer; j++) nlri.push(prefixOf(offset + i * job.perPeer + j));
    const isIbgp = p.asn === job.dutAs;
    const frames = packUpdates(
      {
        type: 'update',
        withdrawn: [],
        attrs: {
          origin: 'igp',
          asPath: isIbgp ? [] : [{ type: 'sequence', asns: [p.asn] }],
          nextHop: p.address,
          ...(isIbgp ? { localPref: 100 } : {}),
        },
        nlri,
      },
      { ...DEFAULT_CONTEXT, as4: true },
    );
    return { frames, bytes: Buffer.concat(frames) };
  });
  emit({
    ev: 'encoded',
    ms: now() - t0,
    updates: tables.reduce((n, x) => n + x.frames.length, 0),
    bytes: tables.reduce((n, x) => n + x.bytes.length, 0),
  });
  const socks: Socket[] = [];
  const ctxs: (CodecContext | undefined)[] = [];
  let firstUp = false;
  let drained = 0;
  job.peers.forEach((p, i) => {
    const open = buildOpen({
      asn: p.asn,
      bgpId: p.address,
      holdTimeSec: HOLD_TIME_SEC,
      families: ['ipv4-unicast'],
      extendedMessage: false,
    });
    const connectOnce = () => {
      const sock = tcpConnect({ host: job.dut, port: job.port, localAddress: p.address });
      socks[i] = sock;
      let established = false;
      sock.on('connect', () =>
        bgpSession(
          sock,
          open,
          (ctx) => {
            established = true;
            ctxs[i] = ctx;
            if (!firstUp) {
              firstUp = true;
              emit({ ev: 'firstUp' });
            }
            const table = tables[i] as { bytes: Buffer };
            const flushed = sock.write(table.bytes);
            const done = () => {
              drained++;
              emit({ ev: 'peerSent', peer: i });
              if (drained === job.peers.length) emit({ ev: 'allSent' });
            };
            if (flushed) done();
            else sock.once('drain', done);
          },
          () => {},
        ),
      );
      // The DUT may not listen yet: retry until the session comes up.
      sock.on('close', () => {
        if (!established) setTimeout(connectOnce, 200);
      });
      sock.on('error', () => {});
    };
    connectOnce();
  });
  const send = (peer: number, index: number, withdraw: boolean) => {
    const p = job.peers[peer];
    const sock = socks[peer];
    const ctx = ctxs[peer];
    if (!p || !sock || !ctx) return;
    const pfx = prefixOf(offset + peer * job.perPeer + index);
    const isIbgp = p.asn === job.dutAs;
    const msg = withdraw
      ? { type: 'update' as const, withdrawn: [pfx], attrs: {}, nlri: [] }
      : {
          type: 'update' as const,
          withdrawn: [],
          attrs: {
            origin: 'igp' as const,
            asPath: isIbgp ? [] : [{ type: 'sequence' as const, asns: [p.asn] }],
            nextHop: p.address,
            ...(isIbgp ? { localPref: 100 } : {}),
          },
          nlri: [pfx],
        };
    const t = now();
    sock.write(encodeMessage(msg, ctx));
    process.stdout.write(`${JSON.stringify({ ev: withdraw ? 'withdrawSent' : 'announceSent', peer, index, t })}\n`);
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, a, b] = line.trim().split(/\s+/);
    if (cmd === 'withdraw' || cmd === 'announce') send(Number(a), Number(b), cmd === 'withdraw');
    if (cmd === 'quit') process.exit(0);
  });
  process.stdin.on('end', () => process.exit(0));
}

export function runMonitor(job: MonitorJob): void {
  const have = new Uint8Array(Math.max(job.expected, 1) + 1024);
  let count = 0;
  let complete = false;
  let updates = 0;
  const open = buildOpen({
    asn: job.asn,
    bgpId: job.routerId,
    holdTimeSec: HOLD_TIME_SEC,
    families: ['ipv4-unicast'],
    extendedMessage: false,
  });
  // Only /32s in the benchmark range are counted; anything else is ignored.
  const walk = (f: Uint8Array, from: number, to: number, add: boolean) => {
    let o = from;
    while (o < to) {
      const len = f[o] as number;
      const n = (len + 7) >> 3;
      if (len === 32) {
        const a =
          (((f[o + 1] as number) << 24) |
            ((f[o + 2] as number) << 16) |
            ((f[o + 3] as number) << 8) |
            (f[o + 4] as number)) >>>
          0;
        const i = a - PREFIX_BASE;
        if (i >= 0 && i < have.length) {
          if (add && have[i] === 0) {
            have[i] = 1;
            count++;
            if (job.watch) emit({ ev: 'announced', index: i });
          } else if (!add && have[i] === 1) {
            have[i] = 0;
            count--;
            if (job.watch) emit({ ev: 'withdrawn', index: i });
          }
        }
      }
      o += 1 + n;
    }
  };
  const onUpdate = (f: Uint8Array) => {
    updates++;
    // RFC 4271 §4.3: withdrawn length, withdrawn routes, attribute length, attributes, NLRI.
    const wl = ((f[19] as number) << 8) | (f[20] as number);
    walk(f, 21, 21 + wl, false);
    const al = ((f[21 + wl] as number) << 8) | (f[22 + wl] as number);
    walk(f, 23 + wl + al, f.length, true);
    if (!complete && count >= job.expected) {
      complete = true;
      emit({ ev: 'complete', count, updates });
    }
  };
  const srv = createServer((sock) => {
    bgpSession(sock, open, () => emit({ ev: 'up', remote: sock.remoteAddress }), onUpdate);
  });
  srv.listen(job.port, job.address, () => emit({ ev: 'listening' }));
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'count') emit({ ev: 'count', count, updates });
    if (line.trim() === 'quit') process.exit(0);
  });
  process.stdin.on('end', () => process.exit(0));
}
