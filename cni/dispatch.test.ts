import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../agent/common/logger.js';
import { cmdAdd } from './commands/add.js';
import { cmdCheck } from './commands/check.js';
import { cmdDel } from './commands/del.js';
import { cmdGc } from './commands/gc.js';
import { cmdStatus } from './commands/status.js';
import type { PluginRunner } from './delegate.js';
import { dispatch, type PluginCommands } from './dispatch.js';
import { CniCode, CniError } from './errors.js';
import { FakeIpamClient } from './fake-ipam-client.js';
import { FakeNetns, type FakeOp } from './fake-netns.js';
import { ipamPluginCommands } from './ipam-plugin.js';
import { IpError } from './netns.js';

const petrel: PluginCommands = {
  component: 'cni',
  ADD: cmdAdd,
  DEL: cmdDel,
  CHECK: cmdCheck,
  STATUS: cmdStatus,
  GC: cmdGc,
};
const NETNS = '/var/run/netns/pod1';

class FakeRunner implements PluginRunner {
  readonly calls: string[] = [];
  fail: CniError | undefined;
  result: unknown = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.5/24', gateway: '10.9.0.1' }] };
  async exec(type: string, command: string): Promise<unknown> {
    this.calls.push(`${type} ${command}`);
    if (this.fail) throw this.fail;
    return command === 'ADD' ? this.result : undefined;
  }
}

function world() {
  const netns = new FakeNetns();
  netns.netnsPaths.add(NETNS);
  const ipam = new FakeIpamClient();
  const runner = new FakeRunner();
  const deps = { netns, runner, makeIpam: () => ipam, makeLogger: () => silentLogger };
  const env = (command: string, over: Record<string, string> = {}) => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: 'c1',
    CNI_NETNS: NETNS,
    CNI_IFNAME: 'eth0',
    CNI_ARGS: 'K8S_POD_NAME=p;IgnoreUnknown=1;K8S_POD_NAMESPACE=ns',
    CNI_PATH: '/opt/cni/bin',
    ...over,
  });
  const conf = (over: Record<string, unknown> = {}) =>
    JSON.stringify({ cniVersion: '1.0.0', name: 'net', type: 'petrel', ipam: { type: 'petrel-ipam' }, ...over });
  const run = (command: string, stdin = conf(), over: Record<string, string> = {}, cmds = petrel) =>
    dispatch({ env: env(command, over), stdin }, cmds, deps);
  return { netns, ipam, runner, run, conf };
}

const parse = (s: string) => JSON.parse(s) as Record<string, unknown>;

test('ADD: result names host veth and pod interface, ips point at the pod interface', async () => {
  const w = world();
  const out = await w.run('ADD');
  assert.equal(out.exitCode, 0, out.stdout);
  const r = parse(out.stdout) as {
    interfaces: { name: string; sandbox?: string }[];
    ips: { address: string; interface: number; gateway: string }[];
  };
  assert.equal(r.interfaces[1]?.name, 'eth0');
  assert.equal(r.interfaces[1]?.sandbox, NETNS);
  assert.equal(r.interfaces[0]?.sandbox, undefined);
  assert.deepEqual(r.ips, [{ interface: 1, address: '10.1.0.1/32', gateway: '169.254.1.1' }]);
  assert.deepEqual(w.ipam.ipam.held().get('net.c1'), ['10.1.0.1']);
  assert.ok(w.netns.hostLinks.has(r.interfaces[0]?.name ?? ''));
  assert.equal(w.netns.sysctls.get(`ipv4/conf/${r.interfaces[0]?.name}/proxy_arp`), '1');
  assert.ok(w.ipam.closed, 'agent connection closed');
});

test('ADD twice: same address, stale host veth replaced', async () => {
  const w = world();
  const a = parse((await w.run('ADD')).stdout) as { ips: { address: string }[] };
  const b = await w.run('ADD');
  assert.equal(b.exitCode, 0, b.stdout);
  assert.deepEqual((parse(b.stdout) as { ips: { address: string }[] }).ips, a.ips);
  const hostBatches = w.netns.calls.filter((c) => c.op === 'hostBatch');
  assert.match(hostBatches.at(-1)?.lines[0] ?? '', /^link del petr/);
  assert.equal(w.netns.hostLinks.size, 1);
});

const FAILURES: { op: FakeOp; err?: Error }[] = [
  { op: 'hostBatch' },
  { op: 'hostBatch', err: new IpError('exists', 2, 'link add', 'RTNETLINK answers: File exists') },
  { op: 'podBatch' },
  { op: 'hostSysctl', err: Object.assign(new Error('EACCES'), { code: 'EACCES' }) },
];
for (const f of FAILURES) {
  test(`ADD failing at ${f.op} (${f.err?.message ?? 'injected'}) rolls back veth and address`, async () => {
    const w = world();
    w.netns.failNext(f.op, f.err);
    const out = await w.run('ADD');
    assert.equal(out.exitCode, 1);
    const e = parse(out.stdout);
    assert.equal(typeof e.code, 'number');
    assert.equal(e.cniVersion, '1.0.0');
    assert.equal(w.netns.hostLinks.size, 0, 'no host veth left');
    assert.equal(w.ipam.ipam.held().size, 0, 'address released');
  });
}

test('ADD with the agent unreachable: code 11 naming the socket, nothing created', async () => {
  const w = world();
  w.ipam.failNext('assign');
  const out = await w.run('ADD');
  const e = parse(out.stdout);
  assert.equal(e.code, 11);
  assert.match(String(e.msg), /fake\.sock/);
  assert.equal(w.netns.calls.length, 0);
});

test('ADD when release during rollback also fails still reports the original error', async () => {
  const w = world();
  w.netns.failNext('podBatch');
  w.ipam.failNext('release');
  const e = parse((await w.run('ADD')).stdout);
  assert.equal(e.code, CniCode.Internal);
  assert.match(String(e.msg), /setup failed \(pod\)/);
});

test('DEL is idempotent: no netns, no prevResult, nothing allocated', async () => {
  const w = world();
  await w.run('ADD');
  const del1 = await w.run('DEL', w.conf(), { CNI_NETNS: '' });
  assert.deepEqual(del1, { stdout: '', exitCode: 0 });
  assert.equal(w.ipam.ipam.held().size, 0);
  assert.equal(w.netns.hostLinks.size, 0, 'host veth removed by name (alias matched)');
  assert.deepEqual(await w.run('DEL', w.conf(), { CNI_NETNS: '/var/run/netns/gone' }), { stdout: '', exitCode: 0 });
});

test('DEL does not delete a host veth whose alias belongs to another container', async () => {
  const w = world();
  await w.run('ADD', w.conf(), { CNI_CONTAINERID: 'new-sandbox' });
  const out = await w.run('DEL', w.conf(), { CNI_CONTAINERID: 'old-sandbox', CNI_NETNS: '' });
  assert.equal(out.exitCode, 0);
  assert.equal(w.netns.hostLinks.size, 1);
});

test('DEL with the agent unreachable fails with 11 (the runtime retries) after removing the veth', async () => {
  const w = world();
  await w.run('ADD');
  w.ipam.failNext('release');
  const e = parse((await w.run('DEL', w.conf(), { CNI_NETNS: '' })).stdout);
  assert.equal(e.code, 11);
  assert.equal(w.netns.hostLinks.size, 0);
});

test('delegated IPAM: ADD runs the delegate, rollback runs its DEL', async () => {
  const w = world();
  const conf = w.conf({ ipam: { type: 'host-local' } });
  const ok = parse((await w.run('ADD', conf)).stdout) as { ips: { address: string }[] };
  assert.deepEqual(
    ok.ips.map((i) => i.address),
    ['10.9.0.5/32'],
  );
  w.netns.failNext('podBatch');
  assert.equal((await w.run('ADD', conf, { CNI_CONTAINERID: 'c2' })).exitCode, 1);
  assert.deepEqual(w.runner.calls, ['host-local ADD', 'host-local ADD', 'host-local DEL']);
  w.runner.fail = new CniError(7, 'bad range', 'details');
  assert.deepEqual(parse((await w.run('ADD', conf)).stdout), {
    cniVersion: '1.0.0',
    code: 7,
    msg: 'bad range',
    details: 'details',
  });
});

test('error codes and the version they are printed in', async () => {
  const w = world();
  assert.equal(parse((await w.run('ADD', w.conf({ cniVersion: '0.2.0' }))).stdout).code, 1);
  assert.equal(parse((await w.run('ADD', w.conf({ ipMasq: true }))).stdout).code, 2);
  assert.equal(parse((await w.run('ADD', w.conf(), { CNI_IFNAME: '' })).stdout).code, 4);
  assert.equal(parse((await w.run('ADD', w.conf(), { CNI_COMMAND: '' })).stdout).code, 4);
  const bad = parse((await w.run('ADD', '{nope')).stdout);
  assert.equal(bad.code, 6);
  assert.equal(bad.cniVersion, '1.1.0');
  const v04 = parse((await w.run('ADD', w.conf({ cniVersion: '0.4.0', name: '-bad' }))).stdout);
  assert.deepEqual([v04.code, v04.cniVersion], [7, '0.4.0']);
});

test('CHECK: version gate, prevResult required, unknown container is 3, differences are 101', async () => {
  const w = world();
  const res = parse((await w.run('ADD')).stdout);
  assert.equal(parse((await w.run('CHECK', w.conf({ cniVersion: '0.3.1' }))).stdout).code, 1);
  assert.equal(parse((await w.run('CHECK')).stdout).code, 7);
  assert.equal(parse((await w.run('CHECK', w.conf({ prevResult: res }), { CNI_CONTAINERID: 'zz' })).stdout).code, 3);
  // The fake kernel has no addresses or routes: every expectation is reported.
  const diff = parse((await w.run('CHECK', w.conf({ prevResult: res }))).stdout);
  assert.equal(diff.code, 101);
});

test('STATUS and GC need 1.1.0; STATUS maps agent failure to 50; GC keeps valid attachments', async () => {
  const w = world();
  const v11 = (o: Record<string, unknown> = {}) => w.conf({ cniVersion: '1.1.0', ...o });
  assert.equal((await w.run('STATUS', v11(), { CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '' })).exitCode, 0);
  assert.equal(parse((await w.run('STATUS')).stdout).code, 1);
  w.ipam.failNext('status');
  assert.equal(parse((await w.run('STATUS', v11())).stdout).code, 50);
  await w.run('ADD', w.conf(), { CNI_CONTAINERID: 'keep' });
  await w.run('ADD', w.conf(), { CNI_CONTAINERID: 'drop' });
  const gc = await w.run('GC', v11({ 'cni.dev/attachments': [{ containerID: 'keep', ifname: 'eth0' }] }));
  assert.equal(gc.exitCode, 0, gc.stdout);
  assert.deepEqual([...w.ipam.ipam.held().keys()], ['net.keep']);
});

test('VERSION echoes the request version and lists all supported versions', async () => {
  const w = world();
  const out = await w.run('VERSION', '{"cniVersion":"0.4.0"}', { CNI_CONTAINERID: '' });
  assert.deepEqual(parse(out.stdout), {
    cniVersion: '0.4.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'],
  });
});

test('petrel-ipam: ADD gives pool prefix and reserved gateway, DEL releases by network+container+ifname', async () => {
  const w = world();
  const out = await w.run('ADD', w.conf({ type: 'ptp' }), {}, ipamPluginCommands);
  assert.equal(out.exitCode, 0, out.stdout);
  const r = parse(out.stdout) as {
    ips: { address: string; gateway: string }[];
    routes: unknown[];
    interfaces?: unknown;
  };
  assert.deepEqual(r.ips, [{ address: '10.1.0.2/24', gateway: '10.1.0.1' }]);
  assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0' }]);
  assert.equal(r.interfaces, undefined);
  assert.deepEqual(w.ipam.ipam.held().get('net.c1.eth0'), ['10.1.0.2']);
  assert.equal((await w.run('CHECK', w.conf({ prevResult: r }), {}, ipamPluginCommands)).exitCode, 0);
  assert.equal((await w.run('DEL', w.conf(), { CNI_NETNS: '' }, ipamPluginCommands)).exitCode, 0);
  assert.equal(w.ipam.ipam.held().has('net.c1.eth0'), false);
  const unknown = parse((await w.run('CHECK', w.conf({ prevResult: r }), {}, ipamPluginCommands)).stdout);
  assert.equal(unknown.code, 3);
});
