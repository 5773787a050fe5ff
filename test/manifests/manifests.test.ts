/**
 * The manifests (`kubectl apply -f manifests/`) checked three ways:
 *  1. Every object validates against the Kubernetes OpenAPI schema (kubernetes-models, a
 *     maintained schema library), applied in file-name order.
 *  2. Policy: least-privilege RBAC (no wildcard verbs, resources or groups), the DaemonSet
 *     tolerates every taint, is system-node-critical, rolls one node at a time, probes the agent's
 *     /healthz and /readyz on its --status-listen port.
 *  3. No drift from the programs: the install-cni container's environment (with the ConfigMap and
 *     downward API resolved as the kubelet would) is accepted by install-cni's own settings parser
 *     and renders a conflist the petrel plugin parses; the agent container's environment is
 *     accepted by petrel-agent's config parser and names only flags it knows.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseAgentConfig } from '../../agent/config.js';
import { USAGE as CONTROLLERS_USAGE, parseControllersConfig } from '../../agent/controllers/config.js';
import { parseSettings, renderConflist } from '../../agent/install-cni/plan.js';
import { parseNetConf } from '../../cni/netconf.js';

const DIR = new URL('../../../manifests/', import.meta.url).pathname;
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

/** The objects of the YAML files directly in `dir` (what `kubectl apply -f` applies, in its order). */
function load(dir = DIR): { file: string; obj: Obj }[] {
  const out: { file: string; obj: Obj }[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`);
      const obj = doc.toJS() as Obj | null;
      if (obj) out.push({ file, obj });
    }
  }
  return out;
}

const MODELS: Record<string, string> = {
  'v1/Namespace': 'kubernetes-models/v1/Namespace',
  'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding':
    'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding',
  'rbac.authorization.k8s.io/v1/Role': 'kubernetes-models/rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding',
  'apps/v1/DaemonSet': 'kubernetes-models/apps/v1/DaemonSet',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
};

test('every object validates against the Kubernetes schema; namespaced objects are in petrel-system', async () => {
  const objs = load();
  assert.ok(objs.length >= 6, `${objs.length} objects`);
  assert.equal(objs[0]?.obj.kind, 'Namespace', 'the namespace comes first');
  const optional = load(join(DIR, 'optional'));
  assert.deepEqual(
    optional.map((o) => `${o.file} ${o.obj.kind}/${o.obj.metadata.name}`),
    ['etcd.yaml DaemonSet/petrel-etcd'],
  );
  for (const { file, obj } of [...objs, ...optional]) {
    const key = `${obj.apiVersion}/${obj.kind}`;
    const mod = MODELS[key];
    assert.ok(mod, `${file}: no schema model for ${key}`);
    const m = (await import(mod)) as Record<string, new (o: unknown) => { validate(): void }>;
    const Model = m[obj.kind];
    assert.ok(Model, `${mod} exports ${obj.kind}`);
    assert.doesNotThrow(() => new Model(obj).validate(), `${file}: ${key} ${obj.metadata.name}`);
    if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(obj.kind))
      assert.equal(obj.metadata.namespace, 'petrel-system', `${file}: ${obj.kind} ${obj.metadata.name}`);
  }
  // The validator really rejects a broken object (the check above can fail).
  const { DaemonSet } = (await import('kubernetes-models/apps/v1/DaemonSet')) as unknown as {
    DaemonSet: new (o: unknown) => { validate(): void };
  };
  const ds = structuredClone(objs.find((o) => o.obj.kind === 'DaemonSet')?.obj) as unknown as {
    spec: { template: { spec: { containers: { name: unknown }[] } } };
  };
  (ds.spec.template.spec.containers[0] as { name: unknown }).name = 7;
  assert.throws(() => new DaemonSet(ds).validate());
});

test('RBAC is least privilege: no wildcard verbs, resources or API groups', () => {
  for (const { obj } of load()) {
    if (obj.kind !== 'ClusterRole' && obj.kind !== 'Role') continue;
    for (const r of obj.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
      for (const x of [...r.apiGroups, ...r.resources, ...r.verbs])
        assert.notEqual(x, '*', `${obj.metadata.name}: wildcard`);
      assert.ok(!r.verbs.some((v) => ['delete', 'deletecollection', 'escalate', 'bind', 'impersonate'].includes(v)));
    }
  }
});

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}
interface Container {
  name: string;
  command: string[];
  env: EnvVar[];
  livenessProbe?: { httpGet?: { path: string; port: number; host?: string } };
  readinessProbe?: { httpGet?: { path: string; port: number; host?: string } };
}

function daemonSet() {
  const objs = load();
  const ds = objs.find((o) => o.obj.kind === 'DaemonSet')?.obj as unknown as {
    spec: {
      updateStrategy: { type: string; rollingUpdate: { maxUnavailable: number } };
      template: {
        spec: {
          hostNetwork: boolean;
          priorityClassName: string;
          serviceAccountName: string;
          tolerations: { operator: string; key?: string }[];
          initContainers: Container[];
          containers: Container[];
        };
      };
    };
  };
  const cm = objs.find((o) => o.obj.kind === 'ConfigMap' && o.obj.metadata.name === 'petrel-config')
    ?.obj as unknown as {
    data: Record<string, string>;
  };
  return { ds, cm, objs };
}

/** The container's environment as the kubelet gives it (downward API and ConfigMap resolved, $(VAR) expanded). */
function resolveEnv(c: Container, cm: Record<string, string>): Record<string, string> {
  const field: Record<string, string> = {
    'spec.nodeName': 'node-a',
    'status.hostIP': '10.0.0.5',
    'metadata.name': 'petrel-controllers-7d9f-abcde',
    'metadata.namespace': 'petrel-system',
  };
  const env: Record<string, string> = {};
  for (const e of c.env) {
    let v: string | undefined;
    if (e.value !== undefined) v = e.value.replace(/\$\(([A-Z_][A-Z0-9_]*)\)/g, (m, n: string) => env[n] ?? m);
    else if (e.valueFrom?.fieldRef) v = field[e.valueFrom.fieldRef.fieldPath];
    else if (e.valueFrom?.configMapKeyRef) {
      v = cm[e.valueFrom.configMapKeyRef.key];
      if (v === undefined && !e.valueFrom.configMapKeyRef.optional)
        assert.fail(
          `${c.name}: ${e.name} names ConfigMap key ${e.valueFrom.configMapKeyRef.key}, which does not exist`,
        );
    }
    assert.ok(v !== undefined || e.valueFrom?.configMapKeyRef?.optional, `${c.name}: ${e.name} has no value`);
    if (v !== undefined) env[e.name] = v;
  }
  return env;
}

test('DaemonSet: every node, critical, one node at a time, probes on the status port', () => {
  const { ds, objs } = daemonSet();
  const spec = ds.spec.template.spec;
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.priorityClassName, 'system-node-critical');
  assert.ok(
    spec.tolerations.some((t) => t.operator === 'Exists' && t.key === undefined),
    'tolerates every taint',
  );
  assert.equal(ds.spec.updateStrategy.type, 'RollingUpdate');
  assert.equal(ds.spec.updateStrategy.rollingUpdate.maxUnavailable, 1);
  assert.ok(objs.some((o) => o.obj.kind === 'ServiceAccount' && o.obj.metadata.name === spec.serviceAccountName));
  const agent = spec.containers.find((c) => c.name === 'petrel-node') as Container;
  assert.equal(agent.livenessProbe?.httpGet?.path, '/healthz');
  assert.equal(agent.readinessProbe?.httpGet?.path, '/readyz');
  const { cm } = daemonSet();
  const cfg = parseAgentConfig([], resolveEnv(agent, cm.data));
  assert.equal(cfg.statusListen?.port, agent.livenessProbe?.httpGet?.port);
  assert.equal(cfg.statusListen?.host, agent.livenessProbe?.httpGet?.host);
});

test('install-cni container: its environment renders a conflist the petrel plugin parses, the socket the agent serves', () => {
  const { ds, cm } = daemonSet();
  const spec = ds.spec.template.spec;
  const init = spec.initContainers.find((c) => c.name === 'install-cni') as Container;
  assert.deepEqual(init.command, ['/usr/local/bin/petrel-install-cni']);
  const s = parseSettings(resolveEnv(init, cm.data), () => {
    throw new Error('no file');
  });
  const r = renderConflist(s);
  const nc = parseNetConf(JSON.stringify({ cniVersion: r.conflist.cniVersion, name: r.conflist.name, ...r.petrel }));
  const agent = spec.containers.find((c) => c.name === 'petrel-node') as Container;
  const cfg = parseAgentConfig([], resolveEnv(agent, cm.data));
  assert.equal(nc.agentSocket, cfg.socketPath, 'the plugin talks to the socket the agent listens on');
  assert.equal(nc.mtu, undefined, 'veth_mtu "0": the agent planned MTU');
  assert.equal(s.nodeName, 'node-a');
});

test('agent container: environment accepted by petrel-agent; only variables it reads (plus HOST_IP)', () => {
  const { ds, cm } = daemonSet();
  const agent = ds.spec.template.spec.containers.find((c) => c.name === 'petrel-node') as Container;
  assert.deepEqual(agent.command, ['/usr/local/bin/petrel-agent']);
  const env = resolveEnv(agent, cm.data);
  const cfg = parseAgentConfig([], env);
  assert.equal(cfg.nodeName, 'node-a');
  assert.deepEqual(cfg.ipDetect, { kind: 'can-reach', dest: '10.0.0.5' });
  // A variable the agent does not read would be silently ignored: catch typos.
  const usage = (() => {
    try {
      parseAgentConfig(['--help'], {});
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  for (const name of Object.keys(env))
    if (name !== 'HOST_IP') assert.ok(usage.includes(name), `petrel-agent reads ${name}`);
});

test('petrel-controllers Deployment: environment accepted by petrel-controllers, probes on its status port, Lease named in its Role', () => {
  const objs = load();
  const dep = objs.find((o) => o.obj.kind === 'Deployment' && o.obj.metadata.name === 'petrel-controllers')
    ?.obj as unknown as {
    spec: {
      replicas: number;
      template: { spec: { serviceAccountName: string; hostNetwork?: boolean; containers: Container[] } };
    };
  };
  assert.ok(dep, 'a petrel-controllers Deployment');
  assert.ok(dep.spec.replicas >= 2, 'standby replica (leader election)');
  assert.notEqual(dep.spec.template.spec.hostNetwork, true);
  const c = dep.spec.template.spec.containers[0] as Container;
  assert.deepEqual(c.command, ['/usr/local/bin/petrel-controllers']);
  const { cm } = daemonSet();
  const env = resolveEnv(c, cm.data);
  const cfg = parseControllersConfig([], env, 'unused-hostname');
  assert.equal(cfg.identity, 'petrel-controllers-7d9f-abcde', 'identity from the pod name');
  assert.equal(cfg.namespace, 'petrel-system');
  assert.equal(cfg.kubeconfig, undefined, 'in-cluster configuration');
  assert.equal(cfg.leakGraceMs, 900_000);
  assert.equal(cfg.status?.port, c.livenessProbe?.httpGet?.port);
  assert.equal(cfg.status?.port, c.readinessProbe?.httpGet?.port);
  for (const name of Object.keys(env)) assert.ok(CONTROLLERS_USAGE.includes(name), `petrel-controllers reads ${name}`);
  // RBAC: its ServiceAccount reads pods and nodes cluster-wide and holds only its own Lease.
  const sa = dep.spec.template.spec.serviceAccountName;
  type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
  const rulesOf = (bindingKind: string, roleKind: string) =>
    objs
      .filter((o) => o.obj.kind === bindingKind && (o.obj.subjects as { name: string }[]).some((s) => s.name === sa))
      .flatMap((b) => {
        const ref = (b.obj.roleRef as { name: string }).name;
        return (objs.find((o) => o.obj.kind === roleKind && o.obj.metadata.name === ref)?.obj.rules ?? []) as Rule[];
      });
  const cluster = rulesOf('ClusterRoleBinding', 'ClusterRole');
  assert.deepEqual(cluster, [{ apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get', 'list', 'watch'] }]);
  const ns = rulesOf('RoleBinding', 'Role');
  assert.ok(ns.every((r) => r.apiGroups.join() === 'coordination.k8s.io' && r.resources.join() === 'leases'));
  assert.ok(ns.some((r) => r.verbs.includes('create')));
  const named = ns.find((r) => r.verbs.includes('update'));
  assert.deepEqual(named?.resourceNames, [cfg.leaseName]);
  assert.deepEqual(named?.verbs.sort(), ['get', 'update']);
});
