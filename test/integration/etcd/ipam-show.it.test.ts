/**
 * `petrelctl ipam show --json` against a real etcd (issue 13): the whole output is parsed (a
 * truncated document fails JSON.parse), every object is checked against the documented schema
 * (README "JSON output"), and every count is checked against what this test assigned through
 * `petrelctl ipam assign --json`: per pool, per block and per allocation, before and after
 * releases. The output is made larger than a pipe buffer (64 KiB), so an exit before stdout is
 * drained would show up as a truncated document.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { needs } from '../../helpers/needs.js';
import { petrelctl } from '../../helpers/petrelctl.js';

const skip = needs('etcd', 'bundles');

interface Allocation {
  ip: string;
  handle: string;
  owner: Record<string, string>;
}
interface BlockView {
  cidr: string;
  node: string | null;
  size: number;
  inUse: number;
  free: number;
  allocations: Allocation[];
}
interface PoolView {
  name: string;
  cidr: string;
  blockSize: number;
  disabled: boolean;
  ipipMode: string;
  vxlanMode: string;
  natOutgoing: boolean;
  nodeSelector: string;
  size: string;
  inUse: number;
  blocks: BlockView[];
}
interface ShowJson {
  pools: PoolView[];
  orphanBlocks: BlockView[];
}

const sortedKeys = (o: object) => Object.keys(o).sort();
const POOL_KEYS = [
  'blockSize',
  'blocks',
  'cidr',
  'disabled',
  'inUse',
  'ipipMode',
  'name',
  'natOutgoing',
  'nodeSelector',
  'size',
  'vxlanMode',
];
const BLOCK_KEYS = ['allocations', 'cidr', 'free', 'inUse', 'node', 'size'];

/** Parses the whole document and checks every object's shape and internal arithmetic. */
function parseShow(stdout: string): ShowJson {
  assert.ok(stdout.endsWith('\n'), `output ends with a newline (not cut off): ...${stdout.slice(-40)}`);
  const u = JSON.parse(stdout) as ShowJson;
  assert.deepEqual(sortedKeys(u), ['orphanBlocks', 'pools']);
  assert.ok(Array.isArray(u.pools) && Array.isArray(u.orphanBlocks));
  for (const p of u.pools) {
    assert.deepEqual(sortedKeys(p), POOL_KEYS, `pool ${p.name} keys`);
    assert.match(p.size, /^\d+$/, 'pool size is a decimal string');
    assert.equal(typeof p.inUse, 'number');
    let sum = 0;
    for (const b of p.blocks) {
      assert.deepEqual(sortedKeys(b), BLOCK_KEYS, `block ${b.cidr} keys`);
      assert.equal(
        b.size,
        2 ** ((p.cidr.includes(':') ? 128 : 32) - p.blockSize),
        `${b.cidr}: size of a /${p.blockSize}`,
      );
      assert.equal(b.inUse + b.free, b.size, `${b.cidr}: inUse + free = size`);
      assert.equal(b.allocations.length, b.inUse, `${b.cidr}: one allocation per address in use`);
      for (const a of b.allocations) {
        assert.deepEqual(sortedKeys(a), ['handle', 'ip', 'owner']);
        assert.equal(typeof a.owner.node, 'string');
      }
      sum += b.inUse;
    }
    assert.equal(p.inUse, sum, `pool ${p.name}: inUse is the sum over its blocks`);
  }
  return u;
}

describe('petrelctl ipam show --json: the whole document, counts equal to what was assigned', { skip }, () => {
  let etcd: EtcdHandle;
  let ep: string;
  const ctl = (...a: string[]) => petrelctl(ep, ...a);
  /** ip -> { handle, node, pool } as assigned by this test. */
  const assigned = new Map<string, { handle: string; node: string; pool: string; pod?: string }>();

  async function assign(node: string, handle: string, extra: string[], pod?: string): Promise<string[]> {
    const args = ['ipam', 'assign', '--node', node, '--handle', handle, ...extra, '--json'];
    if (pod) args.push('--pod', pod, '--namespace', 'prod');
    const r = await ctl(...args);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ip: string; pool: string }[];
    for (const a of out) {
      assert.ok(!assigned.has(a.ip), `${a.ip} assigned twice`);
      assigned.set(a.ip, { handle, node, pool: a.pool, ...(pod ? { pod } : {}) });
    }
    return out.map((a) => a.ip);
  }

  /** Checks the show document against `assigned`, address by address. */
  function matchesAssigned(u: ShowJson): void {
    assert.deepEqual(u.orphanBlocks, []);
    const seen = new Map<string, { alloc: Allocation; pool: string; block: BlockView }>();
    for (const p of u.pools)
      for (const b of p.blocks)
        for (const a of b.allocations) {
          assert.ok(!seen.has(a.ip), `${a.ip} listed twice`);
          seen.set(a.ip, { alloc: a, pool: p.name, block: b });
        }
    assert.deepEqual([...seen.keys()].sort(), [...assigned.keys()].sort(), 'exactly the assigned addresses');
    for (const [ip, want] of assigned) {
      const got = seen.get(ip);
      assert.ok(got);
      assert.equal(got.alloc.handle, want.handle, `${ip}: handle`);
      assert.equal(got.pool, want.pool, `${ip}: pool`);
      assert.equal(got.alloc.owner.node, want.node, `${ip}: owner node`);
      if (want.pod) assert.deepEqual(got.alloc.owner, { node: want.node, pod: want.pod, namespace: 'prod' });
      // Auto-assigned addresses come from a block affine to their node (static ones may not).
      if (!want.handle.startsWith('static')) assert.equal(got.block.node, want.node, `${ip}: block node`);
    }
    for (const p of u.pools) {
      const n = [...assigned.values()].filter((a) => a.pool === p.name).length;
      assert.equal(p.inUse, n, `pool ${p.name}: inUse equals the addresses assigned in it`);
    }
  }

  before(async () => {
    etcd = await startEtcd();
    ep = etcd.endpoint;
    for (const args of [
      ['big', '--cidr', '10.100.0.0/20', '--block-size', '26'],
      ['v6', '--cidr', 'fd00:100::/112', '--block-size', '122'],
      ['idle', '--cidr', '10.101.0.0/24', '--node-selector', '!all()'],
    ]) {
      const r = await ctl('ipam', 'pool', 'add', ...(args as [string, ...string[]]));
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => {
    await etcd?.destroy();
  });

  test('assignments across nodes, families and a static address: every count matches', async () => {
    await assign('node-1', 'net.bulk1', ['--num', '300', '--pool', 'big']);
    await assign('node-2', 'net.bulk2', ['--num', '250', '--num6', '70']);
    for (let i = 0; i < 5; i++) await assign('node-3', `net.pod${i}`, ['--num', '1', '--num6', '1'], `web-${i}`);
    await assign('node-3', 'static.a', ['--ip', '10.100.15.200']);
    const r = await ctl('ipam', 'show', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 65_536, `output of ${r.stdout.length} bytes is larger than a pipe buffer`);
    const u = parseShow(r.stdout);
    matchesAssigned(u);
    const big = u.pools.find((p) => p.name === 'big');
    assert.equal(big?.size, '4096');
    assert.equal(big?.inUse, 300 + 250 + 5 + 1);
    assert.equal(u.pools.find((p) => p.name === 'v6')?.inUse, 75);
    assert.deepEqual(u.pools.find((p) => p.name === 'idle')?.blocks, [], 'a pool nobody uses has no blocks');
    assert.equal(u.pools.find((p) => p.name === 'idle')?.inUse, 0);
    // node-1's 300 IPv4 addresses need ceil(300/64) = 5 blocks of its own.
    assert.equal(big?.blocks.filter((b) => b.node === 'node-1').length, 5);
  });

  test('after releases (by handle and by address) the counts follow', async () => {
    let r = await ctl('ipam', 'release', '--handle', 'net.bulk1', '--json');
    assert.equal(r.code, 0, r.stderr);
    const released = JSON.parse(r.stdout) as string[];
    assert.equal(released.length, 300);
    for (const ip of released) assigned.delete(ip);
    const one = [...assigned].find(([, a]) => a.handle === 'net.pod2' && a.pool === 'v6')?.[0];
    assert.ok(one);
    r = await ctl('ipam', 'release', '--ip', one);
    assert.equal(r.code, 0, r.stderr);
    assigned.delete(one);
    r = await ctl('ipam', 'show', '--json');
    const u = parseShow(r.stdout);
    matchesAssigned(u);
    assert.equal(u.pools.find((p) => p.name === 'v6')?.inUse, 74);
    // Emptied blocks stay the node's (affinity kept) with everything free.
    const n1 = u.pools.find((p) => p.name === 'big')?.blocks.filter((b) => b.node === 'node-1') ?? [];
    assert.equal(n1.length, 5);
    for (const b of n1) assert.deepEqual([b.inUse, b.free, b.allocations.length], [0, 64, 0]);
    r = await ctl('ipam', 'check', '--json');
    assert.deepEqual(JSON.parse(r.stdout), { problems: [] });
  });
});
