/**
 * Shell: measures a running lab for its summary (report.ts): node records and blocks (petrelctl node
 * list), each agent's BGP sessions (its status endpoint, asked from the fabric netns at the node
 * address), TCP between every pair of pods (an echo server per pod, one client process per source
 * pod connecting to all destinations at once), and the path one packet takes (tcpdump on the
 * source node's uplink while a pod connects to a pod on another node).
 */
import { join } from 'node:path';
import type { LabCluster } from './cluster.js';
import { birdSessions } from './external.js';
import { execInGuest, parseProbeOutput, probeScript, sq } from './guest-nodes.js';
import { expectedEncap, PROBE_PORT, UPLINK } from './layout.js';
import { CONNECT_ALL, ECHO } from './probe-js.js';
import {
  EXTERNAL_SOURCE,
  encapOfLine,
  type LabSummary,
  type NodeSummary,
  type PathSummary,
  type Probe,
  summarize,
} from './report.js';
import { endGroup, netns, type Proc, pidAlive, spawnGroup, waitFor } from './sh.js';
import type { PodState } from './state.js';

const FETCH_ALL = `
const urls = process.argv.slice(1);
Promise.all(urls.map((u) => fetch(u, { signal: AbortSignal.timeout(3000) }).then((r) => r.json()).catch((e) => ({ error: String(e && e.message || e) }))))
  .then((r) => process.stdout.write(JSON.stringify(r)));
`;

interface NodeListRow {
  name: string;
  ipv4?: string;
  asNumber: number;
  blocks: string[];
  alive: boolean;
}

interface AgentStatus {
  error?: string;
  readiness?: { ready: boolean };
  peers?: { address: string; type: string; state: string }[];
}

async function nodeSummaries(c: LabCluster): Promise<NodeSummary[]> {
  const s = c.state;
  const list = await c.petrelctl('node', 'list', '--json');
  const rows: NodeListRow[] = list.code === 0 ? (JSON.parse(list.stdout) as NodeListRow[]) : [];
  const st = await c.fabric.exec(s.nodeExec, ['-e', FETCH_ALL, ...s.nodes.map((n) => `${n.statusUrl}/status`)], {
    timeoutMs: 15_000,
  });
  const statuses: AgentStatus[] = st.code === 0 ? (JSON.parse(st.stdout) as AgentStatus[]) : [];
  return s.nodes.map((n, i) => {
    const row = rows.find((r) => r.name === n.name);
    const status = statuses[i];
    const answered = status !== undefined && status.error === undefined && status.readiness !== undefined;
    // A guest's agent PID is not this machine's: it runs when it was started and its endpoint answers.
    const running = n.agentPid !== undefined && (n.guest ? answered : pidAlive(n.agentPid));
    return {
      name: n.name,
      ip: n.ip,
      ...(n.ip6 ? { ip6: n.ip6 } : {}),
      asNumber: row?.asNumber ?? n.asNumber,
      blocks: row?.blocks ?? [],
      alive: row?.alive ?? false,
      agent: running ? 'running' : 'stopped',
      ...(running && n.agentPid !== undefined ? { agentPid: n.agentPid } : {}),
      statusUrl: n.statusUrl,
      ...(answered && running ? { ready: status.readiness?.ready === true } : {}),
      sessions:
        answered && running ? (status.peers ?? []).map((p) => ({ peer: p.address, type: p.type, state: p.state })) : [],
    };
  });
}

/** Echo servers in every pod, for the duration of `fn`. */
async function withEchoServers<T>(c: LabCluster, fn: () => Promise<T>): Promise<T> {
  const servers: Proc[] = [];
  try {
    // (A pod in a guest runs its own echo server for its lifetime: guest-nodes.ts.)
    for (const p of c.state.pods.filter((x) => !c.node(x.node).guest)) {
      const d = spawnGroup(
        p.netns,
        c.state.nodeExec,
        ['-e', ECHO, String(PROBE_PORT), p.name],
        join(c.state.dir, `echo-${p.name}.out`),
      );
      servers.push(d);
    }
    for (const d of servers)
      await waitFor('pod echo server', () => {
        if (d.exited()) throw new Error(`echo server exited: ${d.output()}`);
        return d.output().includes('listening');
      });
    return await fn();
  } finally {
    for (const d of servers) await endGroup(d, { graceMs: 1000 });
  }
}

async function matrix(c: LabCluster, timeoutMs: number): Promise<Probe[]> {
  const pods = c.state.pods;
  const ext = c.state.externalRouter;
  const sources = [
    ...pods.map((p) => ({ name: p.name, netns: p.netns })),
    ...(ext ? [{ name: EXTERNAL_SOURCE, netns: ext.netns }] : []),
  ];
  const targetsOf = (from: string) =>
    pods
      .filter((p) => p.name !== from)
      .flatMap((p) => [p.ip, p.ip6].filter((a) => a !== '').map((addr) => ({ p, addr })));
  const inGuest = (name: string) => {
    const p = pods.find((x) => x.name === name);
    return p !== undefined && c.node(p.node).guest !== undefined;
  };
  const guestAnswers = await guestProbes(c, timeoutMs, (p) => targetsOf(p.name).map((t) => `${t.addr}:${PROBE_PORT}`));
  const results = await Promise.all(
    sources.map(async (from) => {
      const targets = targetsOf(from.name);
      if (targets.length === 0) return [];
      const r = inGuest(from.name)
        ? { stdout: guestAnswers.get(from.name) ?? '', stderr: 'no answer from the guest' }
        : await netns(from.netns).exec(
            c.state.nodeExec,
            ['-e', CONNECT_ALL, String(timeoutMs), ...targets.map((t) => `${t.addr}:${PROBE_PORT}`)],
            { timeoutMs: timeoutMs + 10_000 },
          );
      let answers: { t: string; out?: string; err?: string }[] = [];
      try {
        answers = JSON.parse(r.stdout) as typeof answers;
      } catch {
        /* the client failed: every probe fails below */
      }
      return targets.map((t, i): Probe => {
        const a = answers[i];
        const ok = a?.out === t.p.name;
        return {
          from: from.name,
          to: t.p.name,
          addr: t.addr,
          ok,
          ...(ok ? {} : { error: a?.err ?? (a?.out ? `answered ${a.out}` : r.stderr.trim() || 'no answer') }),
        };
      });
    }),
  );
  const probes = results.flat();
  await explainFailures(c, probes);
  return probes;
}

/**
 * The probes of every pod in a guest: one script per guest node (all its pods at once, one node
 * start each); pod name -> CONNECT_ALL's JSON text.
 */
async function guestProbes(
  c: LabCluster,
  timeoutMs: number,
  targets: (p: PodState) => string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(
    c.state.nodes
      .filter((n) => n.guest)
      .map(async (n) => {
        const sources = c.state.pods.filter((p) => p.node === n.name).map((pod) => ({ pod, targets: targets(pod) }));
        if (sources.every((x) => x.targets.length === 0)) return;
        const r = await execInGuest(
          n,
          probeScript(c.state.nodeExec, CONNECT_ALL, timeoutMs, sources),
          timeoutMs + 60_000,
        );
        for (const [k, v] of parseProbeOutput(r.output)) out.set(k, v);
      }),
  );
  return out;
}

/**
 * Appends to each failed probe (the first 8) the route its source pod's node has for the address
 * (`ip route get`): a missing VXLAN or IPIP route then reads as "via 10.99.1.1 dev eth0" (the
 * default route) instead of only "timeout".
 */
async function explainFailures(c: LabCluster, probes: Probe[]): Promise<void> {
  const failed = probes.filter((p) => !p.ok).slice(0, 8);
  await Promise.all(
    failed.map(async (p) => {
      const pod = c.state.pods.find((x) => x.name === p.from);
      if (!pod) return;
      const node = c.node(pod.node);
      const r = node.guest
        ? await execInGuest(node, `ip route get ${sq(p.addr)}`, 30_000)
            .then((x) => ({ code: x.code, stdout: x.output }))
            .catch(() => undefined)
        : await netns(node.netns)
            .exec('ip', ['route', 'get', p.addr], { timeoutMs: 5000 })
            .catch(() => undefined);
      const route = r?.code === 0 ? r.stdout.split('\n')[0]?.trim() : undefined;
      if (route) p.error = `${p.error ?? 'failed'}; ${pod.node} routes it: ${route}`;
    }),
  );
}

/** tcpdump on the uplink of `from`'s node while `from` connects to `to` (a pod on another node). */
async function packetPath(c: LabCluster): Promise<PathSummary | undefined> {
  const s = c.state;
  const from = s.pods.find((p) => p.ip !== '');
  const to = from && s.pods.find((p) => p.node !== from.node && p.ip !== '');
  if (!from || !to) return undefined;
  const a = c.node(from.node);
  const b = c.node(to.node);
  const expected = expectedEncap(s.mode, a.subnet === b.subnet);
  const filter = `udp port 4789 or ip proto 4 or (tcp and host ${to.ip} and port ${PROBE_PORT})`;
  const out = join(s.dir, 'path.out');
  // A guest's uplink is its tap on the fabric bridge (the capture stays on this side).
  const cap = a.guest
    ? spawnGroup(s.fabric, 'tcpdump', ['-l', '-n', '-c', '1', '-i', a.guest.tap, filter], out, undefined, 'w')
    : spawnGroup(a.netns, 'tcpdump', ['-l', '-n', '-c', '1', '-i', UPLINK, filter], out, undefined, 'w');
  let line = '';
  try {
    await waitFor('tcpdump listening', () => cap.exited() || cap.output().includes('listening on'), 10_000);
    const deadline = performance.now() + (a.guest ? 30_000 : 5000);
    while (performance.now() < deadline && !cap.exited()) {
      const target = `${to.ip}:${PROBE_PORT}`;
      if (a.guest)
        await execInGuest(a, probeScript(s.nodeExec, CONNECT_ALL, 2000, [{ pod: from, targets: [target] }]), 60_000);
      else await netns(from.netns).exec(s.nodeExec, ['-e', CONNECT_ALL, '1000', target], { timeoutMs: 5000 });
      await waitFor('a captured frame', () => cap.exited(), 1000).catch(() => {});
    }
  } finally {
    await endGroup(cap, { graceMs: 500 });
    line =
      cap
        .output()
        .split('\n')
        .find((l) => /^\d\d:\d\d:\d\d/.test(l)) ?? '';
  }
  return { from: from.name, to: to.name, seen: encapOfLine(line), expected, line: line.trim() };
}

export interface MeasureOptions {
  /** Per TCP connect (default 2000 ms). */
  connectTimeoutMs?: number;
  /** Capture the path one packet takes (default true). */
  path?: boolean;
}

/** One measurement of the whole lab. */
export async function measureLab(c: LabCluster, o: MeasureOptions = {}): Promise<LabSummary> {
  const s = c.state;
  const nodes = await nodeSummaries(c);
  const { probes, path } = await withEchoServers(c, async () => ({
    probes: await matrix(c, o.connectTimeoutMs ?? 2000),
    path: o.path === false ? undefined : await packetPath(c),
  }));
  return summarize({
    name: s.name,
    mode: s.mode,
    index: s.index,
    etcd: s.etcd?.endpoint ?? '',
    nodes,
    pods: s.pods.map((p) => ({ name: p.name, node: p.node, ip: p.ip, ip6: p.ip6 })),
    matrix: probes,
    ...(path ? { path } : {}),
    ...(s.externalRouter
      ? {
          externalRouter: {
            ip: s.externalRouter.ip,
            asNumber: s.externalRouter.asNumber,
            sessions: await birdSessions(c),
          },
        }
      : {}),
  });
}
