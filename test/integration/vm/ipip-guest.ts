/**
 * Runs INSIDE a qemu guest (test/integration/vm/ipip.it.test.ts): the node side of the IPIP test,
 * through Petrel's own routing code (agent/routing) on the guest's real kernel.
 *
 *   node ipip-guest.js apply PLAN.json   plan() -> TunnelDevices (tunl0, forwarding) -> one
 *                                        RouteReconciler pass over the persistent `ip -batch`;
 *                                        prints {"desired":…, "devices":…, "status":…} as JSON
 *   node ipip-guest.js serve ADDR PORT   TCP server: answers "<ADDR> <client address>"
 *   node ipip-guest.js probe PORT ADDR…  connects to each ADDR:PORT, prints one JSON result each
 * PLAN.json is a PlanInput (agent/routing/types.ts). The test writes the Loc-RIB part (`learned`)
 * itself: no BGP speaker runs in the guests, the routes are what BGP would have delivered.
 */
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { systemClock } from '../../../agent/common/clock.js';
import { createLogger } from '../../../agent/common/log.js';
import { Iproute2Kernel, type PlanInput, plan, RouteReconciler, TunnelDevices } from '../../../agent/routing/index.js';

async function apply(file: string): Promise<void> {
  const log = createLogger({ level: 'warn', base: { component: 'ipip-guest' } });
  const input = JSON.parse(readFileSync(file, 'utf8')) as PlanInput;
  const desired = plan(input);
  const devices = new TunnelDevices({ log });
  const devResults = await devices.apply(desired.devices);
  await devices.enableForwarding();
  const kernel = new Iproute2Kernel({ log, clock: systemClock });
  const rec = new RouteReconciler({ kernel, clock: systemClock, log });
  rec.setDesired(desired, { complete: true });
  rec.start();
  await rec.idle();
  const status = rec.status();
  await rec.stop();
  await kernel.close();
  process.stdout.write(
    `${JSON.stringify({
      desired: { routes: desired.routes, devices: desired.devices, skipped: desired.skipped },
      devices: devResults.map((d) => ({ device: d.device, ok: d.ok, action: d.action, error: d.error?.message })),
      status,
    })}\n`,
  );
}

function serve(addr: string, port: number): void {
  const srv = createServer((s) => {
    s.on('error', () => {});
    s.end(`${addr} ${s.remoteAddress}\n`);
  });
  srv.listen(port, addr, () => process.stdout.write(`listening ${addr}:${port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

function probeOne(addr: string, port: number): Promise<{ to: string; ok: boolean; reply?: string; error?: string }> {
  return new Promise((resolve) => {
    const s = connect({ host: addr, port });
    let out = '';
    s.setTimeout(8000, () => {
      s.destroy();
      resolve({ to: addr, ok: false, error: 'timeout' });
    });
    s.on('data', (d) => {
      out += d;
    });
    s.on('end', () => resolve({ to: addr, ok: true, reply: out.trim() }));
    s.on('error', (e: NodeJS.ErrnoException) => resolve({ to: addr, ok: false, error: e.code ?? e.message }));
  });
}

async function probe(port: number, addrs: string[]): Promise<void> {
  for (const a of addrs) process.stdout.write(`${JSON.stringify(await probeOne(a, port))}\n`);
}

async function main(): Promise<void> {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === 'apply') await apply(args[0]!);
  else if (cmd === 'serve') serve(args[0]!, Number(args[1]));
  else if (cmd === 'probe') await probe(Number(args[0]), args.slice(1));
  else throw new Error(`usage: ipip-guest.js apply PLAN | serve ADDR PORT | probe PORT ADDR...`);
}

main().catch((e: unknown) => {
  process.stderr.write(`ipip-guest: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
