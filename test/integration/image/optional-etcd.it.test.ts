/**
 * manifests/optional/etcd.yaml run the way kubelet would run it, from the YAML: the container's
 * command and args with $(VAR) expanded from its downward-API environment, the hostPath data volume
 * mounted at its mountPath (here: that path mapped onto a scratch directory), the host network of a
 * "control-plane" namespace. The image's etcd (/usr/local/bin/etcd) is the host's etcd binary (no
 * registry here). Then: the probes' /health answers on the probes' host and port, a Petrel node in
 * another namespace uses it at http://<node IP>:6666 (the endpoint the YAML tells operators to set),
 * and the records survive a restart (they are in the hostPath directory).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDocument } from 'yaml';
import { BIN_DIR } from '../../helpers/bins.js';
import { needs } from '../../helpers/needs.js';
import { createNetns, type Netns, vethBetween } from '../../helpers/netns.js';
import { type Daemon, waitFor } from '../../helpers/process.js';
import { scratchDir } from '../../helpers/tmp.js';
import { type Container, containerEnv, expand, type Volume } from './kubelet.js';

const YAML = new URL('../../../../manifests/optional/etcd.yaml', import.meta.url).pathname;
const NODE_IP = '10.88.0.1';
const WORKER_IP = '10.88.0.2';

interface Probe {
  httpGet: { host: string; path: string; port: number };
}

describe('optional etcd manifest, run from its YAML', { skip: needs('root', 'netns', 'etcd') }, () => {
  const ds = parseDocument(readFileSync(YAML, 'utf8')).toJS() as {
    spec: {
      template: {
        spec: {
          hostNetwork: boolean;
          containers: (Container & { livenessProbe: Probe; readinessProbe: Probe })[];
          volumes: Volume[];
        };
      };
    };
  };
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];
  let cp: Netns;
  let worker: Netns;
  let etcd: Daemon | undefined;
  let argv: string[] = [];

  before(async () => {
    assert.ok(c && pod.hostNetwork, 'one host-network container');
    cp = await createNetns('cp');
    worker = await createNetns('wk');
    await vethBetween(cp, worker, { aName: 'eth0', bName: 'eth0', aAddr: `${NODE_IP}/24`, bAddr: `${WORKER_IP}/24` });
    const env = containerEnv(c, {
      configMaps: {},
      fields: { 'spec.nodeName': 'cp-1', 'status.hostIP': NODE_IP },
      secrets: {},
      emptyDir: '',
    });
    // The data volume: a hostPath, mounted where --data-dir points.
    const mount = c.volumeMounts?.[0];
    const vol = pod.volumes.find((v) => v.name === mount?.name);
    assert.equal(vol?.hostPath?.type, 'DirectoryOrCreate');
    const args = (c.args ?? []).map((a) => expand(a, env));
    assert.ok(args.includes(`--data-dir=${mount?.mountPath}`), `--data-dir is the mounted hostPath: ${args.join(' ')}`);
    assert.ok(!args.some((a) => a.includes('$(')), `every $(VAR) expanded: ${args.join(' ')}`);
    assert.deepEqual(c.command, ['/usr/local/bin/etcd']);
    const hostData = scratchDir('etcd-hostpath');
    argv = args.map((a) => (a === `--data-dir=${mount?.mountPath}` ? `--data-dir=${hostData}` : a));
  });
  after(async () => {
    await etcd?.stop();
    await worker?.delete();
    await cp?.delete();
  });

  const start = async () => {
    etcd = cp.spawn('etcd', argv);
    const d = etcd;
    const probe = c?.readinessProbe.httpGet;
    await waitFor(
      'readiness probe',
      async () => {
        if (d.exited()) throw new Error(`etcd exited: ${d.output()}`);
        const r = await cp.exec(process.execPath, [
          '-e',
          // node:http, not fetch: fetch refuses port 6666 (one of the Fetch standard's "bad ports").
          `require('node:http').get('http://${probe?.host}:${probe?.port}${probe?.path}', (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(r.statusCode, b)); }).on('error', () => console.log('down'))`,
        ]);
        return r.stdout.startsWith('200') && r.stdout.includes('"health":"true"');
      },
      30_000,
    );
  };
  const petrelctl = (...a: string[]) =>
    worker.exec(process.execPath, [join(BIN_DIR, 'petrelctl'), '--etcd-endpoints', `http://${NODE_IP}:6666`, ...a]);

  test('the probes answer, a Petrel node elsewhere keeps its records in it, and they survive a restart', async () => {
    assert.deepEqual(c?.livenessProbe.httpGet, c?.readinessProbe.httpGet);
    await start();
    const add = await petrelctl('ipam', 'pool', 'add', 'default', '--cidr', '10.244.0.0/16');
    assert.equal(add.code, 0, add.stderr);
    const assign = await petrelctl('ipam', 'assign', '--handle', 'h1', '--node', 'w1');
    assert.equal(assign.code, 0, assign.stderr);
    // The client URL it advertises is the node's IP (what etcd_endpoints must name).
    const members = await worker.exec('etcdctl', ['--endpoints', `http://${NODE_IP}:6666`, 'member', 'list'], {
      env: { ETCDCTL_API: '3', PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    assert.match(
      members.stdout,
      new RegExp(`cp-1, http://127\\.0\\.0\\.1:6667, http://${NODE_IP.replace(/\./g, '\\.')}:6666`),
    );
    await etcd?.stop();
    await start();
    const show = await petrelctl('ipam', 'show', '--json');
    assert.equal(show.code, 0, show.stderr);
    const u = JSON.parse(show.stdout) as { pools: { name: string; blocks: { allocations: { handle: string }[] }[] }[] };
    assert.deepEqual(
      u.pools.map((p) => `${p.name} ${p.blocks.flatMap((b) => b.allocations.map((a) => a.handle)).join(',')}`),
      ['default h1'],
    );
  });
});
