import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCniArgs, readEnv } from './env.js';
import { CniError } from './errors.js';
import { ciGet, parseNetConf, parsePrevResult } from './netconf.js';

const base = { cniVersion: '1.0.0', name: 'net', type: 'petrel' };
const parse = (o: unknown) => parseNetConf(typeof o === 'string' ? o : JSON.stringify(o));
function code(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, String(err));
    return err.code;
  }
  assert.fail('expected a CniError');
}

test('defaults: agent socket, log level, petrel-ipam assigns IPv4 only', () => {
  const c = parse({ ...base, ipam: { type: 'petrel-ipam' } });
  assert.equal(c.agentSocket, '/var/run/petrel/agent.sock');
  assert.equal(c.logLevel, 'info');
  assert.equal(c.mtu, undefined);
  assert.deepEqual(c.ipam, { type: 'petrel-ipam', assignIpv4: true, assignIpv6: false });
});

const BAD: { name: string; input: unknown; code: number }[] = [
  { name: 'not JSON', input: '{', code: 6 },
  { name: 'not an object', input: '[1]', code: 6 },
  { name: 'version not a string', input: { ...base, cniVersion: 1 }, code: 6 },
  { name: 'version not semver', input: { ...base, cniVersion: '1.0' }, code: 6 },
  { name: 'unsupported version', input: { ...base, cniVersion: '0.2.0' }, code: 1 },
  { name: 'future version', input: { ...base, cniVersion: '1.2.0' }, code: 1 },
  { name: 'missing version', input: { name: 'n', type: 't' }, code: 7 },
  { name: 'bad name', input: { ...base, name: 'a b' }, code: 7 },
  { name: 'no type', input: { ...base, type: '' }, code: 7 },
  { name: 'mtu too small', input: { ...base, mtu: 10 }, code: 7 },
  { name: 'mtu not integer', input: { ...base, mtu: 1400.5 }, code: 7 },
  { name: 'bad log level', input: { ...base, logLevel: 'loud' }, code: 7 },
  { name: 'ipam without type', input: { ...base, ipam: {} }, code: 7 },
  { name: 'ipam pools not strings', input: { ...base, ipam: { type: 'petrel-ipam', pools: [1] } }, code: 7 },
  { name: 'no family', input: { ...base, ipam: { type: 'petrel-ipam', assignIpv4: false } }, code: 7 },
  { name: 'static ip not an ip', input: { ...base, runtimeConfig: { ips: ['banana'] } }, code: 7 },
  { name: 'ipMasq', input: { ...base, ipMasq: true }, code: 2 },
  { name: 'bad prevResult', input: { ...base, prevResult: { ips: [{}] } }, code: 6 },
];
for (const b of BAD)
  test(`${b.name} -> code ${b.code}`, () =>
    assert.equal(
      code(() => parse(b.input)),
      b.code,
    ));

test('runtimeConfig keys match case-insensitively (containerd Go spelling)', () => {
  const c = parse({
    ...base,
    runtimeConfig: { IPs: ['10.0.0.9/24'], DNS: { Servers: ['1.1.1.1'], Searches: ['x'], Options: ['ndots:2'] } },
    args: { cni: { ips: ['fd00::9'] } },
  });
  assert.deepEqual(c.staticIps, ['10.0.0.9', 'fd00::9']);
  assert.deepEqual(c.runtimeDns, { nameservers: ['1.1.1.1'], search: ['x'], options: ['ndots:2'] });
  assert.equal(ciGet({ HostPort: 1 }, 'hostPort'), 1);
});

test('GC attachments under both spellings', () => {
  const a = [{ containerID: 'c', ifname: 'eth0' }];
  assert.deepEqual(parse({ ...base, 'cni.dev/valid-attachments': a }).validAttachments, a);
  assert.deepEqual(parse({ ...base, 'cni.dev/attachments': a }).validAttachments, a);
});

test('prevResult in 0.3.x shape (ips[].version) is read; empty sandbox means host', () => {
  const r = parsePrevResult({
    cniVersion: '0.3.1',
    interfaces: [{ name: 'h' }, { name: 'eth0', sandbox: '/x', mac: 'aa:bb:cc:dd:ee:ff' }, { name: 'z', sandbox: '' }],
    ips: [{ version: '4', address: '10.0.0.1/32', interface: 1 }],
    routes: [{ dst: '0.0.0.0/0', gw: '169.254.1.1' }],
  });
  assert.deepEqual(r.ips, [{ address: '10.0.0.1/32', interface: 1 }]);
  assert.equal(r.interfaces?.[2]?.sandbox, undefined);
});

test('CNI_ARGS: any order, IgnoreUnknown, unknown keys rejected without it', () => {
  assert.deepEqual(parseCniArgs('K8S_POD_UID=u;K8S_POD_NAME=p;IgnoreUnknown=1;FOO=1;K8S_POD_NAMESPACE=n'), {
    ignoreUnknown: true,
    podUid: 'u',
    podName: 'p',
    podNamespace: 'n',
  });
  assert.equal(
    code(() => parseCniArgs('FOO=1')),
    4,
  );
  assert.equal(
    code(() => parseCniArgs('novalue')),
    4,
  );
});

test('environment: required per command, DEL without netns is fine, names the variable', () => {
  const env = { CNI_CONTAINERID: 'c', CNI_NETNS: '/n', CNI_IFNAME: 'eth0' };
  assert.equal(readEnv({ ...env, CNI_NETNS: '' }, 'DEL').netns, '');
  try {
    readEnv({ ...env, CNI_NETNS: '', CNI_IFNAME: '' }, 'ADD');
    assert.fail('expected error');
  } catch (err) {
    assert.ok(err instanceof CniError);
    assert.equal(err.code, 4);
    assert.match(err.msg, /CNI_IFNAME CNI_NETNS/);
  }
  assert.equal(
    code(() => readEnv({ ...env, CNI_IFNAME: 'a-very-long-interface' }, 'ADD')),
    4,
  );
  assert.equal(
    code(() => readEnv({ ...env, CNI_CONTAINERID: '-x' }, 'ADD')),
    4,
  );
  assert.equal(
    code(() => readEnv({ ...env, CNI_NETNS: 'relative' }, 'ADD')),
    4,
  );
  assert.equal(readEnv({}, 'STATUS').containerId, '');
});
