import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../agent/common/clock.js';
import { silentLogger } from '../agent/common/logger.js';
import { Ipam } from './allocator.js';
import { HandleExistsError, IpamError } from './errors.js';
import { check, takeSnapshot } from './inspect.js';
import { keys } from './keys.js';
import { MemoryStore } from './memory-store.js';

/** A clock whose sleeps complete at once (backoff is exercised, not waited for). */
class InstantClock extends ManualClock {
  override setTimer(ms: number, fn: () => void) {
    queueMicrotask(fn);
    return super.setTimer(ms, () => {});
  }
}

function setup(opts: { maxRetries?: number } = {}) {
  const store = new MemoryStore();
  const ipam = new Ipam(store, { clock: new InstantClock(), log: silentLogger, ...opts });
  return { store, ipam };
}

const isKind = (kind: string) => (e: unknown) => e instanceof IpamError && e.kind === kind;

async function assertClean(store: MemoryStore) {
  assert.deepEqual(check(await takeSnapshot(store)), []);
}

test('first assignment claims a block for the node (confirmed affinity) and records the handle', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'default', cidr: '10.244.0.0/16' });
  const [a] = await ipam.autoAssign({
    handle: 'net.c1',
    node: 'node-1',
    num4: 1,
    attrs: { pod: 'p1', namespace: 'default' },
  });
  assert.ok(a);
  assert.equal(a.family, 4);
  assert.equal(a.pool, 'default');
  const blk = await ipam.readBlock(a.block);
  assert.equal(blk?.value.affinity, 'host:node-1');
  assert.deepEqual(await ipam.nodeAffinities('node-1').then((x) => x.map((y) => [y.cidr, y.state])), [
    [a.block, 'confirmed'],
  ]);
  const h = await store.get(keys.handle('net.c1'));
  assert.deepEqual(JSON.parse(h!.value), { blocks: { [a.block]: 1 } });
  assert.deepEqual(
    (await ipam.ipsByHandle('net.c1')).map((x) => x.ip),
    [a.ip],
  );
  await assertClean(store);
});

test('a node fills its block before claiming another; different nodes get different blocks', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24', blockSize: 28 });
  const ips = new Set<string>();
  const blocks = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const [a] = await ipam.autoAssign({ handle: `h${i}`, node: 'n1', num4: 1 });
    ips.add(a!.ip);
    blocks.add(a!.block);
  }
  assert.equal(ips.size, 20);
  assert.equal(blocks.size, 2, '16 addresses per /28: 20 need exactly two blocks');
  const [b] = await ipam.autoAssign({ handle: 'other', node: 'n2', num4: 1 });
  assert.ok(!blocks.has(b!.block));
  await assertClean(store);
});

test('borrowing from another node when the pool has no free block, unless strict affinity', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'tiny', cidr: '10.9.0.0/28', blockSize: 28 });
  const [a] = await ipam.autoAssign({ handle: 'a', node: 'n1', num4: 1 });
  const [b] = await ipam.autoAssign({ handle: 'b', node: 'n2', num4: 1 });
  assert.equal(b!.block, a!.block, 'n2 borrowed from n1s only block');
  await ipam.setConfig({ strictAffinity: true });
  await assert.rejects(ipam.autoAssign({ handle: 'c', node: 'n2', num4: 1 }), isKind('exhausted'));
  await assertClean(store);
});

test('exhausted pool: all-or-nothing, nothing leaked', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'tiny', cidr: '10.9.0.0/30', blockSize: 30 });
  await ipam.autoAssign({ handle: 'a', node: 'n1', num4: 3 });
  await assert.rejects(ipam.autoAssign({ handle: 'b', node: 'n1', num4: 2 }), isKind('exhausted'));
  assert.deepEqual(await ipam.ipsByHandle('b'), []);
  const [last] = await ipam.autoAssign({ handle: 'c', node: 'n1', num4: 1 });
  assert.equal(last!.ip, '10.9.0.3');
  await assertClean(store);
});

test('per-node block limit stops claims (no borrowing past it)', async () => {
  const { ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24', blockSize: 30 });
  await ipam.setConfig({ maxBlocksPerHost: 2 });
  await ipam.autoAssign({ handle: 'a', node: 'n1', num4: 8 });
  await assert.rejects(
    ipam.autoAssign({ handle: 'b', node: 'n1', num4: 1 }),
    (e: unknown) => isKind('exhausted')(e) && /limit of 2 blocks/.test((e as Error).message),
  );
});

test('pool choice honours nodeSelector, disabled and an explicit pool list', async () => {
  const { ipam } = setup();
  await ipam.addPool({ name: 'a-zone', cidr: '10.1.0.0/16', nodeSelector: "zone == 'a'" });
  await ipam.addPool({ name: 'b-zone', cidr: '10.2.0.0/16', nodeSelector: "zone == 'b'" });
  await ipam.addPool({ name: 'off', cidr: '10.3.0.0/16', disabled: true });
  await ipam.setNodeLabels('n-b', { zone: 'b' });
  const [x] = await ipam.autoAssign({ handle: 'x', node: 'n-b', num4: 1 });
  assert.equal(x!.pool, 'b-zone');
  await assert.rejects(ipam.autoAssign({ handle: 'y', node: 'n-none', num4: 1 }), isKind('not-found'));
  const [z] = await ipam.autoAssign({ handle: 'z', node: 'n-b', num4: 1, pools: ['a-zone'] });
  assert.equal(z!.pool, 'a-zone', 'an explicit pool list overrides the selector');
  await assert.rejects(ipam.autoAssign({ handle: 'w', node: 'n-b', num4: 1, pools: ['off'] }), isKind('invalid'));
  await assert.rejects(ipam.autoAssign({ handle: 'w', node: 'n-b', num4: 1, pools: ['nope'] }), isKind('not-found'));
});

test('dual stack: one IPv4 and one IPv6 under one handle; release by handle frees both', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'v4', cidr: '10.244.0.0/16' });
  await ipam.addPool({ name: 'v6', cidr: 'fd00:10:244::/56' });
  const got = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1, num6: 1 });
  assert.deepEqual(got.map((g) => g.family).sort(), [4, 6]);
  assert.ok(got.find((g) => g.family === 6)!.block.endsWith('/122'));
  const rel = await ipam.releaseByHandle('h');
  assert.equal(rel.length, 2);
  assert.deepEqual(await ipam.releaseByHandle('h'), [], 'release by handle is idempotent');
  assert.equal(await store.get(keys.handle('h')), null);
  await assertClean(store);
});

test('assignIp: specific address, taken → in-use, outside pools → invalid; releaseIps idempotent', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.244.0.0/16' });
  const a = await ipam.assignIp({ ip: '10.244.7.9', handle: 'h1', node: 'n1' });
  assert.equal(a.block, '10.244.7.0/26');
  await assert.rejects(ipam.assignIp({ ip: '10.244.7.9', handle: 'h2', node: 'n1' }), isKind('in-use'));
  await assert.rejects(ipam.assignIp({ ip: '192.168.1.1', handle: 'h2', node: 'n1' }), isKind('invalid'));
  assert.deepEqual(await ipam.releaseIps(['10.244.7.9']), ['10.244.7.9']);
  assert.deepEqual(await ipam.releaseIps(['10.244.7.9', '192.168.1.1']), []);
  await assertClean(store);
});

test('write conflicts are retried from a fresh read; a competing writer never causes a duplicate', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24', blockSize: 29 });
  await ipam.autoAssign({ handle: 'seed', node: 'n1', num4: 1 });
  store.conflictNext(3);
  const [a] = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  assert.ok(a);
  // A competing writer takes the next address between our read and our commit.
  let raced = false;
  const other = new Ipam(store, { clock: new InstantClock(), log: silentLogger });
  store.beforeCommit = () => {
    if (raced) return;
    raced = true;
    store.beforeCommit = undefined;
    void other.autoAssign({ handle: 'rival', node: 'n1', num4: 1 });
  };
  const [b] = await ipam.autoAssign({ handle: 'h2', node: 'n1', num4: 1 });
  await new Promise((r) => setImmediate(r));
  const rival = await ipam.ipsByHandle('rival');
  assert.equal(rival.length, 1);
  assert.notEqual(rival[0]!.ip, b!.ip);
  await assertClean(store);
});

test('retries are bounded: endless conflicts end in retries-exhausted and write nothing', async () => {
  const { store, ipam } = setup({ maxRetries: 5 });
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24' });
  store.conflictNext(1000);
  await assert.rejects(ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 }), isKind('retries-exhausted'));
  store.conflictNext(0);
});

test('store failures surface as typed errors and leave the state consistent', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24' });
  for (const op of ['get', 'list', 'commit'] as const) {
    store.failNext(op, new IpamError('unavailable', `etcd down (${op})`));
    await assert.rejects(ipam.autoAssign({ handle: `h-${op}`, node: 'n1', num4: 2 }), isKind('unavailable'));
    await assertClean(store);
  }
  assert.equal((await ipam.autoAssign({ handle: 'after', node: 'n1', num4: 1 })).length, 1);
});

test('two nodes racing for the same block: exactly one owns it, the loser claims another', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24', blockSize: 28 });
  const results = await Promise.all([ipam.claimBlock('10.0.0.0/28', 'n1'), ipam.claimBlock('10.0.0.0/28', 'n2')]);
  assert.deepEqual(results.filter(Boolean).length, 1);
  const blk = await ipam.readBlock('10.0.0.0/28');
  const winner = blk!.value.affinity!.slice(5);
  const loser = winner === 'n1' ? 'n2' : 'n1';
  assert.deepEqual(await ipam.nodeAffinities(loser), [], 'the loser withdrew its pending affinity');
  await assertClean(store);
});

test('a crashed claim (pending affinity, no block) is reported by check and removed by gc', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24' });
  store.put(keys.affinity('n1', '10.0.0.0/26'), JSON.stringify({ state: 'pending' }));
  const problems = check(await takeSnapshot(store));
  assert.deepEqual(
    problems.map((p) => p.kind),
    ['affinity-without-block'],
  );
  await ipam.gc({ livePods: new Set(), graceMs: 0 });
  await assertClean(store);
});

test('release empty blocks keeps the node last block', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24', blockSize: 29 });
  await ipam.autoAssign({ handle: 'a', node: 'n1', num4: 8 });
  await ipam.autoAssign({ handle: 'b', node: 'n1', num4: 8 });
  await ipam.releaseByHandle('a');
  await ipam.releaseByHandle('b');
  const released = await ipam.releaseEmptyBlocks({ node: 'n1' });
  assert.equal(released.length, 1);
  assert.equal((await ipam.nodeAffinities('n1')).length, 1);
  assert.deepEqual(await ipam.releaseEmptyBlocks({ node: 'n1' }), []);
  await assertClean(store);
});

test('gc releases allocations of dead pods after the grace period, all-or-none per handle', async () => {
  const store = new MemoryStore();
  const clock = new ManualClock();
  const ipam = new Ipam(store, { clock, log: silentLogger });
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24' });
  await ipam.autoAssign({ handle: 'live', node: 'n1', num4: 1, attrs: { pod: 'a', namespace: 'ns' } });
  await ipam.autoAssign({ handle: 'dead', node: 'n1', num4: 2, attrs: { pod: 'b', namespace: 'ns' } });
  await ipam.autoAssign({ handle: 'tunnel', node: 'n1', num4: 1 });
  const live = new Set(['ns/a']);
  let r = await ipam.gc({ livePods: live, graceMs: 60_000 });
  assert.deepEqual(r.released, [], 'fresh allocations are protected by the grace period');
  clock.advance(61_000);
  r = await ipam.gc({ livePods: live, graceMs: 60_000, dryRun: true });
  assert.deepEqual(
    r.released.map((x) => [x.handle, x.ips.length]),
    [['dead', 2]],
  );
  assert.equal((await ipam.ipsByHandle('dead')).length, 2, 'dry run changes nothing');
  r = await ipam.gc({ livePods: live, graceMs: 60_000 });
  assert.deepEqual(
    r.released.map((x) => x.handle),
    ['dead'],
  );
  assert.equal((await ipam.ipsByHandle('dead')).length, 0);
  assert.equal((await ipam.ipsByHandle('tunnel')).length, 1, 'allocations without a pod owner are kept');
  r = await ipam.gc({ livePods: live, liveNodes: new Set(['n2']), graceMs: 60_000 });
  assert.deepEqual(r.released.map((x) => x.handle).sort(), ['live', 'tunnel'], 'a gone node leaks everything on it');
  await assertClean(store);
});

test('pools: overlap, smaller than a block, bad modes, duplicate names, removal while in use', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'a', cidr: '10.244.0.0/16' });
  const before = await store.list('/petrel/');
  await assert.rejects(ipam.addPool({ name: 'b', cidr: '10.244.128.0/17' }), isKind('invalid'));
  await assert.rejects(ipam.addPool({ name: 'c', cidr: '10.9.0.0/28' }), isKind('invalid'));
  await assert.rejects(ipam.addPool({ name: 'd', cidr: '10.8.0.0/16', ipipMode: 'Sometimes' }), isKind('invalid'));
  await assert.rejects(ipam.addPool({ name: 'a', cidr: '10.7.0.0/16' }), isKind('invalid'));
  await assert.rejects(ipam.addPool({ name: 'e', cidr: '169.254.0.0/16' }), isKind('invalid'));
  await assert.rejects(ipam.addPool({ name: 'f', cidr: 'fd00::/64', ipipMode: 'Always' }), isKind('invalid'));
  assert.deepEqual(await store.list('/petrel/'), before, 'rejected pool writes changed nothing');
  await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  await assert.rejects(ipam.removePool('a'), isKind('in-use'));
  await ipam.releaseByHandle('h');
  await ipam.removePool('a');
  assert.deepEqual(await store.list('/petrel/ipam/v1/blocks/'), []);
  assert.deepEqual(await store.list('/petrel/ipam/v1/affinities/'), []);
  await assert.rejects(ipam.removePool('a'), isKind('not-found'));
});

test('a corrupted block is reported, never overwritten', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24' });
  const [a] = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  store.put(keys.block(a!.block), '{"cidr": "10.0.0.0/26", "allocations": "garbage"');
  const before = await store.get(keys.block(a!.block));
  await assert.rejects(ipam.autoAssign({ handle: 'h2', node: 'n1', num4: 1 }), isKind('corrupt'));
  await assert.rejects(ipam.releaseByHandle('h'), isKind('corrupt'));
  assert.deepEqual(await store.get(keys.block(a!.block)), before);
  const problems = check(await takeSnapshot(store));
  assert.ok(problems.some((p) => p.kind === 'corrupt-value' && p.key === keys.block(a!.block)));
});

test('check detects handle index drift and affinity mismatch', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/24' });
  const [a] = await ipam.autoAssign({ handle: 'h', node: 'n1', num4: 1 });
  store.put(keys.handle('h'), JSON.stringify({ blocks: { [a!.block]: 3 } }));
  store.put(keys.handle('ghost'), JSON.stringify({ blocks: { '10.0.0.64/26': 1 } }));
  store.put(keys.affinity('n2', a!.block), JSON.stringify({ state: 'confirmed' }));
  const kinds = check(await takeSnapshot(store))
    .map((p) => p.kind)
    .sort();
  assert.deepEqual(kinds, ['block-affinity-mismatch', 'handle-count-mismatch', 'handle-points-at-nothing']);
});

test('concurrent callers on one node are merged into few block transactions (group commit)', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/16' });
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  const commitsBefore = store.calls.filter((c) => c.op === 'commit').length;
  const got = await Promise.all(
    Array.from({ length: 16 }, (_, i) => ipam.autoAssign({ handle: `h${i}`, node: 'n1', num4: 1 })),
  );
  const ips = got.flat().map((a) => a.ip);
  assert.equal(new Set(ips).size, 16);
  const commits = store.calls.filter((c) => c.op === 'commit').length - commitsBefore;
  assert.ok(commits <= 2, `16 assignments took ${commits} commits`);
  const rel = await Promise.all(Array.from({ length: 16 }, (_, i) => ipam.releaseByHandle(`h${i}`)));
  assert.deepEqual(rel.flat().sort(), [...ips].sort());
  await assertClean(store);
});

test('a failing batch rejects every caller in it and leaves nothing assigned', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/16' });
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  store.failNext('commit', new IpamError('unavailable', 'etcd down'));
  const results = await Promise.allSettled(
    Array.from({ length: 4 }, (_, i) => ipam.autoAssign({ handle: `f${i}`, node: 'n1', num4: 1 })),
  );
  assert.ok(results.some((r) => r.status === 'rejected'));
  for (const [i, r] of results.entries()) {
    const held = await ipam.ipsByHandle(`f${i}`);
    assert.equal(held.length, r.status === 'fulfilled' ? 1 : 0);
  }
  await assertClean(store);
});

test('fresh: a new handle is assigned without a read of it; a held one fails, nothing written, others in its batch served', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'p', cidr: '10.0.0.0/16' });
  await ipam.addPool({ name: 'p6', cidr: 'fd00::/48' });
  await ipam.autoAssign({ handle: 'warm', node: 'n1', num4: 1 });
  const reads = () => store.calls.filter((c) => c.op === 'get' && c.key.startsWith(keys.handles)).length;
  const commits = () => store.calls.filter((c) => c.op === 'commit').length;
  let r0 = reads();
  let c0 = commits();
  const [solo] = await ipam.autoAssign({ handle: 'pod-0', node: 'n1', num4: 1, fresh: true });
  assert.ok(solo);
  assert.deepEqual([reads() - r0, commits() - c0], [0, 1], 'a new handle: not read, one commit');
  // Dual stack under one fresh handle: the IPv6 part reads the handle the IPv4 part wrote (no
  // conflicting commit on the way).
  r0 = reads();
  c0 = commits();
  const first = await ipam.autoAssign({ handle: 'pod-a', node: 'n1', num4: 1, num6: 1, fresh: true });
  assert.deepEqual(
    first.map((a) => a.family),
    [4, 6],
  );
  assert.equal(reads() - r0, 1, 'the IPv6 part reads the handle once');
  assert.equal(
    commits() - c0,
    4,
    'IPv4 assignment, IPv6 block claim (two phases), IPv6 assignment: no lost compare-and-swap on the way',
  );
  const revBefore = (await store.get(keys.handle('pod-a')))?.modRevision;
  const [held, other] = await Promise.allSettled([
    ipam.autoAssign({ handle: 'pod-a', node: 'n1', num4: 1, fresh: true }),
    ipam.autoAssign({ handle: 'pod-b', node: 'n1', num4: 1, fresh: true }),
  ]);
  assert.equal(held.status, 'rejected');
  assert.ok(held.status === 'rejected' && held.reason instanceof HandleExistsError);
  assert.equal(other.status, 'fulfilled');
  assert.equal((await store.get(keys.handle('pod-a')))?.modRevision, revBefore, 'the held handle is untouched');
  assert.deepEqual((await ipam.ipsByHandle('pod-a')).map((a) => a.ip).sort(), first.map((a) => a.ip).sort());
  // Without fresh the same call adds to the handle (the old contract, still there for its callers).
  await ipam.autoAssign({ handle: 'pod-a', node: 'n1', num4: 1 });
  assert.equal((await ipam.ipsByHandle('pod-a')).length, 3);
  await assertClean(store);
});

test('fresh while borrowing: a held handle fails before anything is taken from the other node', async () => {
  const { store, ipam } = setup();
  await ipam.addPool({ name: 'tiny', cidr: '10.9.0.0/28', blockSize: 28 });
  await ipam.autoAssign({ handle: 'a', node: 'n1', num4: 1 });
  const [b] = await ipam.autoAssign({ handle: 'b', node: 'n2', num4: 1, fresh: true });
  assert.ok(b, 'n2 borrows for a fresh handle');
  await assert.rejects(ipam.autoAssign({ handle: 'b', node: 'n2', num4: 1, fresh: true }), HandleExistsError);
  assert.equal((await ipam.ipsByHandle('b')).length, 1);
  await assertClean(store);
});
