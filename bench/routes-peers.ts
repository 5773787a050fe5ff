/**
 * Helper processes of the routing benchmark (bench/routes.ts), each run as its own Node process
 * inside a network namespace and printing one JSON line per event (`t` = CLOCK_MONOTONIC in ms,
 * one clock for every process on the host):
 *
 * - block tester: one BGP session (our codec, `bgp/codec`) to the device under test, that sends
 *   `count` remote blocks `base + k * 2^(32-len)` / `len` with next hop `nextHop` as soon as the
 *   session is Established (UPDATEs pre-encoded before connecting, so encoding is not timed).
 *   Events: `encoded`, `firstUp`, `allSent`.
 * - route watch: `ip monitor route` inside the namespace (the benchmark spawns it; see
 *   bench/routes.ts) is read by the benchmark process itself, not here.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
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
  type Prefix,
  packUpdates,
} from '../bgp/codec/index.js';
import { buildOpen } from '../bgp/fsm/index.js';

const HOLD_TIME_SEC = 180;

export const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const emit = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ ...o, t: now() })}\n`);

export function ipv4(a: number): string {
  const x = a >>> 0;
  return `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`;
}

export function parseIpv4(s: string): number {
  return s.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
}

/** The k-th block of the feed: `base + k * 2^(32-len)` / len. */
export function blockOf(base: string, len: number, k: number): Prefix {
  return { prefix: ipv4(parseIpv4(base) + k * 2 ** (32 - len)), len };
}

export interface BlockTesterJob {
  dut: string;
  port: number;
  /** Source address of the session. */
  local: string;
  asn: number;
  dutAs: number;
  /** First block (dotted quad), prefix length and number of blocks. */
  base: string;
  len: number;
  count: number;
  nextHop: string;
}

export function runBlockTester(job: BlockTesterJob): void {
  const t0 = now();
  const nlri: Prefix[] = [];
  for (let k = 0; k < job.count; k++) nlri.push(blockOf(job.base, job.len, k));
  const ibgp = job.asn === job.dutAs;
  const frames = packUpdates(
    {
      type: 'update',
      withdrawn: [],
      attrs: {
        origin: 'igp',
        asPath: ibgp ? [] : [{ type: 'sequence', asns: [job.asn] }],
        nextHop: job.nextHop,
        ...(ibgp ? { localPref: 100 } : {}),
      },
      nlri,
    },
    { ...DEFAULT_CONTEXT, as4: true },
  );
  const table = Buffer.concat(frames);
  emit({ ev: 'encoded', ms: now() - t0, updates: frames.length, bytes: table.length });
  const open = buildOpen({
    asn: job.asn,
    bgpId: job.local,
    holdTimeSec: HOLD_TIME_SEC,
    families: ['ipv4-unicast'],
    extendedMessage: false,
  });
  let sentOnce = false;
  const connectOnce = () => {
    const sock: Socket = tcpConnect({ host: job.dut, port: job.port, localAddress: job.local });
    let established = false;
    let ka: NodeJS.Timeout | undefined;
    sock.on('connect', () => {
      const framer = new Framer();
      let ctx: CodecContext = DEFAULT_CONTEXT;
      sock.setNoDelay(true);
      sock.write(encodeMessage(open, ctx));
      sock.on('data', (chunk) => {
        const { frames: fs, error } = framer.push(chunk);
        for (const f of fs) {
          if (f[18] === 2) continue; // UPDATEs from the DUT: ignored
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
          } else if (m.type === 'keepalive' && !established) {
            established = true;
            ka = setInterval(() => sock.write(encodeMessage(KEEPALIVE, ctx)), (HOLD_TIME_SEC / 3) * 1000);
            if (sentOnce) emit({ ev: 'reUp' });
            else emit({ ev: 'firstUp' });
            sentOnce = true;
            const done = () => emit({ ev: 'allSent' });
            if (sock.write(table)) done();
            else sock.once('drain', done);
          } else if (m.type === 'notification') {
            emit({ ev: 'notification', code: m.code, subcode: m.subcode });
          }
        }
        if (error) {
          emit({ ev: 'error', error: error.message });
          sock.destroy();
        }
      });
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      if (ka) clearInterval(ka);
      if (established) emit({ ev: 'closed' });
      // The DUT may not listen yet (or dropped a colliding session): try again.
      setTimeout(connectOnce, 200);
    });
  };
  connectOnce();
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'quit') process.exit(0);
  });
  process.stdin.on('end', () => process.exit(0));
}
