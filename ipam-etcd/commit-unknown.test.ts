/**
 * "Applied, then unavailable" (issue 13): etcd can apply a transaction and time out before the
 * reply arrives; etcd-store.ts reports that as IpamError('unavailable'), so the caller (the CNI
 * ADD, the agent) sees a failure although the write happened. MemoryStore.applyThenFailNext
 * reproduces it at each commit of assign, claim and release. After each, the state is consistent
 * (check() clean), no address is held by two handles, and the recovery the callers do (release by
 * the handle on the failed ADD's DEL, a retried ADD, a retried DEL) leaves no address lost.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../agent/common/clock.js';
import { silentLogger } from '../agent/common/logger.js';
import { Ipam } from './allocator.js';
import { IpamError } from './errors.js';
import { check, takeSnapshot, usage } from './inspect.js';
import { keys } from './keys.js';
import { MemoryStore } from './memory-store.js';
import type { Write } from './store.js';

/** A clock whose sleeps complete at once (backoff is exercised, not waited for). */
class InstantClock extends ManualClock {
  override setTimer(ms: number, fn: () => void) {
    queueMicrotask(fn);
    return super.setTimer(ms, () => {});
  }
}

const lostReply = () => new IpamError('unavailable', 'etcd request timed out (reply lost)');
const isUnavailable = (e: unknown) => e instanceof IpamError && e.kind === 'unavailable';

/** Commit matchers: which of IPAM's transactions gets its reply lost. */
const has = (ws: readonly Write[], prefix: string) => ws.some((w) => w.key.startsWith(prefix));
const isValue = (w: Write, pred: (v: Record<string, unknown>) => boolean) =>
  !('delete' in w) && pred(JSON.parse(w.value) as Record<string, unknown>);
const COMMITS = {
  /** Assignment: a block value and the handle's count (no affinity). */
  assign: (ws: readonly Write[]) => has(ws, keys.blocks) && has(ws, keys.handles) && !has(ws, keys.affinities),
  /** Claim phase 1: only the node's pending affinity. */
  claimPending: (ws: readonly Write[]) =>
    ws.length === 1 && has(ws, keys.affinities) && isValue(ws[0] as Write, (v) => v.state === 'pending'),
  /** Claim phase 2: the new block and the confirmed affinity. */
  claimConfirm: (ws: readonly Write[]) =>
    has(ws, keys.blocks) &&
    ws.some((w) => w.key.startsWith(keys.affinities) && isValue(w, (v) => v.state === 'confirmed')),
  /** Release: the block and the handle's deletion. */
  release: (ws: readonly Write[]) =>
    has(ws, keys.blocks) && ws.some((w) => w.key.startsWith(keys.handles) && 'delete' in w),
};

async function setup(pool = '10.244.0.0/24', blockSize = 28) {
  const store = new MemoryStore();
  const ipam = new Ipam(store, { clock: new InstantClock(), log: silentLogger, cacheTtlMs: 0 });
  await ipam.addPool({ name: 'p', cidr: pool, blockSize });
  return { store, ipam };
}

/** Every address in use, with its handle; asserts no address appears twice and the state is consistent. */
async function audit(store: MemoryStore): Promise<Map<string, string>> {
  const snap = await takeSnapshot(store);
  assert.deepEqual(check(snap), [], 'check() is clean');
  const u = usage(snap);
  const byIp = new Map<string, string>();
  for (const p of u.pools)
    for (const b of p.blocks)
      for (const a of b.allocations) {
        assert.ok(!byIp.has(a.ip), `${a.ip} held twice (${byIp.get(a.ip)} and ${a.handle})`);
        byIp.set(a.ip, a.handle);
      }
  return byIp;
}

test('assign commit applied, reply lost: ADD fails unavailable; the address is recorded under its handle; release by handle frees it', async () => {
  const { store, ipam } = await setup();
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 }); // block claimed: the next commit is a plain assign
  store.applyThenFailNext(lostReply(), COMMITS.assign);
  await assert.rejects(ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 }), isUnavailable);
  assert.deepEqual(store.lost, [{ keys: store.lost[0]?.keys, applied: true }]);
  let held = await audit(store);
  const mine = [...held].filter(([, h]) => h === 'h1').map(([ip]) => ip);
  assert.equal(mine.length, 1, 'the write happened: one address under h1 (not lost, not anonymous)');
  assert.deepEqual(
    (await ipam.ipsByHandle('h1')).map((a) => a.ip),
    mine,
  );
  // Other pods never get that address.
  const others = await ipam.autoAssign({ handle: 'h2', node: 'n1', num4: 3 });
  assert.ok(others.every((a) => !mine.includes(a.ip)));
  // The runtime's DEL of the failed ADD (same handle) frees it.
  assert.deepEqual(await ipam.releaseByHandle('h1'), mine);
  held = await audit(store);
  assert.equal([...held.values()].includes('h1'), false);
  assert.equal(held.size, 4, 'warm + h2 x3');
});

test('assign commit applied, reply lost: a retried ADD with the same handle adds to it; one release frees both', async () => {
  const { store, ipam } = await setup();
  store.applyThenFailNext(lostReply(), COMMITS.assign);
  await assert.rejects(ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 }), isUnavailable);
  const [again] = await ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 });
  assert.ok(again);
  const held = await audit(store);
  const mine = [...held].filter(([, h]) => h === 'h1').map(([ip]) => ip);
  assert.equal(mine.length, 2, 'the lost write and the retry: both recorded under h1');
  assert.ok(mine.includes(again.ip));
  assert.deepEqual((await ipam.releaseByHandle('h1')).sort(), mine.sort());
  assert.equal((await audit(store)).size, 0, 'nothing left in use');
});

test('assign commit not applied (condition failed), reply lost: nothing written, retry works', async () => {
  const { store, ipam } = await setup();
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  // A competing writer rewrites the block just before the commit: its condition fails, and the
  // caller sees "unavailable", not a conflict (it cannot tell). Nothing of h1 may exist.
  const [kv] = await store.list(keys.blocks);
  assert.ok(kv);
  store.beforeCommit = (s) => {
    s.beforeCommit = undefined;
    s.put(kv.key, kv.value);
  };
  store.applyThenFailNext(lostReply(), COMMITS.assign, 'any');
  await assert.rejects(ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 }), isUnavailable);
  assert.deepEqual(
    store.lost.map((l) => l.applied),
    [false],
  );
  assert.equal((await audit(store)).size, 1, 'only warm');
  assert.deepEqual(await ipam.ipsByHandle('h1'), []);
  await ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 });
  assert.equal((await audit(store)).size, 2);
});

test('claim phase 1 (pending affinity) applied, reply lost: the next ADD claims and assigns; no stray affinity', async () => {
  const { store, ipam } = await setup();
  store.applyThenFailNext(lostReply(), COMMITS.claimPending);
  await assert.rejects(ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 }), isUnavailable);
  assert.equal(store.lost[0]?.applied, true);
  const [a] = await ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 });
  assert.ok(a);
  const affs = await ipam.nodeAffinities('n1');
  assert.deepEqual(
    affs.map((x) => x.state),
    ['confirmed'],
    'the pending affinity left by the lost reply was taken over by the retry',
  );
  assert.equal((await audit(store)).get(a.ip), 'h1');
  await ipam.releaseByHandle('h1');
  assert.equal((await audit(store)).size, 0);
});

test("claim phase 2 (block + confirm) applied, reply lost: the block is the node's; the next ADD uses it, no second block", async () => {
  const { store, ipam } = await setup();
  store.applyThenFailNext(lostReply(), COMMITS.claimConfirm);
  await assert.rejects(ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 }), isUnavailable);
  assert.equal(store.lost[0]?.applied, true);
  await audit(store);
  const blocksBefore = (await store.list(keys.blocks)).map((kv) => kv.key);
  assert.equal(blocksBefore.length, 1);
  const [a] = await ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1 });
  assert.ok(a);
  assert.deepEqual(
    (await store.list(keys.blocks)).map((kv) => kv.key),
    blocksBefore,
    'the block claimed by the lost write is used',
  );
  assert.equal((await audit(store)).get(a.ip), 'h1');
});

test('release commit applied, reply lost: DEL fails unavailable, the retried DEL succeeds (idempotent), nothing lost', async () => {
  const { store, ipam } = await setup();
  const got = await ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 2 });
  await ipam.autoAssign({ handle: 'h2', node: 'n1', num4: 1 });
  store.applyThenFailNext(lostReply(), COMMITS.release);
  await assert.rejects(ipam.releaseByHandle('h1'), isUnavailable);
  assert.equal(store.lost[0]?.applied, true);
  let held = await audit(store);
  assert.deepEqual([...held.values()], ['h2'], "h1's addresses are free (the write happened)");
  assert.deepEqual(await ipam.releaseByHandle('h1'), [], 'the retried DEL finds nothing and succeeds');
  // The freed addresses are assignable again, to exactly one new owner each.
  const again = await ipam.autoAssign({ handle: 'h3', node: 'n1', num4: 15 });
  assert.equal(again.length, 15, 'the /28 minus h2');
  held = await audit(store);
  for (const a of got) assert.equal(held.get(a.ip), 'h3');
});

test('dual-stack ADD, IPv6 commit applied and reply lost: IPv4 rolled back, IPv6 under the handle until its release', async () => {
  const store = new MemoryStore();
  const ipam = new Ipam(store, { clock: new InstantClock(), log: silentLogger, cacheTtlMs: 0 });
  await ipam.addPool({ name: 'v4', cidr: '10.244.0.0/24', blockSize: 28 });
  await ipam.addPool({ name: 'v6', cidr: 'fd00:10:244::/120', blockSize: 124 });
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1, num6: 1 });
  store.applyThenFailNext(lostReply(), (ws) => COMMITS.assign(ws) && ws.some((w) => w.key.includes(':')));
  await assert.rejects(ipam.autoAssign({ handle: 'h1', node: 'n1', num4: 1, num6: 1 }), isUnavailable);
  const held = await audit(store);
  const mine = [...held].filter(([, h]) => h === 'h1').map(([ip]) => ip);
  assert.equal(mine.length, 1, 'IPv4 rolled back by the ADD itself; the IPv6 address of the lost write stays recorded');
  assert.ok(mine[0]?.includes(':'));
  assert.deepEqual(await ipam.releaseByHandle('h1'), mine);
  assert.deepEqual([...(await audit(store)).values()], ['warm', 'warm']);
});

test('batched ADDs of one node in one transaction, reply lost: every caller fails, every address is under its own handle', async () => {
  const { store, ipam } = await setup();
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  store.applyThenFailNext(lostReply(), COMMITS.assign);
  const results = await Promise.allSettled(
    ['a', 'b', 'c', 'd'].map((h) => ipam.autoAssign({ handle: h, node: 'n1', num4: 1 })),
  );
  const failed = results.filter((r) => r.status === 'rejected');
  assert.ok(failed.length >= 1, 'the callers of the lost transaction fail');
  for (const r of failed) assert.ok(isUnavailable((r as PromiseRejectedResult).reason));
  let held = await audit(store);
  for (const h of ['a', 'b', 'c', 'd']) {
    const n = [...held.values()].filter((x) => x === h).length;
    assert.ok(n <= 1, `${h} holds at most one address`);
  }
  for (const h of ['a', 'b', 'c', 'd']) await ipam.releaseByHandle(h);
  held = await audit(store);
  assert.deepEqual([...held.values()], ['warm'], 'after the DELs only warm is in use');
});

test('a lost reply on every kind of commit in turn: state always consistent, all free after releases', async () => {
  for (const [name, match] of Object.entries(COMMITS)) {
    const { store, ipam } = await setup();
    if (name === 'release') await ipam.autoAssign({ handle: 'x', node: 'n1', num4: 1 });
    store.applyThenFailNext(lostReply(), match);
    const op = name === 'release' ? ipam.releaseByHandle('x') : ipam.autoAssign({ handle: 'x', node: 'n1', num4: 1 });
    await assert.rejects(op, isUnavailable, name);
    assert.equal(store.lost.length, 1, `${name}: the failure was hit`);
    if (name === 'claimPending') {
      // The one state a lost reply leaves that check() reports: the pending affinity of the
      // aborted claim (counts as absent; the node's next claim takes it over, see above). The GC
      // of crashed claims removes it.
      assert.deepEqual(
        check(await takeSnapshot(store)).map((p) => p.kind),
        ['affinity-without-block'],
      );
      assert.deepEqual(await ipam.releaseEmptyBlocks({ node: 'n1' }), []);
    }
    await audit(store);
    await ipam.releaseByHandle('x');
    assert.equal((await audit(store)).size, 0, `${name}: nothing left in use`);
  }
});
