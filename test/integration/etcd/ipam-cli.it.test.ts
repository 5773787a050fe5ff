/**
 * petrelctl ipam end to end against a real etcd: every command, the JSON outputs, and bad input
 * (one clear error line, non-zero exit, and etcd's revision unchanged: nothing was written).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { needs } from '../../helpers/needs.js';
import { petrelctl, run } from '../../helpers/petrelctl.js';
import { scratchDir } from '../../helpers/tmp.js';

const skip = needs('etcd', 'etcdctl', 'bundles');

async function etcdRevision(endpoint: string): Promise<number> {
  const r = await run('etcdctl', ['--endpoints', endpoint, 'get', '--prefix', '/petrel/', '-w', 'json'], {
    ETCDCTL_API: '3',
  });
  assert.equal(r.code, 0, r.stderr);
  return Number((JSON.parse(r.stdout) as { header: { revision: number } }).header.revision);
}

async function etcdGet(endpoint: string, key: string): Promise<string> {
  const r = await run('etcdctl', ['--endpoints', endpoint, 'get', key, '--print-value-only'], { ETCDCTL_API: '3' });
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

describe('petrelctl ipam against real etcd', { skip }, () => {
  let etcd: EtcdHandle;
  let ep: string;
  const ctl = (...a: string[]) => petrelctl(ep, ...a);

  before(async () => {
    etcd = await startEtcd();
    ep = etcd.endpoint;
  });
  after(async () => {
    await etcd?.destroy();
  });

  test('pool add/list, assign (text and JSON), show, release, check', async () => {
    let r = await ctl(
      'ipam',
      'pool',
      'add',
      'default',
      '--cidr',
      '10.244.0.0/16',
      '--ipip-mode',
      'Always',
      '--nat-outgoing',
    );
    assert.equal(r.code, 0, r.stderr);
    r = await ctl('ipam', 'pool', 'add', 'v6', '--cidr', 'fd00:10:244::/56');
    assert.equal(r.code, 0, r.stderr);
    r = await ctl('ipam', 'pool', 'list', '--json');
    const pools = JSON.parse(r.stdout) as { name: string; blockSize: number; ipipMode: string; natOutgoing: boolean }[];
    assert.deepEqual(
      pools.map((p) => [p.name, p.blockSize, p.ipipMode, p.natOutgoing]),
      [
        ['default', 26, 'Always', true],
        ['v6', 122, 'Never', false],
      ],
    );
    // The pool is readable JSON at its documented key.
    assert.equal(JSON.parse(await etcdGet(ep, '/petrel/ipam/v1/pools/default')).cidr, '10.244.0.0/16');

    r = await ctl(
      'ipam',
      'assign',
      '--node',
      'node-1',
      '--handle',
      'net.c1',
      '--num',
      '2',
      '--num6',
      '1',
      '--pod',
      'web',
      '--namespace',
      'prod',
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3, 'one address per line');
    assert.equal(lines.filter((l) => l.includes(':')).length, 1);

    r = await ctl('ipam', 'assign', '--node', 'node-2', '--handle', 'net.c2', '--json');
    const [a2] = JSON.parse(r.stdout) as { ip: string; block: string; pool: string }[];
    assert.ok(a2);
    assert.equal(a2.pool, 'default');
    const block = JSON.parse(await etcdGet(ep, `/petrel/ipam/v1/blocks/${a2.block.replace('/', '-')}`));
    assert.equal(block.affinity, 'host:node-2');
    assert.equal(block.cidr, a2.block);
    assert.deepEqual(JSON.parse(await etcdGet(ep, '/petrel/ipam/v1/handles/net.c2')), { blocks: { [a2.block]: 1 } });
    assert.deepEqual(JSON.parse(await etcdGet(ep, `/petrel/ipam/v1/affinities/node-2/${a2.block.replace('/', '-')}`)), {
      state: 'confirmed',
    });

    r = await ctl('ipam', 'show', '--json');
    const u = JSON.parse(r.stdout) as {
      pools: {
        name: string;
        inUse: number;
        blocks: { node: string; allocations: { ip: string; handle: string; owner: Record<string, string> }[] }[];
      }[];
    };
    const def = u.pools.find((p) => p.name === 'default')!;
    assert.equal(def.inUse, 3);
    const allocs = def.blocks.flatMap((b) => b.allocations);
    assert.deepEqual(allocs.find((a) => a.handle === 'net.c1')?.owner, {
      pod: 'web',
      namespace: 'prod',
      node: 'node-1',
    });
    r = await ctl('ipam', 'show');
    assert.match(r.stdout, /POOL\s+CIDR/);
    assert.match(r.stdout, /net\.c1\s+node-1\s+prod\s+web/);

    r = await ctl('ipam', 'release', '--ip', a2.ip);
    assert.equal(r.stdout.trim(), a2.ip);
    r = await ctl('ipam', 'release', '--ip', a2.ip);
    assert.equal(r.code, 0, 'release is idempotent');
    assert.equal(r.stdout.trim(), 'nothing to release');
    r = await ctl('ipam', 'release', '--handle', 'net.c1', '--json');
    assert.equal((JSON.parse(r.stdout) as string[]).length, 3);
    r = await ctl('ipam', 'check', '--json');
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(JSON.parse(r.stdout), { problems: [] });
  });

  test('bad input: one clear error line, non-zero exit, nothing written', async () => {
    await ctl('ipam', 'pool', 'add', 'base', '--cidr', '10.50.0.0/16');
    await ctl('ipam', 'assign', '--node', 'n1', '--handle', 'taken', '--ip', '10.50.0.10');
    const cases: [string, string[], RegExp][] = [
      ['invalid CIDR', ['ipam', 'pool', 'add', 'x', '--cidr', '10.1.0.0/33'], /prefix length/],
      ['host bits', ['ipam', 'pool', 'add', 'x', '--cidr', '10.1.0.1/16'], /host bits/],
      ['overlapping pool', ['ipam', 'pool', 'add', 'x', '--cidr', '10.50.128.0/17'], /overlaps pool base/],
      [
        'pool smaller than a block',
        ['ipam', 'pool', 'add', 'x', '--cidr', '10.60.0.0/28'],
        /smaller than one \/26 block/,
      ],
      [
        'bad ipip mode',
        ['ipam', 'pool', 'add', 'x', '--cidr', '10.61.0.0/16', '--ipip-mode', 'Sometimes'],
        /ipipMode must be/,
      ],
      [
        'bad selector',
        ['ipam', 'pool', 'add', 'x', '--cidr', '10.62.0.0/16', '--node-selector', "zone = 'a'"],
        /invalid selector/,
      ],
      ['unknown pool', ['ipam', 'assign', '--node', 'n1', '--handle', 'h', '--pool', 'nope'], /no pool named nope/],
      ['unknown pool rm', ['ipam', 'pool', 'rm', 'nope'], /no pool named nope/],
      [
        'IP outside every pool',
        ['ipam', 'assign', '--node', 'n1', '--handle', 'h', '--ip', '192.0.2.1'],
        /not in any IP pool/,
      ],
      [
        'IP already taken',
        ['ipam', 'assign', '--node', 'n1', '--handle', 'h', '--ip', '10.50.0.10'],
        /already assigned \(handle taken\)/,
      ],
      ['pool in use', ['ipam', 'pool', 'rm', 'base'], /still has 1 assigned/],
      ['bad handle', ['ipam', 'assign', '--node', 'n1', '--handle', 'a/b'], /invalid handle/],
      ['release needs one selector', ['ipam', 'release'], /exactly one of --handle or --ip/],
    ];
    for (const [name, args, re] of cases) {
      const rev = await etcdRevision(ep);
      const r = await ctl(...args);
      assert.equal(r.code, 1, `${name}: exit code (stderr: ${r.stderr})`);
      const errLines = r.stderr.trim().split('\n');
      assert.equal(errLines.length, 1, `${name}: exactly one error line, got ${JSON.stringify(r.stderr)}`);
      assert.match(errLines[0]!, /^petrelctl: error: /, name);
      assert.match(errLines[0]!, re, name);
      assert.equal(await etcdRevision(ep), rev, `${name}: etcd unchanged`);
    }
    const usage = await ctl('ipam', 'frobnicate');
    assert.equal(usage.code, 2, 'usage errors exit 2');
  });

  test('exhausted pool: error, and the partial assignment is rolled back', async () => {
    await ctl(
      'ipam',
      'pool',
      'add',
      'small',
      '--cidr',
      '10.70.0.0/30',
      '--block-size',
      '30',
      '--node-selector',
      '!all()',
    );
    let r = await ctl('ipam', 'assign', '--node', 'n1', '--handle', 'fill', '--pool', 'small', '--num', '3');
    assert.equal(r.code, 0, r.stderr);
    const rev = await etcdRevision(ep);
    r = await ctl('ipam', 'assign', '--node', 'n1', '--handle', 'more', '--pool', 'small', '--num', '2');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /assigned 1 of 2 requested IPv4 addresses: no free addresses in pools \[small\]/);
    r = await ctl('ipam', 'assign', '--node', 'n1', '--handle', 'more', '--pool', 'small', '--num', '1');
    assert.equal(r.code, 0, 'the address taken by the failed call was given back');
    assert.ok((await etcdRevision(ep)) > rev);
  });

  test('corrupted value in etcd: clear error, value untouched, check reports it', async () => {
    await ctl('ipam', 'pool', 'add', 'cor', '--cidr', '10.80.0.0/24', '--node-selector', '!all()');
    const r0 = await ctl('ipam', 'assign', '--node', 'nc', '--handle', 'hc', '--pool', 'cor', '--json');
    const [a] = JSON.parse(r0.stdout) as { block: string }[];
    const key = `/petrel/ipam/v1/blocks/${a!.block.replace('/', '-')}`;
    const put = await run('etcdctl', ['--endpoints', ep, 'put', key, '{"cidr": truncated'], { ETCDCTL_API: '3' });
    assert.equal(put.code, 0);
    const rev = await etcdRevision(ep);
    const r = await ctl('ipam', 'assign', '--node', 'nc', '--handle', 'hc2', '--pool', 'cor');
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`corrupted value at ${key}: not JSON`));
    assert.equal(await etcdRevision(ep), rev, 'nothing written');
    const c = await ctl('ipam', 'check', '--json');
    assert.equal(c.code, 3);
    const problems = (JSON.parse(c.stdout) as { problems: { kind: string; key: string }[] }).problems;
    assert.ok(problems.some((p) => p.kind === 'corrupt-value' && p.key === key));
    // Repair for the following tests: remove the broken block and its handle and affinity.
    await run('etcdctl', ['--endpoints', ep, 'del', key], { ETCDCTL_API: '3' });
    await run('etcdctl', ['--endpoints', ep, 'del', '/petrel/ipam/v1/handles/hc'], { ETCDCTL_API: '3' });
    await run('etcdctl', ['--endpoints', ep, 'del', `/petrel/ipam/v1/affinities/nc/${a!.block.replace('/', '-')}`], {
      ETCDCTL_API: '3',
    });
  });

  test('gc with a live-owners file releases dead pods only; dry run changes nothing', async () => {
    await ctl('ipam', 'pool', 'add', 'gcp', '--cidr', '10.90.0.0/24', '--node-selector', '!all()');
    await ctl(
      'ipam',
      'assign',
      '--node',
      'g1',
      '--handle',
      'alive',
      '--pool',
      'gcp',
      '--pod',
      'a',
      '--namespace',
      'ns',
    );
    await ctl('ipam', 'assign', '--node', 'g1', '--handle', 'gone', '--pool', 'gcp', '--pod', 'b', '--namespace', 'ns');
    const file = join(scratchDir('live'), 'owners.json');
    writeFileSync(file, JSON.stringify({ pods: ['ns/a'] }));
    let r = await ctl('ipam', 'gc', '--live-owners', file, '--grace', '0', '--dry-run', '--json');
    assert.equal(r.code, 0, r.stderr);
    const dry = JSON.parse(r.stdout) as { released: { handle: string }[] };
    assert.ok(dry.released.some((x) => x.handle === 'gone'));
    assert.ok(!dry.released.some((x) => x.handle === 'alive'));
    r = await ctl('ipam', 'show', '--json');
    assert.match(r.stdout, /"gone"/, 'dry run kept it');
    r = await ctl('ipam', 'gc', '--live-owners', file, '--grace', '3600', '--json');
    assert.ok(
      !(JSON.parse(r.stdout) as { released: { handle: string }[] }).released.some((x) => x.handle === 'gone'),
      'grace period protects fresh allocations',
    );
    r = await ctl('ipam', 'gc', '--live-owners', file, '--grace', '0');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /released .* \(handle gone\)/);
    r = await ctl('ipam', 'show', '--json');
    assert.doesNotMatch(r.stdout, /"gone"/);
    assert.match(r.stdout, /"alive"/);
  });

  test('unreachable etcd is reported within the timeout, never a hang', async () => {
    const t0 = performance.now();
    const r = await petrelctl('http://127.0.0.1:9', '--etcd-timeout-ms', '1000', 'ipam', 'pool', 'list');
    const ms = performance.now() - t0;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^petrelctl: error: etcd at http:\/\/127\.0\.0\.1:9 (did not answer|failed)/);
    // A bound on "no hang" (without the timeout it would wait forever), not a speed target: wide
    // enough for a loaded 2-core machine where the process start alone can take seconds.
    assert.ok(ms < 20_000, `took ${ms} ms`);
  });

  test('etcdctl get --prefix /petrel/ shows only documented keys', async () => {
    const r = await run('etcdctl', ['--endpoints', ep, 'get', '--prefix', '/petrel/', '--keys-only'], {
      ETCDCTL_API: '3',
    });
    const keys = r.stdout.split('\n').filter(Boolean);
    assert.ok(keys.length > 5);
    const documented = [
      /^\/petrel\/ipam\/v1\/pools\/[\w.-]+$/,
      /^\/petrel\/ipam\/v1\/blocks\/[\d.a-f:]+-\d+$/,
      /^\/petrel\/ipam\/v1\/affinities\/[\w.-]+\/[\d.a-f:]+-\d+$/,
      /^\/petrel\/ipam\/v1\/handles\/[\w.:-]+$/,
      /^\/petrel\/ipam\/v1\/config$/,
      /^\/petrel\/ipam\/v1\/meta\/pools-epoch$/,
      /^\/petrel\/nodes\/[\w.-]+$/,
    ];
    for (const k of keys)
      assert.ok(
        documented.some((re) => re.test(k)),
        `undocumented key ${k}`,
      );
  });
});
