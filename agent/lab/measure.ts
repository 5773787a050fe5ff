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
import { expectedEncap, PROBE_PORT, UPLINK } from './layout.js';
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

const FETCH_ALL = `
const urls = process.argv.slice(1);
Promise.all(urls.map((u) => fetch(u, { signal: AbortSignal.timeout(3000) }).then((r) => r.json()).catch((e) => ({ error: String(e && e.message || e) }))))
  .then((r) => process.stdout.write(JSON.stringify(r)));
`;

const ECHO = `
const net = require('net');
const [port, tag] = process.argv.slice(1);
const srv = net.createServer((s) => { s.on('error', () => {}); s.end(tag + '\\n'); });
srv.listen({ host: '::', port: Number(port), ipv6Only: false }, () => process.stdout.write('listening\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

/**
 * Node script: `-e CONNECT_ALL MS HOST:PORT...` connects to every target at once (IPv6 bare, split at
 * the last ':'), each with an MS timeout, and prints [{ t, out } | { t, err }] in target order.
 */
export const CONNECT_ALL = `
const net = require('net');
const [ms, ...targets] = process.argv.slice(1);
const one = (t) => new Promise((resolve) => {
  const i = t.lastIndexOf(':');
  const s = net.connect({ host: t.slice(0, i), port: Number(t.slice(i + 1)) });
  let out = '';
  const done = (r) => { s.destroy(); resolve(r); };
  s.setTimeout(Number(ms), () => done({ t, err: 'timeout' }));
  s.on('data', (d) => { out += d; });
  s.on('end', () => done({ t, out: out.trim() }));
  s.on('error', (e) => done({ t, err: e.code || e.message }));
});
Promise.all(targets.map(one)).then((r) => { process.stdout.write(JSON.stringify(r)); });
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
    const running = n.agentPid !== undefined && pidAlive(n.agentPid);
    const answered = status !== undefined && status.error === undefined && status.readiness !== undefined;
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
    for (const p of c.state.pods) {
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
  const results = await Promise.all(
    sources.map(async (from) => {
      const targets = pods
        .filter((p) => p.name !== from.name)
        .flatMap((p) => [p.ip, p.ip6].filter((a) => a !== '').map((addr) => ({ p, addr })));
      if (targets.length === 0) return [];
      const r = await netns(from.netns).exec(
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
      const r = await netns(c.node(pod.node).netns)
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
  const cap = spawnGroup(a.netns, 'tcpdump', ['-l', '-n', '-c', '1', '-i', UPLINK, filter], out, undefined, 'w');
  let line = '';
  try {
    await waitFor('tcpdump listening', () => cap.exited() || cap.output().includes('listening on'), 10_000);
    const deadline = performance.now() + 5000;
    while (performance.now() < deadline && !cap.exited()) {
      await netns(from.netns).exec(s.nodeExec, ['-e', CONNECT_ALL, '1000', `${to.ip}:${PROBE_PORT}`], {
        timeoutMs: 5000,
      });
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
