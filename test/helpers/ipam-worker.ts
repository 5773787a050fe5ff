/**
 * A separate allocator process for the IPAM concurrency and fault tests. It assigns and releases
 * addresses against a real etcd and prints one JSON report on stdout:
 *   { held: { [handle]: ip[] }, uncertain: handle[], assigned, released, failures: { [kind]: n } }
 * `uncertain` lists held handles whose last release failed (it may or may not have been applied).
 * Usage: node ipam-worker.js ENDPOINT WORKER_ID NODE OPS SEED [TIMEOUT_MS] [MAX_SECONDS] [STOP_FILE]
 * (stops after OPS operations, MAX_SECONDS, or once STOP_FILE exists, whichever comes first).
 * Writes `started` on stderr once its first operation has finished.
 * Like kubelet, a failed assignment is followed by a release of its handle (CNI DEL), retried
 * until etcd answers, so an ambiguous commit (applied, but the answer lost) leaks nothing.
 */
import { existsSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { systemClock } from '../../agent/common/clock.js';
import { silentLogger } from '../../agent/common/logger.js';
import { mulberry32 } from '../../bgp/codec/mutate.js';
import { IpamError, openEtcdIpam } from '../../ipam-etcd/index.js';

async function main() {
  const [endpoint, id, node, opsS, seedS, timeoutS, maxS, stopFile] = process.argv.slice(2);
  const deadline = performance.now() + Number(maxS ?? 3600) * 1000;
  const ops = Number(opsS);
  const rand = mulberry32(Number(seedS));
  const { ipam, close } = await openEtcdIpam({
    endpoints: [endpoint!],
    timeoutMs: Number(timeoutS ?? 3000),
    log: silentLogger,
    clock: systemClock,
  });
  const held = new Map<string, string[]>();
  const failures: Record<string, number> = {};
  const uncertain = new Set<string>();
  let assigned = 0;
  let released = 0;
  const fail = (err: unknown) => {
    const kind = err instanceof IpamError ? err.kind : 'other';
    failures[kind] = (failures[kind] ?? 0) + 1;
    if (!(err instanceof IpamError)) process.stderr.write(`worker ${id}: ${String(err)}\n`);
  };
  const releaseUntilDone = async (handle: string) => {
    for (;;) {
      try {
        await ipam.releaseByHandle(handle);
        return;
      } catch (err) {
        fail(err);
        await delay(100);
      }
    }
  };
  const stopped = () => stopFile !== undefined && existsSync(stopFile);
  for (let i = 0; i < ops && performance.now() < deadline && !stopped(); i++) {
    if (i === 1) process.stderr.write('started\n');
    const handles = [...held.keys()];
    if (handles.length > 0 && rand() < 0.45) {
      const h = handles[Math.floor(rand() * handles.length)]!;
      try {
        const r = await ipam.releaseByHandle(h);
        released += r.length;
        held.delete(h);
        uncertain.delete(h);
      } catch (err) {
        fail(err);
        uncertain.add(h);
      }
    } else {
      const h = `w${id}-${i}`;
      try {
        const got = await ipam.autoAssign({
          handle: h,
          node: node!,
          num4: 1,
          attrs: { pod: `pod-${id}-${i}`, namespace: 'conc' },
        });
        held.set(
          h,
          got.map((a) => a.ip),
        );
        assigned += got.length;
      } catch (err) {
        fail(err);
        await releaseUntilDone(h);
      }
    }
  }
  await close();
  process.stdout.write(
    `${JSON.stringify({ held: Object.fromEntries(held), uncertain: [...uncertain], assigned, released, failures })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`worker crashed: ${String(err)}\n`);
    process.exit(1);
  },
);
