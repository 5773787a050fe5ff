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

/**
 * A delegated-plugin runner: records runs, fails on purpose, and with `hang` set lets the named
 * command hang until the deadline given through withTimeout, then fails as ExecPluginRunner does
 * after killing the child (102).
 */
class FakeRunner implements PluginRunner {
  readonly calls: string[] = [];
  fail: CniError | undefined;
  hang: string | undefined;
  timeoutMs = 0;
  result: unknown = { cniVersion: '1.0.0', ips: [{ address: '10.9.0.5/24', gateway: '10.9.0.1' }] };
  withTimeout(ms: number): FakeRunner {
    this.timeoutMs = ms;
    return this;
  }
  async exec(type: string, command: string): Promise<unknown> {
    this.calls.push(`${type} ${command}`);
    if (this.hang === command) {
      await new Promise((r) => setTimeout(r, this.timeoutMs));
      throw new CniError(CniCode.PluginTimeout, `${type} ${command} did not finish within ${this.timeoutMs} ms`);
    }
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

test('ADD: the ip processes start once the assign request is out, before any wiring; not at all when it failed', async () => {
  const w = world();
  const seen: { sent: string[]; batches: number }[] = [];
  w.netns.onPrepare = () => seen.push({ sent: [...w.ipam.sent], batches: w.netns.calls.length });
  const ok = await w.run('ADD');
  assert.equal(ok.exitCode, 0, ok.stdout);
  assert.deepEqual(w.netns.prepared, [NETNS]);
  assert.deepEqual(seen, [{ sent: ['assign'], batches: 0 }]);
  const v = world();
  v.ipam.failNext('assign');
  const failed = await v.run('ADD');
  assert.equal(parse(failed.stdout).code, 11);
  assert.deepEqual(v.netns.prepared, [], 'nothing spawned for a request that never went out');
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

/** After a failed ADD: no link, route or pod interface left, no address held. */
function assertNothingLeft(w: ReturnType<typeof world>, what: string): void {
  assert.deepEqual(w.netns.leftovers(), [], `${what}: nothing left in the fake kernel`);
  assert.deepEqual([...w.ipam.ipam.held()], [], `${what}: address released`);
}

const FAILURES: { op: FakeOp; err?: Error; code: number; msg: RegExp }[] = [
  { op: 'hostBatch', code: CniCode.Internal, msg: /^pod network setup failed \(create\): ip injected$/ },
  {
    op: 'hostBatch',
    err: new IpError('exists', 2, 'link add', 'RTNETLINK answers: File exists'),
    code: CniCode.Internal,
    msg: /^interface eth0 already exists in \/var\/run\/netns\/pod1 \(or petr[0-9a-f]{11} on the node\)$/,
  },
  {
    op: 'hostBatch',
    err: new IpError('netns-missing', 1, 'link add', 'Cannot open network namespace'),
    code: CniCode.InvalidEnvironment,
    msg: /^invalid environment variable CNI_NETNS$/,
  },
  { op: 'podBatch', code: CniCode.Internal, msg: /^pod network setup failed \(pod\): ip injected$/ },
  {
    op: 'hostSysctl',
    err: Object.assign(new Error('EACCES'), { code: 'EACCES' }),
    code: CniCode.IoFailure,
    msg: /^cannot write host sysctl$/,
  },
];
for (const f of FAILURES) {
  test(`ADD failing at ${f.op} (${f.err?.message ?? 'injected'}) -> code ${f.code}, veth and address rolled back`, async () => {
    const w = world();
    w.netns.failNext(f.op, f.err);
    const out = await w.run('ADD');
    assert.equal(out.exitCode, 1);
    const e = parse(out.stdout);
    assert.equal(e.code, f.code, out.stdout);
    assert.match(String(e.msg), f.msg);
    assert.equal(e.cniVersion, '1.0.0');
    assertNothingLeft(w, f.op);
  });
}

/**
 * `ip -batch` stops at the first failing line with the lines before it applied. For every batch
 * of an ADD and every line in it, fail there and check that the rollback removes what the lines
 * before it created: IPv4, dual stack (two node batches), and a repeated ADD (the batch starts by
 * deleting the stale pair).
 */
const SHAPES = [
  { name: 'IPv4', conf: {} },
  { name: 'dual stack', conf: { ipam: { type: 'petrel-ipam', assignIpv6: true } } },
  { name: 'repeated ADD', conf: {}, repeat: true },
] as const;
for (const shape of SHAPES) {
  test(`ADD (${shape.name}) failing at every line of every ip batch rolls back from there`, async () => {
    // The batches of a successful ADD of this shape.
    const probe = world();
    if ('repeat' in shape) await probe.run('ADD', probe.conf(shape.conf));
    const before = probe.netns.calls.length;
    assert.equal((await probe.run('ADD', probe.conf(shape.conf))).exitCode, 0);
    const batches = probe.netns.calls.slice(before).filter((c) => c.op === 'hostBatch' || c.op === 'podBatch');
    assert.ok(batches.length >= 2, JSON.stringify(batches));
    let cases = 0;
    for (const [bi, b] of batches.entries()) {
      for (let line = 1; line <= b.lines.length; line++) {
        const w = world();
        if ('repeat' in shape) assert.equal((await w.run('ADD', w.conf(shape.conf))).exitCode, 0);
        // Let the batches of the same kind before this one succeed.
        const sameOpBefore = batches.slice(0, bi).filter((x) => x.op === b.op).length;
        const start = w.netns.calls.length;
        const arm = () => w.netns.failAtLine(b.op, line);
        if (sameOpBefore === 0) arm();
        else {
          // Fail the (sameOpBefore+1)-th call of this op: queue successes first by failing later.
          const real = w.netns[b.op].bind(w.netns) as (...a: never[]) => Promise<void>;
          let seen = 0;
          (w.netns as unknown as Record<string, unknown>)[b.op] = (...a: never[]) => {
            if (seen++ === sameOpBefore) arm();
            return real(...a);
          };
        }
        const out = await w.run('ADD', w.conf(shape.conf));
        const what = `${b.op} #${bi} line ${line} (${b.lines[line - 1]})`;
        assert.equal(out.exitCode, 1, what);
        const e = parse(out.stdout);
        assert.equal(e.code, CniCode.Internal, `${what}: ${out.stdout}`);
        assert.match(String(e.msg), /^pod network setup failed \((create|host-up|pod)\): ip line \d+$/, what);
        const failed = w.netns.calls.slice(start).find((c) => c.op === b.op && c.lines.join() === b.lines.join());
        assert.ok(failed, `${what}: the batch ran`);
        assertNothingLeft(w, what);
        cases++;
      }
    }
    // IPv4: node batch of 4 lines (5 when repeated: the stale delete first) + pod batch of 4;
    // dual stack: node create (2) + node host-up (3) + pod (6).
    const expected = { IPv4: 8, 'dual stack': 11, 'repeated ADD': 9 }[shape.name];
    assert.equal(cases, expected, JSON.stringify(batches));
  });
}

test('ADD with a pod batch hanging past ipTimeoutMs -> 102, veth and address rolled back', async () => {
  const w = world();
  w.netns.hangNext('podBatch', 3);
  const t0 = performance.now();
  const out = await w.run('ADD', w.conf({ ipTimeoutMs: 150 }));
  const e = parse(out.stdout);
  assert.equal(e.code, CniCode.PluginTimeout, out.stdout);
  assert.match(String(e.msg), /^pod network setup timed out \(pod\)$/);
  assert.equal(w.netns.timeoutMs, 150, 'the netconf deadline reached the netns boundary');
  assert.ok(performance.now() - t0 >= 140, 'waited for the deadline');
  assertNothingLeft(w, 'hang');
});

test('ADD with the node batch hanging -> 102, nothing left', async () => {
  const w = world();
  w.netns.hangNext('hostBatch', 2);
  const e = parse((await w.run('ADD', w.conf({ ipTimeoutMs: 100 }))).stdout);
  assert.equal(e.code, CniCode.PluginTimeout);
  assert.match(String(e.msg), /^pod network setup timed out \(create\)$/);
  assertNothingLeft(w, 'hang');
});

test('ADD with a delegated IPAM ADD hanging past delegateTimeoutMs -> 102, its DEL runs, nothing left', async () => {
  const w = world();
  w.runner.hang = 'ADD';
  const out = await w.run('ADD', w.conf({ ipam: { type: 'host-local' }, delegateTimeoutMs: 120 }));
  const e = parse(out.stdout);
  assert.equal(e.code, CniCode.PluginTimeout, out.stdout);
  assert.match(String(e.msg), /^host-local ADD did not finish within 120 ms$/);
  assert.equal(w.runner.timeoutMs, 120, 'the netconf deadline reached the runner');
  assert.deepEqual(w.runner.calls, ['host-local ADD', 'host-local DEL'], 'rollback ran the delegate DEL');
  assert.deepEqual(w.netns.calls, [], 'no veth work started');
});

test('netconf deadlines: defaults, bounds (code 7)', async () => {
  const w = world();
  w.runner.hang = undefined;
  await w.run('ADD', w.conf({ ipam: { type: 'host-local' } }));
  assert.equal(w.netns.timeoutMs, 10_000);
  assert.equal(w.runner.timeoutMs, 30_000);
  for (const bad of [{ ipTimeoutMs: 0 }, { delegateTimeoutMs: 'soon' }, { ipTimeoutMs: 1.5 }]) {
    assert.equal(
      parse((await w.run('ADD', w.conf(bad))).stdout).code,
      CniCode.InvalidNetworkConfig,
      JSON.stringify(bad),
    );
  }
});

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
