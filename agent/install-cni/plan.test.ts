import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InstallError, isPetrelConflist, parseSettings, planBinary, planConflist, renderConflist } from './plan.js';

const TEMPLATE = `{
  "name": "k8s-pod-network", "cniVersion": "1.0.0",
  "plugins": [
    { "type": "petrel", "logLevel": "__LOG_LEVEL__", "mtu": __CNI_MTU__, "agentSocket": "__AGENT_SOCKET__",
      "ipam": { "type": "petrel-ipam" }, "node": "__KUBERNETES_NODE_NAME__" },
    { "type": "portmap", "snat": true, "capabilities": { "portMappings": true } }
  ]
}`;
const env = (over: Record<string, string> = {}) => ({
  CNI_NETWORK_CONFIG: TEMPLATE,
  KUBERNETES_NODE_NAME: 'n1',
  ...over,
});
const noFile = () => {
  throw new Error('ENOENT');
};

test('settings: defaults, and every bad value is one InstallError naming it', () => {
  const s = parseSettings(env(), noFile);
  assert.equal(s.netDir, '/host/etc/cni/net.d');
  assert.equal(s.binDir, '/host/opt/cni/bin');
  assert.equal(s.confName, '10-petrel.conflist');
  assert.equal(s.mtu, 0);
  assert.equal(s.updateBinaries, true);
  assert.equal(s.force, false);
  const bad: [Record<string, string | undefined>, RegExp][] = [
    [{ CNI_NETWORK_CONFIG: '' }, /CNI_NETWORK_CONFIG/],
    [{ CNI_NETWORK_CONFIG: '', CNI_NETWORK_CONFIG_FILE: '/nope' }, /CNI_NETWORK_CONFIG_FILE \/nope/],
    [{ KUBERNETES_NODE_NAME: '' }, /KUBERNETES_NODE_NAME/],
    [{ CNI_MTU: '12' }, /CNI_MTU="12"/],
    [{ CNI_MTU: 'big' }, /CNI_MTU="big"/],
    [{ CNI_CONF_NAME: '../x.conflist' }, /CNI_CONF_NAME/],
    [{ CNI_CONF_NAME: '10-petrel.conf' }, /CNI_CONF_NAME/],
    [{ CNI_NET_DIR: 'etc/cni' }, /CNI_NET_DIR="etc\/cni"/],
    [{ UPDATE_CNI_BINARIES: 'maybe' }, /UPDATE_CNI_BINARIES="maybe"/],
    [{ PETREL_INSTALL_FORCE: 'y3s' }, /PETREL_INSTALL_FORCE/],
  ];
  for (const [over, re] of bad) {
    assert.throws(
      () => parseSettings(env(over as Record<string, string>), noFile),
      (e: unknown) => e instanceof InstallError && re.test(e.message) && !e.message.includes('\n'),
      JSON.stringify(over),
    );
  }
  assert.equal(
    parseSettings(env({ CNI_NETWORK_CONFIG: '', CNI_NETWORK_CONFIG_FILE: '/t' }), () => TEMPLATE).template,
    TEMPLATE,
  );
});

test('render: placeholders replaced, JSON checked, a petrel plugin required', () => {
  const s = parseSettings(
    env({ CNI_MTU: '1400', PETREL_AGENT_SOCKET: '/run/p.sock', PETREL_LOG_LEVEL: 'debug' }),
    noFile,
  );
  const r = renderConflist(s);
  assert.deepEqual(r.petrel, {
    type: 'petrel',
    logLevel: 'debug',
    mtu: 1400,
    agentSocket: '/run/p.sock',
    ipam: { type: 'petrel-ipam' },
    node: 'n1',
  });
  assert.ok(r.text.endsWith('\n'));
  const bad: [string, RegExp][] = [
    ['{ "plugins": [ { "type": "petrel" } ', /not valid JSON/],
    ['{ "name": "x", "cniVersion": "1.0.0", "type": "petrel" }', /not a conflist/],
    ['{ "cniVersion": "1.0.0", "plugins": [ { "type": "petrel" } ] }', /no "name"/],
    ['{ "name": "x", "cniVersion": "1.0.0", "plugins": [ { "type": "bridge" } ] }', /no plugin of type "petrel"/],
    [
      '{ "name": "__NETWORK__", "cniVersion": "1.0.0", "plugins": [ { "type": "petrel" } ] }',
      /unknown placeholder __NETWORK__/,
    ],
  ];
  for (const [template, re] of bad)
    assert.throws(
      () => renderConflist({ ...s, template }),
      (e: unknown) => e instanceof InstallError && re.test(e.message),
    );
});

test('conflist plan: write, unchanged, refuse a foreign file unless forced, warn about earlier configs', () => {
  const s = { confName: '10-petrel.conflist', netDir: '/n', force: false };
  const mine = renderConflist(parseSettings(env(), noFile)).text;
  assert.deepEqual(planConflist(s, mine, new Map()), { action: 'write', warnings: [] });
  assert.deepEqual(planConflist(s, mine, new Map([['10-petrel.conflist', mine]])).action, 'unchanged');
  const older = mine.replace('"mtu": 0', '"mtu": 1300');
  assert.equal(planConflist(s, mine, new Map([['10-petrel.conflist', older]])).action, 'write');
  const foreign = '{"name":"k8s","cniVersion":"1.0.0","plugins":[{"type":"calico"}]}';
  assert.throws(
    () => planConflist(s, mine, new Map([['10-petrel.conflist', foreign]])),
    /\/n\/10-petrel\.conflist exists and is not Petrel's/,
  );
  assert.throws(() => planConflist(s, mine, new Map([['10-petrel.conflist', 'garbage']])), /not Petrel's/);
  assert.equal(planConflist({ ...s, force: true }, mine, new Map([['10-petrel.conflist', foreign]])).action, 'write');
  const w = planConflist(
    s,
    mine,
    new Map([
      ['05-cilium.conflist', foreign],
      ['99-loopback.conf', '{}'],
      ['README', ''],
    ]),
  );
  assert.equal(w.warnings.length, 1);
  assert.match(w.warnings[0] ?? '', /05-cilium\.conflist sorts before 10-petrel\.conflist/);
  assert.equal(isPetrelConflist(mine), true);
  assert.equal(isPetrelConflist(foreign), false);
});

test('binary plan', () => {
  const s = { skipBinaries: ['petrel-ipam'], updateBinaries: true };
  assert.equal(planBinary('petrel', s, 'a', undefined), 'copy');
  assert.equal(planBinary('petrel', s, 'a', 'a'), 'unchanged');
  assert.equal(planBinary('petrel', s, 'a', 'b'), 'copy');
  assert.equal(planBinary('petrel', { ...s, updateBinaries: false }, 'a', 'b'), 'kept');
  assert.equal(planBinary('petrel-ipam', s, 'a', undefined), 'skipped');
});
