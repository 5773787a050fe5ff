/**
 * Shared checks of the multi-node tests: the node records and blocks as petrelctl reports them,
 * the route shape each pool mode must give in every node's kernel (computed here independently of
 * agent/routing: what issue 9 specifies), TCP echo servers in pods, and the all-pairs TCP matrix.
 */
import assert from 'node:assert/strict';
import type { Cluster, ClusterNode, KernelRoute, Pod } from '../../helpers/cluster.js';
import { UPLINK } from '../../helpers/cluster.js';
import { tcpRequest } from '../../helpers/netns.js';
import { type Daemon, waitFor } from '../../helpers/process.js';

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
): Promise<Daemon> {
  const d = c.spawn(ns, process.execPath, ['-e', ECHO, host, String(port), tag]);
  await waitFor(`echo server ${tag}`, () => {
    if (d.exited()) throw new Error(`echo server ${tag} exited: ${d.output()}`);
    return d.output().includes('listening');
  });
  return d;
}

/** Connects from `from` to `host:port`; resolves with the echo ("<tag> <client address>"). */
export function tcp(from: { name: string }, host: string, port = ECHO_PORT, timeoutMs = 3000): Promise<string> {
  return tcpRequest(from, host, port, timeoutMs);
}

/**
 * Every pod to every pod on another node, and every node to every remote pod, over `fam`; each
 * answer must name the server and show the client's own address (no NAT inside the pools).
 * Pods must already run echo servers tagged with their names.
 */
export async function tcpMatrix(pods: Pod[], nodes: ClusterNode[], fam: 4 | 6 = 4): Promise<number> {
  const addr = (p: Pod) => (fam === 4 ? p.ip : p.ip6);
  let n = 0;
  const failures: string[] = [];
  for (const a of pods) {
    for (const b of pods) {
      if (a === b || a.node === b.node) continue;
      try {
        const got = await tcp(a.netns, addr(b));
        if (got !== `${b.name} ${addr(a)}`) failures.push(`${a.name} -> ${b.name}: got "${got}"`);
      } catch (err) {
        failures.push(`${a.name} (${a.node.name}) -> ${b.name} (${b.node.name}) ${addr(b)}: ${(err as Error).message}`);
      }
      n++;
    }
  }
  for (const node of nodes) {
    for (const b of pods) {
      if (b.node === node) continue;
      try {
        const got = await tcp(node.ns, addr(b));
        assert.ok(got.startsWith(`${b.name} `), `${node.name} -> ${b.name}: got "${got}"`);
      } catch (err) {
        failures.push(`${node.name} -> ${b.name} (${b.node.name}) ${addr(b)}: ${(err as Error).message}`);
      }
      n++;
    }
  }
  assert.deepEqual(failures, [], `TCP failures:\n${failures.join('\n')}`);
  return n;
}
