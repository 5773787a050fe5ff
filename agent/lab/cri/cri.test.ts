import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { CRI_PROTO } from './api-proto.js';
import { criPackageDefinition, sandboxConfig } from './client.js';
import {
  containerdConfig,
  containerdPaths,
  labConflist,
  PAUSE_IMAGE,
  processesOf,
  shimSocketPath,
} from './containerd.js';

test('CRI schema: parsed from the embedded text, the RuntimeService calls the lab and tests use', () => {
  assert.match(CRI_PROTO, /package runtime\.v1;/);
  const def = criPackageDefinition();
  const svc = def['runtime.v1.RuntimeService'] as Record<string, { path: string }>;
  for (const m of [
    'Status',
    'RunPodSandbox',
    'StopPodSandbox',
    'RemovePodSandbox',
    'PodSandboxStatus',
    'ListPodSandbox',
  ])
    assert.equal(svc[m]?.path, `/runtime.v1.RuntimeService/${m}`);
  // Field names as in the schema (keepCase), so requests are written in snake_case.
  const req = def['runtime.v1.RunPodSandboxRequest'] as { type: { field: { name: string }[] } };
  assert.deepEqual(
    req.type.field.map((f) => f.name),
    ['config', 'runtime_handler'],
  );
});

test('sandboxConfig: what kubelet sends (metadata, hostname, log dir per pod, POD network namespace)', () => {
  const c = sandboxConfig({
    name: 'pod-1-1',
    namespace: 'default',
    uid: 'u-1',
    logDirectory: '/lab/pods',
    labels: { a: 'b' },
  });
  assert.deepEqual(c.metadata, { name: 'pod-1-1', uid: 'u-1', namespace: 'default', attempt: 0 });
  assert.equal(c.hostname, 'pod-1-1');
  assert.equal(c.log_directory, '/lab/pods/default_pod-1-1_u-1');
  assert.deepEqual(c.labels, { a: 'b' });
  assert.deepEqual(c.port_mappings, []);
  assert.equal('dns_config' in c, false);
  const linux = c.linux as { security_context: { namespace_options: { network: string } } };
  assert.equal(linux.security_context.namespace_options.network, 'POD');
  const host = sandboxConfig({ name: 'h', logDirectory: '/l', hostNetwork: true });
  assert.equal(host.hostname, '');
  assert.equal((host.linux as typeof linux).security_context.namespace_options.network, 'NODE');
  assert.deepEqual(host.metadata, { name: 'h', uid: 'uid-h', namespace: 'default', attempt: 0 });
});

test('containerdConfig: own root, state, sockets and CNI dirs; runc, overlayfs, the offline pause image', () => {
  const p = containerdPaths('/run/petrel-lab/x/node-1/containerd');
  assert.equal(p.socket, '/run/petrel-lab/x/node-1/containerd/containerd.sock');
  const t = containerdConfig({ dir: p.dir, socket: p.socket, binDir: p.binDir, confDir: p.confDir });
  assert.match(t, /^version = 2\n/);
  assert.match(t, /^root = "\/run\/petrel-lab\/x\/node-1\/containerd\/root"$/m);
  assert.match(t, /^state = "\/run\/petrel-lab\/x\/node-1\/containerd\/state"$/m);
  assert.match(t, /\[grpc\]\n {2}address = "\/run\/petrel-lab\/x\/node-1\/containerd\/containerd.sock"/);
  assert.match(t, /address = "\/run\/petrel-lab\/x\/node-1\/containerd\/containerd.sock.ttrpc"/);
  assert.match(t, /restrict_oom_score_adj = true/);
  assert.ok(t.includes(`sandbox_image = "${PAUSE_IMAGE}"`));
  assert.match(t, /bin_dir = "\/run\/petrel-lab\/x\/node-1\/containerd\/cni-bin"/);
  assert.match(t, /conf_dir = "\/run\/petrel-lab\/x\/node-1\/containerd\/net.d"/);
  assert.match(t, /max_conf_num = 1/);
  assert.match(t, /snapshotter = "overlayfs"/);
  assert.match(t, /runtime_type = "io.containerd.runc.v2"/);
});

test('labConflist: the lab netconf (node agent socket, petrel-ipam), IPv6 when dual stack', () => {
  const c = labConflist({ network: 'petrel-lab', agentSocket: '/lab/node-2/agent.sock', ipv6: true });
  assert.equal(c.name, 'petrel-lab');
  assert.equal(c.cniVersion, '1.0.0');
  const plugins = c.plugins as Record<string, unknown>[];
  assert.equal(plugins.length, 1);
  assert.deepEqual(plugins[0], {
    type: 'petrel',
    agentSocket: '/lab/node-2/agent.sock',
    logLevel: 'warn',
    ipam: { type: 'petrel-ipam', assignIpv4: true, assignIpv6: true },
  });
  const v4 = labConflist({ network: 'n', agentSocket: '/s', ipv6: false }).plugins as { ipam: unknown }[];
  assert.deepEqual(v4[0]?.ipam, { type: 'petrel-ipam', assignIpv4: true, assignIpv6: false });
});

test('shimSocketPath: sha256 of ADDRESS/NAMESPACE/ID under /run/containerd/s (containerd 1.6)', () => {
  assert.equal(
    shimSocketPath(
      '/run/petrel-lab/crim/node-1/containerd/containerd.sock',
      'k8s.io',
      '9cbb2237e94e3740a66ba942a18caa13d764fa75501854d353b059573704765e',
    ),
    '/run/containerd/s/a9186d3b64bef047826f7df3dd0a08438e7830835a12f86644a7f0aa4c2a1b70',
  );
});

test('processesOf: the processes naming a string and their descendants', async () => {
  const tag = `petrel-processes-of-${process.pid}-${Date.now()}`;
  const p = spawn('sh', ['-c', `sleep 30 & wait # ${tag}`], { stdio: 'ignore' });
  try {
    let found: number[] = [];
    for (let i = 0; i < 100 && found.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
      found = processesOf(tag);
    }
    assert.ok(found.includes(p.pid as number), 'the shell');
    assert.equal(found.length, 2, 'the shell and its sleep');
    assert.deepEqual(processesOf(`${tag}-none`), []);
  } finally {
    for (const pid of processesOf(tag)) process.kill(pid, 'SIGKILL');
  }
});
