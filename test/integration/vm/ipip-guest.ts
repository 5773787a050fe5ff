/**
 * Runs INSIDE a qemu guest, in a pod's network namespace (test/integration/vm/ipip.it.test.ts):
 * the TCP ends of the pod ↔ pod checks. One process start does a whole batch, because every
 * `node` start in a TCG guest costs ~0.5 s.
 *
 *   node ipip-guest.js serve PORT        TCP server on 0.0.0.0:PORT, each client gets
 *                                        "<address it reached> <client address>\n"; writes
 *                                        "listening" first
 *   node ipip-guest.js probe PORT ADDR…  connects to each ADDR:PORT in turn (up to 3 tries, 8 s
 *                                        each), prints one JSON line per address:
 *                                        {"to", "ok", "reply"?, "error"?, "ms", "tries"}
 * Imports only node: modules, so it starts fast and needs nothing from the build but this file.
 */
import { connect, createServer } from 'node:net';

function serve(port: number): void {
  const srv = createServer((s) => {
    s.on('error', () => {});
    s.end(`${s.localAddress} ${s.remoteAddress}\n`);
  });
  srv.on('error', (e) => {
    process.stderr.write(`ipip-guest serve: ${e.message}\n`);
    process.exit(1);
  });
  srv.listen(port, '0.0.0.0', () => process.stdout.write(`listening 0.0.0.0:${port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

interface ProbeResult {
  to: string;
  ok: boolean;
  reply?: string;
  error?: string;
  ms: number;
  /** connection attempts made (1 = first try) */
  tries?: number;
}

function probeOnce(addr: string, port: number): Promise<ProbeResult> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = connect({ host: addr, port });
    let out = '';
    const done = (r: Omit<ProbeResult, 'ms'>) => resolve({ ...r, ms: Math.round(performance.now() - t0) });
    s.setTimeout(8000, () => {
      s.destroy();
      done({ to: addr, ok: false, error: 'timeout' });
    });
    s.on('data', (d) => {
      out += d;
    });
    s.on('end', () => done({ to: addr, ok: true, reply: out.trim() }));
    s.on('error', (e: NodeJS.ErrnoException) => done({ to: addr, ok: false, error: e.code ?? e.message }));
  });
}

async function probe(port: number, addrs: string[]): Promise<void> {
  for (const a of addrs) {
    let r = await probeOnce(a, port);
    let tries = 1;
    // A route that changed a moment ago (mode switch) may cost the first SYN: retry, and say so.
    while (!r.ok && tries < 3) {
      r = await probeOnce(a, port);
      tries++;
    }
    process.stdout.write(`${JSON.stringify({ ...r, tries })}\n`);
  }
}

function main(): void {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'serve' && args.length === 1) serve(Number(args[0]));
  else if (cmd === 'probe' && args.length >= 2) {
    probe(Number(args[0]), args.slice(1)).catch((e: unknown) => {
      process.stderr.write(`ipip-guest probe: ${String(e)}\n`);
      process.exit(1);
    });
  } else {
    process.stderr.write('usage: ipip-guest.js serve PORT | probe PORT ADDR...\n');
    process.exit(2);
  }
}

main();
