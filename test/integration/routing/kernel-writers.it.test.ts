/**
 * The two route writers of the agent's Kernel (agent/routing/kernel-iproute2.ts), against the real
 * kernel: `ip -batch` (iproute2) and petrel-netlink (rtnetlink from a Bun executable). The oracle
 * is iproute2 itself: the same changes applied by each writer, each in its own namespace with the
 * same links and addresses, must leave the same routes (`ip -json route show`, both families) and
 * give the same result kind for each change (exists, not-found, iface-down). Also: a foreign route
 * is never overwritten or deleted, a 10,000-route batch lands whole, the helper dying fails only
 * the batches in flight (transient) and the next batch starts a new one, close() leaves no process.
 * Watching through petrel-netlink: changes others make to routes of ours are events, our own
 * writes are not (dropped in the helper by the notification's port); a dead helper is a `lost`
 * event and a new helper watches again.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../../agent/common/log.js';
import type { Change, ChangeResult, KernelEvent } from '../../../agent/routing/kernel.js';
import { Iproute2Kernel } from '../../../agent/routing/kernel-iproute2.js';
import type { RouteSpec } from '../../../agent/routing/types.js';
import { SEA_DIR } from '../../helpers/bins.js';
import { needs, type ProbedCapability } from '../../helpers/needs.js';
import { createNetns, type Netns } from '../../helpers/netns.js';

const HELPER = join(SEA_DIR, 'petrel-netlink');
const NETLINK_BIN: ProbedCapability = {
  name: 'petrel-netlink',
  probe: () => (existsSync(HELPER) ? false : `needs ${HELPER} (npm run package)`),
};
const skip = needs('root', 'netns', NETLINK_BIN);

/** One namespace per writer, wired the same: eth0 10.99.0.1/24 + fd99::1/64 (a veth, peer up). */
async function node(tag: string): Promise<Netns> {
  const ns = await createNetns(tag);
  await ns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0');
  await ns.ip('addr', 'add', '10.99.0.1/24', 'dev', 'eth0');
  await ns.ip('addr', 'add', 'fd99::1/64', 'dev', 'eth0', 'nodad');
  await ns.ip('link', 'set', 'eth0', 'up');
  await ns.ip('link', 'set', 'peer0', 'up');
  return ns;
}

const route = (r: Partial<RouteSpec> & { dst: string }): RouteSpec => ({
  family: r.dst.includes(':') ? 6 : 4,
  type: 'unicast',
  ...r,
});
const ch = (op: Change['op'], r: RouteSpec): Change => ({ op, obj: { type: 'route', route: r } });
const kinds = (rs: ChangeResult[]) => rs.map((r) => (r.ok ? 'ok' : r.error.kind));

/** Every route in the main table, both families, as ip prints it (the comparison's oracle). */
async function table(ns: Netns): Promise<unknown[]> {
  const v4 = await ns.ipJson<unknown[]>('-4', 'route', 'show', 'table', 'main');
  const v6 = await ns.ipJson<unknown[]>('-6', 'route', 'show', 'table', 'main');
  return [...v4, ...v6];
}

describe('route writers: ip -batch and petrel-netlink leave the same kernel state', { skip }, () => {
  let nsIp: Netns;
  let nsNl: Netns;
  let kIp: Iproute2Kernel;
  let kNl: Iproute2Kernel;
  before(async () => {
    nsIp = await node('wr-ip');
    nsNl = await node('wr-nl');
    kIp = new Iproute2Kernel({ log: silentLogger, netnsPath: nsIp.path });
    kNl = new Iproute2Kernel({ log: silentLogger, netnsPath: nsNl.path, netlinkHelper: HELPER });
    assert.equal(kIp.routeWriter, 'iproute2');
    assert.equal(kNl.routeWriter, 'netlink');
  });
  after(async () => {
    await kIp?.close();
    await kNl?.close();
    await nsIp?.delete();
    await nsNl?.delete();
  });

  /** Applies `changes` with both writers; asserts equal results and equal tables; returns the kinds. */
  async function both(changes: Change[]): Promise<string[]> {
    const [a, b] = await Promise.all([kIp.apply(changes), kNl.apply(changes)]);
    assert.deepEqual(kinds(b), kinds(a), 'same result per change');
    assert.deepEqual(await table(nsNl), await table(nsIp), 'same routes in the kernel');
    return kinds(a);
  }

  test('adds: via gateway (onlink or not), device route, IPv6, blackholes; all proto 80', async () => {
    const k = await both([
      ch('add', route({ dst: '10.10.1.0/26', gateway: '10.99.0.2', dev: 'eth0', onlink: true })),
      ch('add', route({ dst: '10.10.2.0/26', gateway: '10.99.0.3', dev: 'eth0' })),
      ch('add', route({ dst: '10.10.3.7/32', dev: 'eth0' })),
      ch('add', route({ dst: 'fd10:1::/122', gateway: 'fd99::2', dev: 'eth0' })),
      ch('add', route({ dst: '10.10.4.0/26', type: 'blackhole' })),
      ch('add', route({ dst: 'fd10:4::/122', type: 'blackhole' })),
      ch('add', route({ dst: '10.10.5.0/26', gateway: '10.99.0.4' })),
    ]);
    assert.deepEqual(k, ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    const ours = await kNl.listRoutes();
    assert.equal(ours.length, 7, 'listRoutes (proto 80) sees every one');
    assert.ok(ours.some((r) => r.dst === '10.10.1.0/26' && r.onlink && r.gateway === '10.99.0.2'));
  });

  test('add on a held destination fails with exists; replace changes the next hop', async () => {
    const k = await both([
      ch('add', route({ dst: '10.10.1.0/26', gateway: '10.99.0.9', dev: 'eth0' })),
      ch('replace', route({ dst: '10.10.2.0/26', gateway: '10.99.0.9', dev: 'eth0', onlink: true })),
      ch('replace', route({ dst: 'fd10:4::/122', gateway: 'fd99::9', dev: 'eth0' })),
    ]);
    assert.deepEqual(k, ['exists', 'ok', 'ok']);
  });

  test('a foreign route is neither overwritten by add nor removed by delete', async () => {
    for (const ns of [nsIp, nsNl]) await ns.ip('route', 'add', '10.20.0.0/24', 'via', '10.99.0.7', 'proto', 'static');
    const k = await both([
      ch('add', route({ dst: '10.20.0.0/24', gateway: '10.99.0.2', dev: 'eth0' })),
      ch('delete', route({ dst: '10.20.0.0/24' })),
    ]);
    assert.deepEqual(k, ['exists', 'not-found']);
    assert.match(await nsNl.ip('route', 'show', '10.20.0.0/24'), /via 10\.99\.0\.7 .*proto static/);
  });

  test('unreachable gateway or a missing device: iface-down; deleting nothing: not-found', async () => {
    const k = await both([
      ch('add', route({ dst: '10.30.0.0/26', gateway: '10.55.0.1', dev: 'eth0' })),
      ch('add', route({ dst: '10.30.1.0/26', gateway: '10.99.0.2', dev: 'nosuchdev', onlink: true })),
      ch('delete', route({ dst: '10.30.2.0/26' })),
      ch('delete', route({ dst: '10.10.4.0/26', type: 'blackhole' })),
      ch('delete', route({ dst: 'fd10:1::/122' })),
    ]);
    assert.deepEqual(k, ['iface-down', 'iface-down', 'not-found', 'ok', 'ok']);
  });

  test('10,000 routes in one batch land whole, then leave whole; a failure in any chunk is reported at its index', async () => {
    const many = Array.from({ length: 10_000 }, (_, i) =>
      route({ dst: `21.${i >> 8}.${i & 255}.0/24`, gateway: '10.99.0.2', dev: 'eth0', onlink: true }),
    );
    // petrel-netlink gets the batch in chunks of 2048: failures either side of a boundary and at the end.
    const bad = new Set([2047, 2048, 9999]);
    const k = await both(many.map((r, i) => ch('replace', bad.has(i) ? route({ ...r, dev: 'nosuchdev' }) : r)));
    assert.deepEqual(
      k.flatMap((x, i) => (x === 'ok' ? [] : [`${i} ${x}`])),
      ['2047 iface-down', '2048 iface-down', '9999 iface-down'],
    );
    assert.ok((await both([...bad].map((i) => ch('replace', many[i]!)))).every((x) => x === 'ok'));
    assert.equal((await nsNl.ipJson<unknown[]>('route', 'show', 'proto', '80')).length >= 10_000, true);
    const d = await both(many.map((r) => ch('delete', r)));
    assert.ok(d.every((x) => x === 'ok'));
  });

  test('watching: others changing our routes are events, our own writes none; a dead helper is lost, then watched again', async () => {
    const events: KernelEvent[] = [];
    const stop = kNl.watch((e) => events.push(e));
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) await sleep(20);
      assert.ok(ok(), `${what}: ${JSON.stringify(events)}`);
    };
    const seen = () =>
      events.map((e) =>
        e.type === 'lost'
          ? 'lost'
          : `${e.deleted ? 'del' : 'add'} ${e.ours ? 'ours' : 'foreign'} ${e.route.type} ${e.route.dst} via ${e.route.gateway ?? '-'} dev ${e.route.dev ?? '-'}${e.route.onlink ? ' onlink' : ''}`,
      );
    const own = Array.from({ length: 2000 }, (_, i) =>
      route({ dst: `10.${50 + (i >> 10)}.${(i >> 2) & 255}.${(i & 3) * 64}/26`, gateway: '10.99.0.2', dev: 'eth0' }),
    );
    try {
      await sleep(100);
      assert.ok(kinds(await kNl.apply(own.map((r) => ch('add', r)))).every((k) => k === 'ok'));
      assert.ok(kinds(await kNl.apply([ch('delete', own[1]!)])).every((k) => k === 'ok'));
      await sleep(200);
      assert.deepEqual(seen(), [], 'our own 2,000 adds and a delete come back as nothing');
      await nsNl.ip('route', 'del', '10.50.0.0/26', 'proto', '80');
      await nsNl.ip('route', 'add', '10.60.0.0/26', 'via', '10.99.0.3', 'dev', 'eth0', 'proto', '80', 'onlink');
      await nsNl.ip('route', 'add', '10.61.0.0/26', 'via', '10.99.0.3', 'proto', 'static');
      await nsNl.ip('route', 'add', 'blackhole', '10.62.0.0/26', 'proto', '80', 'table', '100');
      await until('two events', () => events.length >= 2);
      await sleep(100);
      assert.deepEqual(seen(), [
        'del ours unicast 10.50.0.0/26 via 10.99.0.2 dev eth0',
        'add ours unicast 10.60.0.0/26 via 10.99.0.3 dev eth0 onlink',
      ]);
      events.length = 0;
      const pid = kNl.pids().find(isHelper);
      assert.ok(pid, 'a petrel-netlink process is running');
      process.kill(pid, 'SIGKILL');
      await until('lost', () => events.length >= 1);
      assert.deepEqual(seen(), ['lost']);
      await until('a new helper', () => kNl.pids().some((p) => isHelper(p) && p !== pid));
      await sleep(100);
      await nsNl.ip('route', 'del', '10.60.0.0/26', 'proto', '80');
      await until('the new helper watches', () => events.length >= 2);
      assert.deepEqual(seen(), ['lost', 'del ours unicast 10.60.0.0/26 via 10.99.0.3 dev eth0 onlink']);
    } finally {
      stop();
      await kNl.apply(own.map((r) => ch('delete', r)));
      await nsNl.ip('route', 'flush', 'proto', 'static').catch(() => undefined);
      await nsNl.ip('route', 'flush', 'table', '100').catch(() => undefined);
    }
  });

  test('the helper dying fails the batch in flight as transient; the next batch starts a new one', async () => {
    const pid = kNl.pids().find(isHelper);
    assert.ok(pid, 'a petrel-netlink process is running');
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 100));
    const r = await kNl.apply([ch('replace', route({ dst: '10.40.0.0/26', type: 'blackhole' }))]);
    assert.deepEqual(kinds(r), ['ok']);
    const pid2 = kNl.pids().find((p) => isHelper(p));
    assert.ok(pid2 && pid2 !== pid, 'a new helper');
    assert.match(await nsNl.ip('route', 'show', '10.40.0.0/26'), /blackhole 10\.40\.0\.0\/26 proto 80/);
  });

  test('close() stops the helper', async () => {
    const pids = kNl.pids().filter(isHelper);
    assert.ok(pids.length > 0);
    await kNl.close();
    for (const p of pids) assert.ok(!existsSync(`/proc/${p}/stat`) || zombie(p), `helper ${p} gone`);
  });
});

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}
function isHelper(pid: number): boolean {
  return comm(pid).includes('petrel-netlink');
}
function zombie(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

describe('a petrel-netlink that cannot run here (dies before its first answer, e.g. SIGILL)', {
  skip: needs('root', 'netns'),
}, () => {
  let ns: Netns;
  let dir: string;
  let crash: string;
  before(async () => {
    ns = await node('wr-ill');
    dir = mkdtempSync(join(tmpdir(), 'petrel-nl-ill-'));
    crash = join(dir, 'petrel-netlink');
    // What the Bun runtime does on a CPU without the instructions it was built for.
    writeFileSync(crash, '#!/bin/sh\nkill -ILL $$\n', { mode: 0o755 });
  });
  after(async () => {
    await ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const blackhole = (dst: string) => ch('replace', route({ dst, type: 'blackhole' }));

  test('with fallback (--route-writer auto): the batch fails transient, later ones go through ip -batch', async () => {
    const k = new Iproute2Kernel({
      log: silentLogger,
      netnsPath: ns.path,
      netlinkHelper: crash,
      netlinkFallback: true,
    });
    try {
      assert.deepEqual(kinds(await k.apply([blackhole('10.50.0.0/26')])), ['transient']);
      assert.deepEqual(kinds(await k.apply([blackhole('10.50.0.0/26')])), ['ok']);
      assert.equal(k.routeWriter, 'iproute2');
      assert.match(await ns.ip('route', 'show', '10.50.0.0/26'), /blackhole 10\.50\.0\.0\/26 proto 80/);
    } finally {
      await k.close();
    }
  });

  test('without fallback (--route-writer netlink): it keeps failing transient and says so', async () => {
    const k = new Iproute2Kernel({ log: silentLogger, netnsPath: ns.path, netlinkHelper: crash });
    try {
      for (let i = 0; i < 2; i++) {
        const r = await k.apply([blackhole('10.50.1.0/26')]);
        assert.deepEqual(kinds(r), ['transient']);
        assert.match(r[0]?.ok === false ? r[0].error.message : '', /petrel-netlink exited \(SIGILL\)/);
      }
      assert.equal(k.routeWriter, 'netlink');
    } finally {
      await k.close();
    }
  });
});
