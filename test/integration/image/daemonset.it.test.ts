/**
 * The manifests are the source of truth: the node image is built offline (scripts/build-image.mjs
 * from image/Containerfile), imported into a containerd on each of two lab nodes, and the
 * DaemonSet in manifests/30-node.yaml is run there the way kubelet runs it, through containerd's
 * CRI: a host-network pod sandbox (the YAML's hostNetwork: the node's network namespace, which
 * that containerd runs in), the init container `install-cni` to completion, then the
 * `petrel-node` container, each with exactly the YAML's image, command, args, environment
 * (ConfigMap 20-config.yaml, with etcd_endpoints edited as its comment asks; downward API node name
 * and host IP), mounts (hostPath volumes; the optional etcd Secret absent -> empty) and security
 * context. Ready is the YAML's readiness probe. Then kubelet's other half: CRI RunPodSandbox on
 * both nodes goes through the conflist install-cni wrote and the plugins it copied out of the
 * image, and the pods reach each other over TCP.
 *
 * Why CRI (not `ctr run --net-host`): that is what kubelet calls, so hostNetwork, privileged,
 * mounts and the container log path go through the same code in containerd as in a cluster. Each
 * node's containerd has a mount namespace of its own (node-host.ts) so the YAML's host paths
 * (/var/run/petrel, /opt/cni/bin, /etc/cni/net.d) are per node and the machine's are untouched.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { findTool } from '../../../agent/common/tool-path.js';
import { CLUSTER_BINS, type Cluster, type ClusterNode, type KernelRoute, startCluster } from '../../helpers/cluster.js';
import type { ContainerStatus } from '../../helpers/cri.js';
import { needs, type ProbedCapability } from '../../helpers/needs.js';
import { run, runOk, startEchoServer, tcpRequest } from '../../helpers/netns.js';
import { ROOT } from '../../helpers/petrelctl.js';
import { waitFor } from '../../helpers/process.js';
import { type Container, type NodeContext, type PodSpec, prepareScript, toCri } from './kubelet.js';
import { type NodeHost, startNodeHost } from './node-host.js';

const IMAGE_TOOLS: ProbedCapability = {
  name: 'image-tools',
  probe: () => {
    for (const f of ['ctr', 'skopeo', 'tar', 'dpkg-query', 'curl', 'unshare']) if (!findTool(f)) return `needs ${f}`;
    return false;
  },
};

const skip = needs('root', 'netns', 'etcd', 'containerd', 'cni-plugins', CLUSTER_BINS, IMAGE_TOOLS);

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: { template: { spec: PodSpec } };
}

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const f of ['20-config.yaml', '30-node.yaml'])
    for (const d of parseAllDocuments(readFileSync(join(ROOT, 'manifests', f), 'utf8')))
      if (d.contents) out.push(d.toJS() as Manifest);
  return out;
}

/** The lines a container wrote, from its CRI log file ("<time> <stream> <tag> <line>"). */
function criLog(path: string): string {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ').slice(3).join(' '))
      .join('\n');
  } catch {
    return '';
  }
}

type HttpProbe = { httpGet?: { host?: string; port: number; path: string } };
type AgentContainer = Container & { readinessProbe?: HttpProbe; livenessProbe?: HttpProbe };

let execSeq = 0;

interface NodeRun {
  node: ClusterNode;
  /** The petrel-node container. */
  agentId: string;
  host: NodeHost;
  sandboxId: string;
  logDir: string;
  containers: string[];
  pods: string[];
}

describe('node image from image/Containerfile + DaemonSet from manifests/30-node.yaml, under containerd CRI', {
  skip,
}, () => {
  let tmp: string;
  let archive: string;
  let imageInfo: { tag: string; uncompressedBytes: number; blobBytes: number; manifestDigest: string };
  let c: Cluster | undefined;
  const runs: NodeRun[] = [];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'petrel-image-'));
    // Uncompressed layers by default: the same image, less CPU on a shared test machine.
    const compression = process.env.PETREL_IMAGE_COMPRESSION ?? 'none';
    const out = await run(
      process.execPath,
      [join(ROOT, 'scripts/build-image.mjs'), '--out', join(tmp, 'image'), '--compression', compression],
      { timeoutMs: 600_000 },
    );
    if (out.code !== 0) throw new Error(`build-image: ${out.stderr}`);
    process.stdout.write(out.stdout);
    archive = join(tmp, 'image', 'petrel-node.oci.tar');
    imageInfo = JSON.parse(readFileSync(join(tmp, 'image', 'image.json'), 'utf8'));
    c = await startCluster({
      nodes: 2,
      startAgents: false,
      pools: [{ name: 'default', cidr: '10.244.0.0/16', blockSize: 26, vxlanMode: 'Always', natOutgoing: true }],
    });
  });

  after(async () => {
    for (const r of runs) {
      for (const id of r.pods) {
        await r.host.cri.stopPodSandbox(id).catch(() => {});
        await r.host.cri.removePodSandbox(id).catch(() => {});
      }
    }
    for (const r of runs) {
      // terminationGracePeriodSeconds: 15 in the YAML.
      for (const id of r.containers.reverse()) {
        await r.host.cri.stopContainer(id, 15).catch(() => {});
        await r.host.cri.removeContainer(id).catch(() => {});
      }
      if (r.sandboxId) {
        await r.host.cri.stopPodSandbox(r.sandboxId).catch(() => {});
        await r.host.cri.removePodSandbox(r.sandboxId).catch(() => {});
      }
      await r.host.stop();
    }
    await c?.stop();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('offline build: an OCI image skopeo reads, with the Containerfile labels and one layer per step', async () => {
    const inspect = JSON.parse(await runOk('skopeo', ['inspect', `oci-archive:${archive}`])) as {
      Labels: Record<string, string>;
      Layers: string[];
      Digest: string;
    };
    assert.equal(inspect.Labels['org.opencontainers.image.version'], '0.1.0');
    assert.equal(inspect.Digest, imageInfo.manifestDigest);
    // FROM, RUN apt-get install, COPY node, COPY bundles, COPY etcd-proto, COPY petrel-netlink, COPY plugins.
    assert.equal(inspect.Layers.length, 7);
    const mib = (b: number) => (b / 1024 / 1024).toFixed(1);
    process.stdout.write(
      `image ${imageInfo.tag}: ${mib(imageInfo.uncompressedBytes)} MiB unpacked, ${mib(imageInfo.blobBytes)} MiB of blobs\n`,
    );
  });

  test('install-cni then petrel-node on two nodes as the YAML says; CRI pods on the two nodes reach each other', async () => {
    assert.ok(c);
    const docs = manifests();
    const ds = docs.find((d) => d.kind === 'DaemonSet' && d.metadata.name === 'petrel-node');
    const cm = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'petrel-config');
    assert.ok(ds?.spec && cm?.data);
    const spec = ds.spec.template.spec;
    assert.equal(spec.hostNetwork, true);
    const init = spec.initContainers ?? [];
    const agentC = spec.containers.find((x) => x.name === 'petrel-node') as AgentContainer;
    assert.ok(agentC?.readinessProbe?.httpGet);
    // The operator's one edit (the ConfigMap's comment): where etcd is.
    const configMaps = { [cm.metadata.name]: { ...cm.data, etcd_endpoints: c.etcdUrl } };
    const agentSocket = agentC.env?.find((e) => e.name === 'PETREL_AGENT_SOCKET')?.value;
    assert.ok(agentSocket, 'the agent container sets PETREL_AGENT_SOCKET');

    for (const node of c.nodes) {
      const dir = join(tmp, node.name);
      mkdirSync(join(dir, 'empty'), { recursive: true });
      const host = await startNodeHost({ name: node.name, dir: join(dir, 'host'), netnsPath: node.ns.path });
      const r: NodeRun = { node, host, agentId: '', sandboxId: '', logDir: '', containers: [], pods: [] };
      runs.push(r);
      await host.importImage(archive);
      const ctx: NodeContext = {
        configMaps,
        fields: { 'spec.nodeName': node.name, 'status.hostIP': node.ip },
        secrets: {},
        emptyDir: join(dir, 'empty'),
      };
      const uid = `uid-ds-${node.name}`;
      const name = `petrel-node-${node.name}`;
      const { id } = await host.cri.runPodSandbox({
        name,
        namespace: ds.metadata.namespace ?? 'default',
        uid,
        logDirectory: host.logDir,
        hostNetwork: spec.hostNetwork === true,
        privileged: true,
      });
      r.sandboxId = id;
      r.logDir = join(host.logDir, `${ds.metadata.namespace}_${name}_${uid}`);
      const startOne = async (ct: Container) => {
        const { options, prepare } = toCri(ct, spec, ctx);
        const prep = await host.exec('sh', ['-c', prepareScript(prepare)]);
        assert.equal(prep.code, 0, `${node.name} ${ct.name} host paths: ${prep.stderr}`);
        const cid = await host.cri.createContainer(id, options);
        r.containers.push(cid);
        await host.cri.startContainer(cid);
        return { cid, log: () => criLog(join(r.logDir, options.logPath)) };
      };
      // Init containers run one after the other, each to exit 0.
      for (const ct of init) {
        const { cid, log } = await startOne(ct);
        const st = await waitFor<ContainerStatus | false>(
          `${node.name} ${ct.name} exited`,
          async () => {
            const s = await host.cri.containerStatus(cid);
            return s.state === 'CONTAINER_EXITED' && s;
          },
          60_000,
          200,
        );
        assert.ok(st);
        assert.equal(st.exitCode, 0, `${node.name} ${ct.name} exit ${st.exitCode}: ${st.reason} ${log()}`);
      }
      const agentRun = await startOne(agentC);
      r.agentId = agentRun.cid;
      // The readiness probe, as kubelet runs it: HTTP GET in the node's network namespace.
      const probe = agentC.readinessProbe?.httpGet;
      assert.ok(probe);
      const url: string = `http://${probe.host ?? node.ip}:${probe.port}${probe.path}`;
      const how = await waitFor<string | false>(
        `${node.name} petrel-node ready (${url})`,
        async () => {
          const s = await host.cri.containerStatus(agentRun.cid);
          if (s.state === 'CONTAINER_EXITED') return `exited ${s.exitCode}`;
          const res = await node.ns.exec('curl', [
            '-s',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            '--max-time',
            '3',
            url,
          ]);
          return res.stdout === '200' && 'ready';
        },
        60_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${agentRun.log().slice(-3000)}`);
      });
      assert.equal(how, 'ready', `${node.name} petrel-node ${how}: ${agentRun.log().slice(-3000)}`);
      // The agent found the image's petrel-netlink beside itself (route writer auto).
      assert.match(agentRun.log(), /"routeWriter":"netlink"/, `${node.name}: route writer`);
      const live = agentC.livenessProbe?.httpGet;
      assert.ok(live);
      const health = await node.ns.exec('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '--max-time',
        '3',
        `http://${live.host ?? node.ip}:${live.port}${live.path}`,
      ]);
      assert.equal(health.stdout, '200', `${node.name} liveness probe`);
      // The image's petrelctl, run in the agent container (kubectl exec's path: the runtime's exec),
      // asks the agent over the status endpoint: the operator's tool works from the image too.
      let last = '';
      await waitFor(
        `${node.name}: the image's petrelctl reports the agent ready`,
        async () => {
          const ctl = await host.exec('ctr', [
            '-a',
            host.socket,
            '-n',
            'k8s.io',
            'tasks',
            'exec',
            '--exec-id',
            `petrelctl-${node.name}-${++execSeq}`,
            agentRun.cid,
            '/usr/local/bin/petrelctl',
            'node',
            'status',
            '--json',
          ]);
          last = `${ctl.code} ${ctl.stdout} ${ctl.stderr}`;
          if (ctl.code !== 0) return false;
          return (JSON.parse(ctl.stdout) as { readiness: { ready: boolean } }).readiness.ready;
        },
        30_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: ${last}\n${agentRun.log().slice(-3000)}`);
      });
    }

    for (const r of runs) {
      // What install-cni left on the node: the plugins from the image and the rendered conflist.
      const ls = await r.host.exec('sh', ['-c', 'ls /opt/cni/bin; cat /etc/cni/net.d/10-petrel.conflist']);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, /^petrel$/m);
      assert.match(ls.stdout, /^petrel-ipam$/m);
      const conflist = JSON.parse(ls.stdout.slice(ls.stdout.indexOf('{'))) as {
        name: string;
        plugins: { type: string; agentSocket?: string }[];
      };
      assert.equal(conflist.plugins[0]?.type, 'petrel');
      // The socket the plugin will open is the one the agent container listens on (both from the YAML).
      assert.equal(conflist.plugins[0]?.agentSocket, agentSocket);
      // containerd picks the conflist up (written after it started, by rename).
      await waitFor(`${r.node.name} CRI NetworkReady`, () => r.host.cri.networkReady(), 30_000, 200);
    }

    // The agents registered with the address kubelet reports (can-reach=$(HOST_IP)).
    const nodes = JSON.parse(await c.petrelctlOk('node', 'list', '--json')) as { name: string; ipv4?: string }[];
    for (const n of c.nodes) assert.equal(nodes.find((x) => x.name === n.name)?.ipv4, n.cidr, `${n.name} record`);

    // Pods, as kubelet creates them: CRI RunPodSandbox -> petrel CNI (from /opt/cni/bin) -> agent.
    const pod = async (r: NodeRun, name: string) => {
      const { id } = await r.host.cri.runPodSandbox({ name, namespace: 'shop', logDirectory: r.host.logDir });
      r.pods.push(id);
      const st = await r.host.cri.status(id);
      assert.equal(st.state, 'SANDBOX_READY');
      assert.match(st.ip, /^10\.244\./, `${name} address from the pool`);
      assert.ok(st.pid);
      return { ip: st.ip, ns: { path: `/proc/${st.pid}/ns/net` } };
    };
    const [r1, r2] = runs as [NodeRun, NodeRun];
    const web = await pod(r1, 'web');
    const client = await pod(r2, 'client');
    // Each agent (in its container) programmed a route to the other's block over VXLAN.
    const blockOf = (ip: string) => {
      const o = ip.split('.').map(Number);
      return `${o[0]}.${o[1]}.${o[2]}.${(o[3] ?? 0) & 0xc0}/26`;
    };
    await waitFor(
      'VXLAN routes to the other node blocks',
      async () => {
        const on1 = (await c?.routes(r1.node)) ?? [];
        const on2 = (await c?.routes(r2.node)) ?? [];
        const via = (rs: typeof on1, ip: string) => rs.some((x) => x.dev === 'petrel.vxlan' && x.dst === blockOf(ip));
        return via(on1, client.ip) && via(on2, web.ip);
      },
      30_000,
      250,
    );
    const srvWeb = await startEchoServer(web.ns, '0.0.0.0', 8080, 'web');
    const srvClient = await startEchoServer(client.ns, '0.0.0.0', 8080, 'client');
    try {
      assert.equal(
        await waitFor('client -> web', () => tcpRequest(client.ns, web.ip, 8080).catch(() => false), 20_000, 250),
        `web ${client.ip}`,
      );
      assert.equal(await tcpRequest(web.ns, client.ip, 8080), `client ${web.ip}`);
    } finally {
      await srvWeb.stop();
      await srvClient.stop();
    }
  });

  test("StopContainer with the YAML's grace period: each agent exits 0 on SIGTERM within it, its routes stay", async () => {
    assert.ok(c && runs.length === 2 && runs.every((r) => r.agentId));
    const spec = manifests().find((d) => d.kind === 'DaemonSet')?.spec?.template.spec;
    const grace = spec?.terminationGracePeriodSeconds;
    assert.ok(grace);
    for (const r of runs) {
      const routesBefore: KernelRoute[] = (await c.routes(r.node)).filter((x) => x.dev === 'petrel.vxlan');
      assert.ok(routesBefore.length > 0, `${r.node.name} has VXLAN routes`);
      const t0 = performance.now();
      await r.host.cri.stopContainer(r.agentId, grace);
      const ms = performance.now() - t0;
      const st = await r.host.cri.containerStatus(r.agentId);
      assert.equal(st.state, 'CONTAINER_EXITED');
      assert.equal(st.exitCode, 0, `${r.node.name}: exit ${st.exitCode} (${st.reason}) after ${ms.toFixed(0)} ms`);
      assert.ok(ms < grace * 1000, `${r.node.name}: stopped in ${ms.toFixed(0)} ms`);
      // Graceful restart: the kernel routes are left in place for the next agent.
      const routesAfter: KernelRoute[] = (await c.routes(r.node)).filter((x) => x.dev === 'petrel.vxlan');
      assert.deepEqual(routesAfter.map((x) => x.dst).sort(), routesBefore.map((x) => x.dst).sort());
    }
  });
});
