/**
 * IPIP across real-kernel qemu guests (issue 9, "Tests": the host kernel has no `ipip`).
 *
 * Topology (everything in one private network namespace, the rig's, plus the guests):
 *   rig netns: bridge br0 with 10.99.0.1/24 and 10.99.1.1/24, forwarding on (the router between the
 *              two subnets), etcd on 10.99.0.1:2379, tcpdump on br0
 *   node1 10.99.0.11/24 ┐ same subnet                 node3 10.99.1.13/24: the other subnet, reached
 *   node2 10.99.0.12/24 ┘                             through the router (default via 10.99.1.1)
 * Each guest runs one petrel-agent (the serve-mode service: node record, BGP mesh, routes, tunl0)
 * and one pod: a netns wired by the petrel CNI plugin (bin/petrel + bin/petrel-ipam, as a runtime
 * calls them), with a TCP server (ipip-guest.ts) in it.
 *
 * Pool 10.244.0.0/16 with IPIP Always, then switched to CrossSubnet at run time:
 *   Always:      tunl0 up with the node's tunnel address (from its own block), `BLOCK via NODE dev
 *                tunl0 onlink proto 80` for each other node, pod ↔ pod TCP in all 6 directions and
 *                node → remote pod; the capture on br0 shows IP protocol 4 between the node addresses
 *                and no plain pod TCP.
 *   CrossSubnet: node1 ↔ node2 (same subnet) `via NODE dev eth0 proto 80`, plain pod TCP on the wire;
 *                node3 (behind the router) still through tunl0, protocol 4 on the wire.
 * Process starts in a TCG guest are slow (node ~0.5-2.5 s): each step is one batched script per
 * guest, run in parallel, and results come back as files in the run directory.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { findTool } from '../../../agent/common/tool-path.js';
import { createRigNetwork, type RigNetwork } from '../../../agent/lab/vm/index.js';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { needs, type ProbedCapability } from '../../helpers/needs.js';
import { run } from '../../helpers/netns.js';
import { PETRELCTL, ROOT } from '../../helpers/petrelctl.js';
import { type Daemon, startDaemon, waitFor } from '../../helpers/process.js';
import { assertRigGone, type Rig, startGuests, TEST_GUEST_MEM_MB } from '../../helpers/vm.js';
import { describeFrame, type FrameSummary, readPcap } from './pcap.js';

const TOOL = join(ROOT, 'dist/test/integration/vm/ipip-guest.js');
const BIN = join(ROOT, 'bin');

const TCPDUMP: ProbedCapability = { name: 'tcpdump', probe: () => (findTool('tcpdump') ? false : 'needs tcpdump') };
const BUNDLES: ProbedCapability = {
  name: 'petrel-bundles',
  probe: () => {
    for (const f of ['petrel-agent', 'petrel', 'petrel-ipam', 'petrelctl']) {
      if (!existsSync(join(ROOT, 'bin', f))) return `needs bin/${f} (npm run build)`;
    }
    return existsSync(TOOL) ? false : `needs ${TOOL} (npm run build)`;
  },
};
const skip = needs('root', 'netns', 'qemu', 'etcd', 'etcdctl', TCPDUMP, BUNDLES);

const BRIDGE = '10.99.0.1/24';
const ROUTER_B = '10.99.1.1/24';
const HOST_IP = '10.99.0.1';
const ETCD = `http://${HOST_IP}:2379`;
interface VmNode {
  name: string;
  ip: string;
  cidr: string;
}
const NODES: readonly VmNode[] = [
  { name: 'node1', ip: '10.99.0.11', cidr: '10.99.0.11/24' },
  { name: 'node2', ip: '10.99.0.12', cidr: '10.99.0.12/24' },
  { name: 'node3', ip: '10.99.1.13', cidr: '10.99.1.13/24' },
];
const KEEP = process.env.PETREL_VM_KEEP === '1';
const POOL = 'ipip-pool';
const POOL_CIDR = '10.244.0.0/16';
const PORT = 7070;

/**
 * The serve-mode service: the node's agent, as calico-node runs on a node. Restarted (up to 3 times)
 * if it exits, as the kubelet restarts a DaemonSet pod; each restart is logged and counted in
 * /vm/NODE/agent-restarts, and the test reports them.
 */
const AGENT_SERVICE = `#!/bin/sh
mkdir -p /run/petrel
n=0
while :; do
  "$BIN/petrel-agent" --node-name "$PETREL_VM_NODE" --etcd-endpoints "$ETCD" \\
    --socket /run/petrel/agent.sock --ip "$PETREL_VM_CIDR" --status-listen 127.0.0.1:9099 --log-level info
  rc=$?
  n=$((n + 1))
  echo "petrel-vm: petrel-agent exited with $rc (restart $n)"
  echo "$n" > "/vm/$PETREL_VM_NODE/agent-restarts"
  [ "$n" -gt 3 ] && exit "$rc"
  /.petrel-vm/busybox sleep 1
done
`;

const NETCONF = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'k8s-pod-network',
  type: 'petrel',
  agentSocket: '/run/petrel/agent.sock',
  logLevel: 'warn',
  ipam: { type: 'petrel-ipam' },
});

/** In each guest: wait for the agent to be ready, CNI ADD a pod, start its TCP server. */
const POD_SCRIPT = `. /vm/lib.sh
d=/vm/$PETREL_VM_NODE
# a pod is scheduled once its node is Ready: wait for the agent's /readyz (registered, BGP mesh up)
VM_WAIT_S=240 VM_WAIT_EVERY_US=1000000 vm_wait wget -q -O /dev/null http://127.0.0.1:9099/readyz || {
  echo "agent never ready:"; wget -q -O - http://127.0.0.1:9099/readyz; exit 20; }
ip netns add pod && ip -n pod link set lo up || exit 21
cat > /tmp/netconf.json <<'EOF'
${NETCONF}
EOF
CNI_COMMAND=ADD CNI_CONTAINERID=ipip-$PETREL_VM_NODE CNI_NETNS=/var/run/netns/pod CNI_IFNAME=eth0 \\
CNI_PATH="$BIN:/usr/lib/cni" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=ipip;K8S_POD_NAME=pod-$PETREL_VM_NODE" \\
  "$BIN/petrel" < /tmp/netconf.json > $d/add.json 2> /tmp/add.err || { echo "CNI ADD failed"; cat $d/add.json /tmp/add.err; exit 22; }
setsid ip netns exec pod node "$TOOL" serve ${PORT} > /tmp/serve.log 2>&1 < /dev/null &
VM_WAIT_S=120 VM_WAIT_EVERY_US=300000 vm_wait grep -q listening /tmp/serve.log || { echo "server did not start"; cat /tmp/serve.log; exit 23; }
echo ok
`;

/**
 * In each guest: wait (up to 180 s) until /readyz answers 200 and every `expect` string is in
 * `ip -o route show` (the main table; `show proto 80` would drop the "proto 80" the routes are
 * checked for), then dump the state as files for the host.
 */
function stateScript(expect: readonly string[], tag: string): string {
  const checks = expect.map((e) => `grep -qF -- '${e}' /tmp/r || return 1`).join('\n  ');
  return `. /vm/lib.sh
d=/vm/$PETREL_VM_NODE
ok() {
  wget -q -O /dev/null http://127.0.0.1:9099/readyz 2>/dev/null || return 1
  ip -o route show > /tmp/r
  ${checks || ':'}
}
VM_WAIT_S=180 VM_WAIT_EVERY_US=500000 vm_wait ok; rc=$?
ip -o route show > $d/${tag}-routes.txt
ip -j -d link show dev tunl0 > $d/${tag}-tunl0-link.json 2>&1
ip -j addr show dev tunl0 > $d/${tag}-tunl0-addr.json 2>&1
wget -q -O $d/${tag}-status.json http://127.0.0.1:9099/status 2>/dev/null
wget -q -O - http://127.0.0.1:9099/readyz > $d/${tag}-readyz.txt 2>&1
echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward) tunl0.rp_filter=$(cat /proc/sys/net/ipv4/conf/tunl0/rp_filter)" > $d/${tag}-sysctl.txt
[ $rc = 0 ] || { echo "not converged; routes:"; cat /tmp/r; echo "readyz:"; wget -q -O - http://127.0.0.1:9099/readyz; exit 30; }
echo ok
`;
}

/** In each guest: pod → the other pods, node (root netns) → the other pods; JSON lines to files. */
function probeScript(targets: readonly string[], tag: string): string {
  return `d=/vm/$PETREL_VM_NODE
ip netns exec pod node "$TOOL" probe ${PORT} ${targets.join(' ')} > $d/${tag}-probe-pod.json 2>&1 &
node "$TOOL" probe ${PORT} ${targets.join(' ')} > $d/${tag}-probe-node.json 2>&1
wait
echo ok
`;
}

interface Probe {
  to: string;
  ok: boolean;
  reply?: string;
  error?: string;
  ms: number;
  tries: number;
}

interface NodeRow {
  name: string;
  ipv4?: string;
  blocks: string[];
  tunnelAddresses: { ipip?: string };
  alive: boolean;
}

interface JsonRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
  flags?: string[];
  type?: string;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((a, o) => (a << 8) + Number(o), 0) >>> 0;
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/') as [string, string];
  const n = Number(len);
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0;
  return (ipToInt(ip) & mask) === (ipToInt(base) & mask);
}

describe('IPIP in qemu guests: 3 agents, Always then CrossSubnet', { skip, timeout: 540_000 }, () => {
  let network: RigNetwork | undefined;
  let etcd: EtcdHandle | undefined;
  let rig: Rig | undefined;
  let capture: Daemon | undefined;
  const tmp = join(tmpdir(), `petrel-ipip-${process.pid}`);
  const t0 = performance.now();
  const podIp: Record<string, string> = {};
  let nodes: NodeRow[] = [];

  const ctl = async (...args: string[]) => {
    const r = await run(
      'ip',
      ['netns', 'exec', network!.netns, process.execPath, PETRELCTL, '--etcd-endpoints', ETCD, ...args],
      {
        timeoutMs: 60_000,
      },
    );
    assert.equal(r.code, 0, `petrelctl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const file = (k: number, name: string) => readFileSync(join(rig!.guest(k).dir, name), 'utf8');
  const agentLogs = () =>
    NODES.map((_, i) => {
      try {
        return `--- node${i + 1} agent\n${file(i + 1, 'service.log').slice(-3000)}`;
      } catch {
        return '';
      }
    }).join('\n');
  /** exec on every guest; fails with each guest's output and the agents' logs. */
  const everyGuest = async (what: string, script: (k: number) => string, timeoutMs = 240_000) => {
    const t = performance.now();
    const rs = await rig!.execAll((g) => script(g.index), timeoutMs);
    const bad = rs.map((r, i) => ({ ...r, k: i + 1 })).filter((r) => r.code !== 0);
    assert.equal(
      bad.length,
      0,
      `${what}:\n${bad.map((b) => `--- node${b.k} exit ${b.code}\n${b.output}`).join('\n')}\n${agentLogs()}`,
    );
    console.error(`ipip vm: ${what} ${((performance.now() - t) / 1000).toFixed(1)} s`);
  };

  const startCapture = async (name: string) => {
    const pcap = join(tmp, `${name}.pcap`);
    const c = startDaemon('ip', [
      'netns',
      'exec',
      network!.netns,
      'tcpdump',
      '-i',
      'br0',
      '-n',
      '-U',
      '-s',
      '200',
      '-w',
      pcap,
      `ip proto 4 or tcp port ${PORT}`,
    ]);
    capture = c;
    await waitFor('tcpdump listening', () => {
      if (c.exited()) throw new Error(`tcpdump exited: ${c.output()}`);
      return c.output().includes('listening on');
    });
    return async (): Promise<FrameSummary[]> => {
      // Let tcpdump read what the kernel still buffers: a SIGTERM drops it (seen: a frame of a
      // connection that succeeded missing from the file on a loaded host).
      await delay(1500);
      await c.stop();
      capture = undefined;
      return readPcap(readFileSync(pcap));
    };
  };

  const probes = async (tag: string) => {
    await everyGuest(`${tag}: probes`, (k) =>
      probeScript(
        NODES.filter((_, i) => i + 1 !== k).map((n) => podIp[n.name]!),
        tag,
      ),
    );
    const read = (k: number, who: string) =>
      file(k, `${tag}-probe-${who}.json`)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Probe);
    const res = NODES.map((_, i) => ({ pod: read(i + 1, 'pod'), node: read(i + 1, 'node') }));
    const all = res.flatMap((r) => [...r.pod, ...r.node]);
    console.error(
      `ipip vm: ${tag}: ${all.filter((p) => p.ok).length}/${all.length} connections ok, connect+reply ms ${all.map((p) => p.ms).join(' ')}, tries ${all.map((p) => p.tries).join(' ')}`,
    );
    return res;
  };

  /** TCP in every direction: each reply names the server's pod address and the client's own address. */
  const assertTcp = (res: { pod: Probe[]; node: Probe[] }[], nodeSource: (from: number, to: number) => string) => {
    for (const [i, r] of res.entries()) {
      const from = NODES[i]!;
      const others = NODES.filter((n) => n !== from);
      assert.equal(r.pod.length, 2, JSON.stringify(r.pod));
      for (const [j, p] of r.pod.entries()) {
        const to = others[j]!;
        assert.equal(p.ok, true, `pod ${from.name} → pod ${to.name}: ${JSON.stringify(p)}\n${agentLogs()}`);
        assert.equal(p.reply, `${podIp[to.name]} ${podIp[from.name]}`, `pod ${from.name} → pod ${to.name}: no NAT`);
      }
      for (const [j, p] of r.node.entries()) {
        const to = others[j]!;
        const k = NODES.indexOf(to);
        assert.equal(p.ok, true, `node ${from.name} → pod ${to.name}: ${JSON.stringify(p)}`);
        assert.equal(p.reply, `${podIp[to.name]} ${nodeSource(i, k)}`, `node ${from.name} → pod ${to.name}: source`);
      }
    }
  };

  const tunnelOf = (name: string) => nodes.find((n) => n.name === name)?.tunnelAddresses.ipip ?? '';
  const blocksOf = (name: string) => nodes.find((n) => n.name === name)?.blocks ?? [];

  /** The main table's routes with protocol 80 (Petrel's), parsed from `ip -o route show`. */
  const routesOf = (k: number, tag: string): JsonRoute[] =>
    file(k, `${tag}-routes.txt`)
      .trim()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const w = l.trim().split(/\s+/);
        const r: JsonRoute = { dst: w[0] === 'blackhole' ? w[1]! : w[0]!, flags: [] };
        if (w[0] === 'blackhole') r.type = 'blackhole';
        for (let x = 0; x < w.length; x++) {
          if (w[x] === 'via') r.gateway = w[x + 1]!;
          if (w[x] === 'dev') r.dev = w[x + 1]!;
          if (w[x] === 'proto') r.protocol = w[x + 1]!;
          if (w[x] === 'onlink') r.flags!.push('onlink');
        }
        return r;
      })
      .filter((r) => r.protocol === '80');

  before(
    async () => {
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      network = await createRigNetwork({ bridgeCidr: BRIDGE, extraBridgeCidrs: [ROUTER_B] });
      etcd = await startEtcd({ netns: network.netns, host: HOST_IP });
      await ctl('ipam', 'pool', 'add', POOL, '--cidr', POOL_CIDR, '--ipip-mode', 'Always');
      rig = await startGuests({
        n: 3,
        network,
        bridgeCidr: BRIDGE,
        extraBridgeCidrs: [ROUTER_B],
        mode: 'serve',
        memMb: TEST_GUEST_MEM_MB,
        command: AGENT_SERVICE,
        guests: NODES.map((n) => ({ cidr: n.cidr })),
        env: { ETCD, BIN, TOOL },
        bootTimeoutMs: 180_000,
        // PETREL_VM_KEEP=1 keeps the run directory (agent logs, results) for a post-mortem
        keepRunDir: KEEP,
      });
      await everyGuest('agents up, pods added', () => POD_SCRIPT);
      for (const [i, n] of NODES.entries()) {
        const add = JSON.parse(file(i + 1, 'add.json')) as { ips: { address: string }[] };
        podIp[n.name] = add.ips[0]!.address.split('/')[0]!;
      }
      await waitFor(
        'three live nodes with blocks and tunnel addresses',
        async () => {
          nodes = JSON.parse(await ctl('node', 'list', '--json')) as NodeRow[];
          return nodes.length === 3 && nodes.every((n) => n.alive && n.blocks.length > 0 && n.tunnelAddresses.ipip);
        },
        60_000,
        500,
      );
    },
    { timeout: 420_000 },
  );

  after(async () => {
    await capture?.stop();
    if (rig) {
      const restarts = NODES.map((_, i) => {
        try {
          return Number(file(i + 1, 'agent-restarts').trim());
        } catch {
          return 0;
        }
      });
      if (restarts.some((n) => n > 0)) {
        console.error(`ipip vm: petrel-agent restarts per node: ${restarts.join(', ')}\n${agentLogs()}`);
      }
      const r = rig;
      await r.stop(60_000).catch(() => undefined);
      await r.destroy();
      if (!KEEP) assertRigGone(r, { netnsOwned: false });
    }
    await etcd?.destroy();
    await network?.destroy();
    rmSync(tmp, { recursive: true, force: true });
    console.error(`ipip vm: whole run ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });

  test('node records: each node alive, its address, a block of the pool, an IPIP tunnel address in its own block', () => {
    for (const n of NODES) {
      const row = nodes.find((r) => r.name === n.name);
      assert.ok(row, `no node record for ${n.name}: ${JSON.stringify(nodes)}`);
      assert.equal(row.ipv4, n.cidr);
      assert.equal(row.alive, true);
      for (const b of row.blocks) assert.ok(inCidr(b.split('/')[0]!, POOL_CIDR), `${b} outside ${POOL_CIDR}`);
      const t = row.tunnelAddresses.ipip!;
      assert.ok(
        row.blocks.some((b) => inCidr(t, b)),
        `${n.name} tunnel address ${t} not in its blocks ${row.blocks}`,
      );
      assert.ok(
        row.blocks.some((b) => inCidr(podIp[n.name]!, b)),
        `${n.name} pod ${podIp[n.name]} not in its blocks ${row.blocks}`,
      );
    }
  });

  test('Always: tunl0 up with the tunnel address, `BLOCK via NODE dev tunl0 onlink proto 80`, own blocks blackholed, BGP mesh up', async () => {
    await everyGuest('Always: routes converged', (k) => {
      const self = NODES[k - 1]!;
      const want = NODES.filter((n) => n !== self).flatMap((n) =>
        blocksOf(n.name).map((b) => `${b} via ${n.ip} dev tunl0 proto 80 onlink`),
      );
      return stateScript(want, 'always');
    });
    for (const [i, self] of NODES.entries()) {
      const k = i + 1;
      const link = (
        JSON.parse(file(k, 'always-tunl0-link.json')) as {
          flags: string[];
          mtu: number;
          linkinfo?: { info_kind?: string };
        }[]
      )[0]!;
      assert.equal(link.linkinfo?.info_kind, 'ipip', `${self.name} tunl0 kind`);
      assert.ok(link.flags.includes('UP'), `${self.name} tunl0 not up: ${link.flags}`);
      assert.equal(link.mtu, 1480, `${self.name} tunl0 MTU = uplink 1500 - 20`);
      const addrs = (
        JSON.parse(file(k, 'always-tunl0-addr.json')) as {
          addr_info: { local: string; prefixlen: number; family: string }[];
        }[]
      )[0]!.addr_info.filter((a) => a.family === 'inet');
      assert.deepEqual(
        addrs.map((a) => `${a.local}/${a.prefixlen}`),
        [`${tunnelOf(self.name)}/32`],
        `${self.name} tunl0 address`,
      );
      assert.match(file(k, 'always-sysctl.txt'), /ip_forward=1 tunl0\.rp_filter=2/);
      const routes = routesOf(k, 'always');
      const expected = [
        ...blocksOf(self.name).map((b) => ({ dst: b, type: 'blackhole', protocol: '80', flags: [] })),
        ...NODES.filter((n) => n !== self).flatMap((n) =>
          blocksOf(n.name).map((b) => ({ dst: b, gateway: n.ip, dev: 'tunl0', protocol: '80', flags: ['onlink'] })),
        ),
      ];
      const sortKey = (r: JsonRoute) => r.dst;
      assert.deepEqual(
        [...routes].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
        [...expected].sort((a, b) => sortKey(a).localeCompare(sortKey(b))),
        `${self.name} proto 80 routes:\n${file(k, 'always-routes.txt')}`,
      );
      // the pod's own /32 on its node is the CNI's route (not proto 80): Petrel leaves it alone
      const podRoute = file(k, 'always-routes.txt')
        .split('\n')
        .find((l) => l.startsWith(`${podIp[self.name]} dev `));
      assert.ok(podRoute && !/ proto 80\b/.test(podRoute), `${self.name} pod route: ${podRoute}`);
      const status = JSON.parse(file(k, 'always-status.json')) as { peers: { address?: string; state?: string }[] };
      const established = status.peers.filter((p) => p.state === 'Established').length;
      assert.equal(established, 2, `${self.name} BGP peers: ${JSON.stringify(status.peers)}`);
    }
  });

  test('Always: pod ↔ pod TCP across guests in all 6 directions and node → remote pod, IP protocol 4 between node addresses on the wire', async () => {
    const stop = await startCapture('always');
    const res = await probes('always');
    const frames = await stop();
    // node → remote pod leaves through tunl0: its source is the node's tunnel address
    assertTcp(res, (from) => tunnelOf(NODES[from]!.name));
    const ipip = frames.filter((f) => f.outer.proto === 4 && f.inner);
    const plain = frames.filter((f) => f.outer.proto === 6);
    assert.equal(plain.length, 0, `plain pod TCP on the wire in Always mode:\n${plain.map(describeFrame).join('\n')}`);
    for (const a of NODES) {
      for (const b of NODES) {
        if (a === b) continue;
        // Pod traffic from a to b inside protocol 4 between their node addresses: a's pod (or its
        // tunnel address, for node -> pod) to b's pod, or a's pod answering b. (Which of a
        // connection's frames the capture holds varies: seen once missing one SYN under load.)
        const mine = [podIp[a.name], tunnelOf(a.name)];
        const theirs = [podIp[b.name], tunnelOf(b.name)];
        const seen = ipip.some(
          (f) =>
            f.outer.src === a.ip &&
            f.outer.dst === b.ip &&
            mine.includes(f.inner!.src) &&
            theirs.includes(f.inner!.dst) &&
            (f.inner!.dstPort === PORT || f.inner!.srcPort === PORT),
        );
        assert.ok(
          seen,
          `no IPIP frame ${a.ip} > ${b.ip} carrying pod traffic ${mine.join('|')} > ${theirs.join('|')}; captured:\n${frames.map(describeFrame).join('\n')}`,
        );
      }
    }
    console.error(
      `ipip vm: Always capture: ${frames.length} frames, ${ipip.length} IPIP, e.g. ${describeFrame(ipip[0]!)}`,
    );
  });

  test('CrossSubnet: same subnet direct `via NODE dev eth0 proto 80`, the node behind the router through tunl0', async () => {
    await ctl('ipam', 'pool', 'set', POOL, '--ipip-mode', 'CrossSubnet');
    const sameSubnet = (a: VmNode, b: VmNode) =>
      a.cidr.split('.').slice(0, 3).join('.') === b.cidr.split('.').slice(0, 3).join('.');
    const want = (self: VmNode) =>
      NODES.filter((n) => n !== self).flatMap((n) =>
        blocksOf(n.name).map((b) =>
          sameSubnet(self, n)
            ? { dst: b, gateway: n.ip, dev: 'eth0', protocol: '80', flags: [] as string[] }
            : { dst: b, gateway: n.ip, dev: 'tunl0', protocol: '80', flags: ['onlink'] },
        ),
      );
    await everyGuest('CrossSubnet: routes converged', (k) =>
      stateScript(
        want(NODES[k - 1]!).map(
          (r) => `${r.dst} via ${r.gateway} dev ${r.dev} proto 80${r.flags.length ? ' onlink' : ''}`,
        ),
        'cross',
      ),
    );
    for (const [i, self] of NODES.entries()) {
      const routes = routesOf(i + 1, 'cross').filter((r) => r.type !== 'blackhole');
      assert.deepEqual(
        [...routes].sort((a, b) => a.dst.localeCompare(b.dst)),
        want(self).sort((a, b) => a.dst.localeCompare(b.dst)),
        `${self.name} proto 80 routes:\n${file(i + 1, 'cross-routes.txt')}`,
      );
      const addrs = (
        JSON.parse(file(i + 1, 'cross-tunl0-addr.json')) as { addr_info: { local: string; family: string }[] }[]
      )[0]!.addr_info.filter((a) => a.family === 'inet');
      assert.deepEqual(
        addrs.map((a) => a.local),
        [tunnelOf(self.name)],
        `${self.name} keeps its tunnel address`,
      );
    }
  });

  test('CrossSubnet: pod ↔ pod TCP in all 6 directions; plain TCP between node1 and node2, IP protocol 4 to and from node3', async () => {
    const stop = await startCapture('cross');
    const res = await probes('cross');
    const frames = await stop();
    // same subnet: the node's own address; to node3: through tunl0, the tunnel address
    assertTcp(res, (from, to) => (from === 2 || to === 2 ? tunnelOf(NODES[from]!.name) : NODES[from]!.ip));
    const [n1, n2, n3] = [NODES[0]!, NODES[1]!, NODES[2]!];
    const ipipBetween = (a: VmNode, b: VmNode) =>
      frames.some(
        (f) =>
          f.outer.proto === 4 &&
          f.outer.src === a.ip &&
          f.outer.dst === b.ip &&
          [podIp[a.name], tunnelOf(a.name)].includes(f.inner?.src ?? '') &&
          [podIp[b.name], tunnelOf(b.name)].includes(f.inner?.dst ?? ''),
      );
    const plainBetween = (a: VmNode, b: VmNode) =>
      frames.some((f) => f.outer.proto === 6 && f.outer.src === podIp[a.name] && f.outer.dst === podIp[b.name]);
    const dump = frames.map(describeFrame).join('\n');
    assert.ok(plainBetween(n1, n2) && plainBetween(n2, n1), `no plain pod TCP node1 ↔ node2:\n${dump}`);
    assert.ok(
      !frames.some(
        (f) => f.outer.proto === 4 && [n1.ip, n2.ip].includes(f.outer.src) && [n1.ip, n2.ip].includes(f.outer.dst),
      ),
      `IPIP between node1 and node2 in CrossSubnet:\n${dump}`,
    );
    for (const [a, b] of [
      [n1, n3],
      [n3, n1],
      [n2, n3],
      [n3, n2],
    ] as const) {
      assert.ok(
        ipipBetween(a, b),
        `no IPIP frame ${a.ip} > ${b.ip} with ${podIp[a.name]} > ${podIp[b.name]}:\n${dump}`,
      );
      assert.ok(!plainBetween(a, b), `plain pod TCP ${a.name} → ${b.name} across the router:\n${dump}`);
    }
  });
});
