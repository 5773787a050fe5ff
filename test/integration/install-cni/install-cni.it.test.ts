/**
 * petrel-install-cni, the DaemonSet's init container, run as the built executable against real
 * directories (a temp "host"): the shipped plugin executables copied and verified, the conflist
 * rendered and written atomically (temp file + rename: a new inode, no temp file left), a second run
 * changing nothing, a foreign conflist refused with nothing written, an earlier-sorting config
 * reported. The installed plugin then answers VERSION with the installed conflist's petrel entry.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseNetConf } from '../../../cni/netconf.js';
import { needs, type ProbedCapability } from '../../helpers/needs.js';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'petrel-install-cni');
const SEA = join(ROOT, 'dist-sea');
const INSTALL_BINS: ProbedCapability = {
  name: 'install-cni-bins',
  probe: () => {
    for (const f of [BIN, join(SEA, 'petrel'), join(SEA, 'petrel-ipam')])
      if (!existsSync(f)) return `needs ${f} (npm run build; npm run package)`;
    return false;
  },
};
const skip = needs(INSTALL_BINS);

const TEMPLATE = JSON.stringify({
  name: 'k8s-pod-network',
  cniVersion: '1.0.0',
  plugins: [
    {
      type: 'petrel',
      logLevel: '__LOG_LEVEL__',
      mtu: '__CNI_MTU__',
      agentSocket: '__AGENT_SOCKET__',
      ipam: { type: 'petrel-ipam' },
    },
    { type: 'portmap', snat: true, capabilities: { portMappings: true } },
  ],
}).replace('"__CNI_MTU__"', '__CNI_MTU__');

describe('petrel-install-cni', { skip }, () => {
  let host: string;
  let netDir: string;
  let binDir: string;
  before(() => {
    host = mkdtempSync(join(tmpdir(), 'petrel-install-'));
    netDir = join(host, 'etc/cni/net.d');
    binDir = join(host, 'opt/cni/bin');
    mkdirSync(netDir, { recursive: true });
    mkdirSync(binDir, { recursive: true });
  });
  after(() => rmSync(host, { recursive: true, force: true }));

  const run = (over: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [BIN], {
      env: {
        PATH: process.env.PATH ?? '',
        CNI_NET_DIR: netDir,
        CNI_BIN_DIR: binDir,
        PETREL_CNI_SOURCE_DIR: SEA,
        CNI_NETWORK_CONFIG: TEMPLATE,
        KUBERNETES_NODE_NAME: 'node-a',
        CNI_MTU: '1440',
        PETREL_AGENT_SOCKET: '/var/run/petrel/agent.sock',
        ...over,
      },
      encoding: 'utf8',
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const conf = () => join(netDir, '10-petrel.conflist');

  test('first run installs the executables and the conflist; the result is what the plugin parses', () => {
    const r = run();
    assert.equal(r.code, 0, r.stderr);
    for (const name of ['petrel', 'petrel-ipam']) {
      const dst = join(binDir, name);
      assert.ok(readFileSync(dst).equals(readFileSync(join(SEA, name))), `${name} copied byte for byte`);
      assert.equal(statSync(dst).mode & 0o777, 0o755);
      assert.match(r.stdout, new RegExp(`${name}: installed`));
    }
    const list = JSON.parse(readFileSync(conf(), 'utf8')) as { name: string; cniVersion: string; plugins: object[] };
    // What the runtime hands the plugin: the entry plus the list's name and version.
    const nc = parseNetConf(JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] }));
    assert.equal(nc.mtu, 1440);
    assert.equal(nc.agentSocket, '/var/run/petrel/agent.sock');
    assert.deepEqual(
      readdirSync(netDir).filter((n) => n.startsWith('.')),
      [],
      'no temp file left in the net dir',
    );
    // The installed plugin runs: VERSION answers with the spec versions.
    const v = spawnSync(join(binDir, 'petrel'), [], {
      input: JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] }),
      env: { CNI_COMMAND: 'VERSION', PATH: process.env.PATH ?? '' },
      encoding: 'utf8',
    });
    assert.equal(v.status, 0, v.stderr);
    assert.ok((JSON.parse(v.stdout) as { supportedVersions: string[] }).supportedVersions.includes('1.0.0'));
  });

  test('second run changes nothing; a new template replaces the file by rename (new inode)', () => {
    const ino = statSync(conf()).ino;
    const binIno = statSync(join(binDir, 'petrel')).ino;
    const r = run();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /10-petrel\.conflist: unchanged/);
    assert.match(r.stdout, /petrel: unchanged/);
    assert.equal(statSync(conf()).ino, ino);
    assert.equal(statSync(join(binDir, 'petrel')).ino, binIno);
    const r2 = run({ CNI_MTU: '1400' });
    assert.equal(r2.code, 0, r2.stderr);
    assert.notEqual(statSync(conf()).ino, ino, 'replaced by rename, not rewritten in place');
    assert.equal((JSON.parse(readFileSync(conf(), 'utf8')) as { plugins: { mtu: number }[] }).plugins[0]?.mtu, 1400);
  });

  test('a foreign conflist of our name is refused: exit 1, one line, nothing written; forced it is replaced', () => {
    const foreign = '{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[{"type":"calico"}]}\n';
    writeFileSync(conf(), foreign);
    rmSync(join(binDir, 'petrel-ipam'));
    const r = run();
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /10-petrel\.conflist exists and is not Petrel's/);
    assert.equal(readFileSync(conf(), 'utf8'), foreign, 'untouched');
    assert.equal(existsSync(join(binDir, 'petrel-ipam')), false, 'no executable copied either');
    const f = run({ PETREL_INSTALL_FORCE: 'true' });
    assert.equal(f.code, 0, f.stderr);
    assert.ok(readFileSync(conf(), 'utf8').includes('"petrel"'));
    assert.ok(existsSync(join(binDir, 'petrel-ipam')));
  });

  test('bad settings: one line naming the value; an earlier-sorting config is reported', () => {
    for (const [over, re] of [
      [{ CNI_MTU: '9' }, /CNI_MTU="9"/],
      [{ CNI_NETWORK_CONFIG: '{"plugins": [' }, /not valid JSON/],
      [{ PETREL_CNI_SOURCE_DIR: join(host, 'nothing') }, /nothing\/petrel is missing/],
    ] as [Record<string, string>, RegExp][]) {
      const r = run(over);
      assert.equal(r.code, 1, JSON.stringify(over));
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
    writeFileSync(join(netDir, '05-other.conflist'), '{"name":"o","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}');
    const r = run();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /warning: .*05-other\.conflist sorts before 10-petrel\.conflist/);
  });
});
