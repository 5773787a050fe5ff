/**
 * The e2e test's kubelet half (kubelet.ts), without root: $(VAR) expansion as kubelet does it, and
 * what manifests/30-node.yaml turns into as CRI containers (env, mounts, security context).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../../helpers/petrelctl.js';
import {
  type Container,
  containerEnv,
  expand,
  type NodeContext,
  type PodSpec,
  prepareScript,
  toCri,
} from './kubelet.js';

const ctx: NodeContext = {
  configMaps: { cm: { a: 'A', empty: '' } },
  fields: { 'spec.nodeName': 'node-1', 'status.hostIP': '10.99.0.11' },
  secrets: {},
  emptyDir: '/tmp/empty',
};

test('expand: earlier variables only, $$ escapes, unknown references kept', () => {
  assert.equal(expand('can-reach=$(HOST_IP)', { HOST_IP: '10.0.0.5' }), 'can-reach=10.0.0.5');
  assert.equal(expand('$(NOPE)/$$(HOST_IP)', { HOST_IP: 'x' }), '$(NOPE)/$(HOST_IP)');
  const env = containerEnv(
    {
      name: 'c',
      image: 'i',
      env: [
        { name: 'LATER', value: '$(IP)' },
        { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
        { name: 'AFTER', value: '$(IP)' },
      ],
    },
    ctx,
  );
  assert.deepEqual(env, { LATER: '$(IP)', IP: '10.99.0.11', AFTER: '10.99.0.11' });
});

test('containerEnv: ConfigMap keys (an empty value kept), optional missing key skipped, required one and unknown field refused', () => {
  const c = (env: NonNullable<Container['env']>): Container => ({ name: 'c', image: 'i', env });
  assert.deepEqual(
    containerEnv(
      c([
        { name: 'A', valueFrom: { configMapKeyRef: { name: 'cm', key: 'a' } } },
        { name: 'E', valueFrom: { configMapKeyRef: { name: 'cm', key: 'empty' } } },
        { name: 'O', valueFrom: { configMapKeyRef: { name: 'cm', key: 'nope', optional: true } } },
      ]),
      ctx,
    ),
    { A: 'A', E: '' },
  );
  assert.throws(() =>
    containerEnv(c([{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cm', key: 'nope' } } }]), ctx),
  );
  assert.throws(() => containerEnv(c([{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } }]), ctx));
});

test('prepareScript: hostPath types as kubelet applies them; an unknown type refused', () => {
  const s = prepareScript([
    { path: '/var/run/petrel', type: 'DirectoryOrCreate' },
    { path: '/run/xtables.lock', type: 'FileOrCreate' },
    { path: '/lib/modules', type: '' },
  ]);
  assert.match(s, /mkdir -p -m 0755 '\/var\/run\/petrel'/);
  assert.match(s, /touch '\/run\/xtables.lock'/);
  assert.doesNotMatch(s, /lib\/modules/);
  assert.throws(() => prepareScript([{ path: '/dev/x', type: 'CharDevice' }]));
});

test('manifests/30-node.yaml as CRI containers: privileged agent, hostPath mounts, empty optional Secret, init as root', () => {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'manifests', '30-node.yaml'), 'utf8')).map(
    (d) => d.toJS() as { kind: string; spec: { template: { spec: PodSpec } } },
  );
  const spec = docs.find((d) => d.kind === 'DaemonSet')?.spec.template.spec as PodSpec;
  const cm = parseAllDocuments(readFileSync(join(ROOT, 'manifests', '20-config.yaml'), 'utf8'))[0]?.toJS() as {
    data: Record<string, string>;
  };
  const nctx = { ...ctx, configMaps: { 'petrel-config': cm.data } };
  const agent = toCri(spec.containers.find((c) => c.name === 'petrel-node') as Container, spec, nctx);
  assert.equal(agent.options.privileged, true);
  assert.equal(agent.options.env?.PETREL_NODE_NAME, 'node-1');
  assert.equal(agent.options.env?.PETREL_IP_AUTODETECTION_METHOD, 'can-reach=10.99.0.11');
  assert.deepEqual(
    agent.options.mounts?.find((m) => m.containerPath === '/etc/petrel/etcd-tls'),
    { containerPath: '/etc/petrel/etcd-tls', hostPath: '/tmp/empty', readonly: true },
  );
  assert.ok(agent.options.mounts?.some((m) => m.hostPath === '/var/run/petrel' && !m.readonly));
  assert.ok(agent.prepare.some((p) => p.path === '/run/xtables.lock' && p.type === 'FileOrCreate'));
  const init = toCri((spec.initContainers ?? [])[0] as Container, spec, nctx);
  assert.equal(init.options.runAsUser, 0);
  assert.deepEqual(init.options.command, ['/usr/local/bin/petrel-install-cni']);
  assert.equal(init.options.env?.KUBERNETES_NODE_NAME, 'node-1');
});
