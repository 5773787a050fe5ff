/**
 * Shared checks of the multi-node tests: the node records and blocks as petrelctl reports them,
 * the route shape each pool mode must give in every node's kernel (computed here independently of
 * agent/routing: what issue 9 specifies), TCP echo servers in pods, and the all-pairs TCP matrix.
 */
import assert from 'node:assert/strict';
import { CONNECT_ALL } from '../../../agent/lab/probe-js.js';
import type { Proc } from '../../../agent/lab/sh.js';
import type { Cluster, ClusterNode, KernelRoute, Pod } from '../../helpers/cluster.js';
import { BIN_DIR, UPLINK } from '../../helpers/cluster.js';
import { run, tcpRequest } from '../../helpers/netns.js';
import { waitFor } from '../../helpers/process.js';

export interface NodeInfo {
  name: string;
  ipv4?: string;
  ipv6?: string;
  blocks: string[];
  tunnelAddresses: { vxlan?: string; vxlanV6?: string; ipip?: string };
  vxlanMac?: string;
  alive: boolean;
}

export async function nodeList(c: Cluster): Promise<NodeInfo[]> {
  return JSON.parse(await c.petrelctlOk('node', 'list', '--json')) as NodeInfo[];
}

export type Mode = 'Never' | 'VXLAN' | 'VXLANCrossSubnet';

/** One expected kernel route: destination plus what must hold for it. */
export interface Expected {
  dst: string;
  type?: 'blackhole';
  gateway?: string;
  dev?: string;
  onlink?: boolean;
}

const family = (cidr: string) => (cidr.includes(':') ? 6 : 4);

/** Does `cidr` (a block) fall inside `pool`? Prefix comparison on the textual form is enough here: pools are /16 or /48-style and blocks come from them. */
export function inPool(block: string, pool: string): boolean {
  const [pb, plen] = pool.split('/') as [string, string];
  const [bb] = block.split('/') as [string];
  if (family(block) !== family(pool)) return false;
  if (family(pool) === 4) {
    const n = (s: string) => s.split('.').reduce((a, x) => (a << 8n) + BigInt(Number(x)), 0n);
    const m = ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - Number(plen))) - 1n);
    return (n(bb) & m) === (n(pb) & m);
  }
  const n6 = (s: string) => {
    const [h, t = ''] = s.split('::') as [string, string?];
    const hs = h ? h.split(':') : [];
    const ts = t ? t.split(':') : [];
    const all = s.includes('::') ? [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts] : hs;
    return all.reduce((a, x) => (a << 16n) + BigInt(Number.parseInt(x || '0', 16)), 0n);
  };
  const m6 = ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - Number(plen))) - 1n);
  return (n6(bb) & m6) === (n6(pb) & m6);
}

/**
 * What `self`'s kernel must hold (proto 80) for the blocks of `pool` in `mode`: a blackhole per own
 * block, and per other node's block the route the mode gives (issue 9 "Kernel routes").
 */
export function expectedRoutes(
  self: ClusterNode,
  infos: NodeInfo[],
  pool: string,
  mode: Mode,
  nodes: ClusterNode[],
): Expected[] {
  const fam = family(pool);
  const out: Expected[] = [];
  for (const info of infos) {
    for (const b of info.blocks.filter((x) => inPool(x, pool))) {
      if (info.name === self.name) {
        out.push({ dst: b, type: 'blackhole' });
        continue;
      }
      const peer = nodes.find((n) => n.name === info.name);
      assert.ok(peer, `block ${b} of unknown node ${info.name}`);
      const peerIp = fam === 4 ? peer.ip : peer.ip6;
      assert.ok(peerIp, `${peer.name} has no IPv${fam} address`);
      const direct = mode === 'Never' || (mode === 'VXLANCrossSubnet' && peer.subnet === self.subnet);
      if (direct) out.push({ dst: b, gateway: peerIp, dev: UPLINK });
      else {
        const vtep = fam === 4 ? info.tunnelAddresses.vxlan : info.tunnelAddresses.vxlanV6;
        assert.ok(vtep, `${info.name} has no VXLAN tunnel address for IPv${fam}: ${JSON.stringify(info)}`);
        out.push({ dst: b, gateway: vtep, dev: fam === 4 ? 'petrel.vxlan' : 'petrel.vxlan6', onlink: true });
      }
    }
  }
  return out;
}

/** Differences between expected routes and the kernel's (empty = matches). */
export function routeMismatches(expected: Expected[], kernel: KernelRoute[]): string[] {
  const bad: string[] = [];
  for (const e of expected) {
    const k = kernel.find((r) => r.dst === e.dst);
    if (!k) {
      bad.push(`missing ${e.dst}`);
      continue;
    }
    const got = `${k.type ?? 'unicast'} via ${k.gateway ?? '-'} dev ${k.dev ?? '-'} ${(k.flags ?? []).join(',')}`;
    if (e.type === 'blackhole') {
      if (k.type !== 'blackhole') bad.push(`${e.dst}: want blackhole, got ${got}`);
      continue;
    }
    if (k.type && k.type !== 'unicast') bad.push(`${e.dst}: want unicast, got ${got}`);
    if (e.gateway && k.gateway !== e.gateway) bad.push(`${e.dst}: want via ${e.gateway}, got ${got}`);
    if (e.dev && k.dev !== e.dev) bad.push(`${e.dst}: want dev ${e.dev}, got ${got}`);
    if (e.onlink && !(k.flags ?? []).includes('onlink')) bad.push(`${e.dst}: want onlink, got ${got}`);
  }
  return bad;
}

/**
 * Waits until every node's kernel holds the expected routes for `pool` (node records and blocks
 * re-read each round: blocks appear as pods are added). Returns the last node list.
 */
export async function waitRoutes(c: Cluster, pool: string, mode: Mode, timeoutMs = 20_000): Promise<NodeInfo[]> {
  let last: string[] = [];
  let infos: NodeInfo[] = [];
  try {
    await waitFor(
      `routes for ${pool} (${mode})`,
      async () => {
        infos = await nodeList(c);
        last = [];
        for (const n of c.nodes) {
          if (!n.agent) continue;
          if (!infos.find((i) => i.name === n.name)?.alive) last.push(`${n.name}: not registered and alive`);
          const want = expectedRoutes(n, infos, pool, mode, c.nodes);
          const got = await c.routes(n, family(pool));
          for (const m of routeMismatches(want, got)) last.push(`${n.name}: ${m}`);
        }
        return last.length === 0;
      },
      timeoutMs,
      200,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${last.join('\n')}\n${c.logs(15)}`);
  }
  return infos;
}

const ECHO = `
const net = require('net');
const [host, port, tag] = process.argv.slice(1);
const srv = net.createServer((s) => {
  s.on('error', () => {});
  s.end(tag + ' ' + String(s.remoteAddress).replace(/^::ffff:/, '') + '\\n');
});
srv.listen({ host, port: Number(port), ipv6Only: false }, () => process.stdout.write('listening\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

export const ECHO_PORT = 7000;

/** An echo server ("<tag> <client address>") on [::]:port inside a namespace, ended by c.stop(). */
export async function echoServer(
  c: Cluster,
  ns: { name: string },
  tag: string,
  port = ECHO_PORT,
  host = '::',
): Promise<Proc> {
  const d = c.spawn(ns, process.execPath, ['-e', ECHO, host, String(port), tag]);
  const how = await waitFor(`echo server ${tag}`, () =>
    d.exited() ? 'exited' : d.output().includes('listening') && 'up',
  );
  if (how === 'exited') throw new Error(`echo server ${tag} exited: ${d.output()}`);
  return d;
}

/** Connects from `from` to `host:port`; resolves with the echo ("<tag> <client address>"). */
export function tcp(from: { name: string }, host: string, port = ECHO_PORT, timeoutMs = 3000): Promise<string> {
  return tcpRequest(from, host, port, timeoutMs);
}

/** Connects from `from` to every target ("host:port", IPv6 bare) at once, in one process; answers in order. */
export async function tcpMany(
  from: { name: string },
  targets: string[],
  timeoutMs = 3000,
): Promise<{ t: string; out?: string; err?: string }[]> {
  const r = await run(
    'ip',
    ['netns', 'exec', from.name, process.execPath, '-e', CONNECT_ALL, String(timeoutMs), ...targets],
    {
      timeoutMs: timeoutMs + 20_000,
    },
  );
  if (r.code !== 0) throw new Error(`tcp prober in ${from.name}: ${r.code} ${r.stderr}`);
  return JSON.parse(r.stdout) as { t: string; out?: string; err?: string }[];
}

/**
 * Every pod to every pod on another node, and every node to every remote pod, over `fam`; each
 * answer must name the server and show the client's own address (no NAT inside the pools).
 * Pods must already run echo servers (ECHO_PORT) tagged with their names. Returns the pair count.
 */
export async function tcpMatrix(pods: Pod[], nodes: ClusterNode[], fam: 4 | 6 = 4): Promise<number> {
  const addr = (p: Pod) => (fam === 4 ? p.ip : p.ip6);
  let n = 0;
  const failures: string[] = [];
  const sources: { name: string; ns: { name: string }; node: ClusterNode; self?: string }[] = [
    ...pods.map((p) => ({ name: `${p.name} (${p.node.name})`, ns: p.netns, node: p.node, self: addr(p) })),
    ...nodes.filter((x) => x.agent).map((x) => ({ name: x.name, ns: x.ns, node: x })),
  ];
  for (const s of sources) {
    const targets = pods.filter((b) => b.node !== s.node);
    n += targets.length;
    const res = await tcpMany(
      s.ns,
      targets.map((b) => `${addr(b)}:${ECHO_PORT}`),
    );
    targets.forEach((b, i) => {
      const r = res[i];
      const want = s.self ? `${b.name} ${s.self}` : undefined;
      if (r?.err) failures.push(`${s.name} -> ${b.name} (${b.node.name}) ${addr(b)}: ${r.err}`);
      else if (want ? r?.out !== want : !r?.out?.startsWith(`${b.name} `))
        failures.push(`${s.name} -> ${b.name}: got "${r?.out}"${want ? `, want "${want}"` : ''}`);
    });
  }
  assert.deepEqual(failures, [], `TCP failures:\n${failures.join('\n')}`);
  return n;
}

/**
 * The agent's /status JSON, from inside the node: `petrelctl node status --json` (the operator's
 * way), or curl for polling loops (a petrelctl start costs about a second on a busy 2-core machine).
 */
export async function agentStatus(
  c: Cluster,
  node: ClusterNode,
  via: 'petrelctl' | 'curl' = 'curl',
): Promise<{
  readiness: { ready: boolean; reasons: string[] };
  peers: { address: string; type: string; state: string }[];
}> {
  const r =
    via === 'petrelctl'
      ? await c.exec(node, `${BIN_DIR}/petrelctl`, ['node', 'status', '--endpoint', node.statusUrl, '--json'])
      : await c.exec(node, 'curl', ['-sS', '--max-time', '5', `${node.statusUrl}/status`]);
  if (r.code !== 0) throw new Error(`node status on ${node.name} (${via}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Waits until the agent's /readyz is true (all sessions Established, routes programmed, IPAM reachable). */
export async function waitReady(c: Cluster, node: ClusterNode, timeoutMs = 30_000): Promise<void> {
  let why = '';
  await waitFor(
    `${node.name} ready`,
    async () => {
      const st = await agentStatus(c, node);
      why = st.readiness.reasons.join('; ');
      return st.readiness.ready;
    },
    timeoutMs,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${why}\n${c.logs(20)}`);
  });
}

const PROBE = `
const net = require('net');
const fs = require('fs');
const [host, port, everyMs] = process.argv.slice(1);
let ok = 0, fail = 0;
const errors = [];
let inflight = false;
setInterval(() => {
  if (inflight) return;
  inflight = true;
  const t0 = Date.now();
  const s = net.connect({ host, port: Number(port) });
  const done = (err) => {
    s.destroy();
    inflight = false;
    if (err) { fail++; if (errors.length < 20) errors.push(new Date(t0).toISOString() + ' ' + err); } else ok++;
  };
  s.setTimeout(1000, () => done('timeout'));
  s.on('data', () => {});
  s.on('end', () => done());
  s.on('error', (e) => done(e.code || e.message));
}, Number(everyMs));
process.on('SIGTERM', () => { fs.writeSync(1, '\\nRESULT ' + JSON.stringify({ ok, fail, errors }) + '\\n'); process.exit(0); });
fs.writeSync(1, 'probing\\n');
`;

export interface Probe {
  /** Stops the loop; resolves with the counts. */
  finish(): Promise<{ ok: number; fail: number; errors: string[] }>;
}

/** A TCP connect loop (every `everyMs`, 1 s timeout each) from `from` to host:ECHO_PORT. */
export async function probeLoop(c: Cluster, from: { name: string }, host: string, everyMs = 50): Promise<Probe> {
  const d = c.spawn(from, process.execPath, ['-e', PROBE, host, String(ECHO_PORT), String(everyMs)]);
  await waitFor('probe loop', () => d.output().includes('probing'));
  return {
    async finish() {
      await c.kill(d);
      const m = /RESULT (.*)/.exec(d.output());
      if (!m) throw new Error(`probe gave no result: ${d.output()}`);
      return JSON.parse(m[1] as string) as { ok: number; fail: number; errors: string[] };
    },
  };
}
