/**
 * `lab up --external-router`: a BIRD 2 router on the lab's fabric (netns PREFIX-ext at 10.99.I.250,
 * AS 65000), eBGP with every node (a global `petrelctl bgp peer`), installing what it learns in its
 * own kernel: it is "the top-of-rack router" and reaches every pod over the blocks the nodes
 * advertise. The config text is pure (birdConfigText); startExternalRouter and birdSessions are shell.
 */
import { join } from 'node:path';
import type { LabCluster } from './cluster.js';
import { labAddresses, UPLINK } from './layout.js';
import { run } from './sh.js';

export const EXTERNAL_AS = 65000;
export const EXTERNAL_PEER_NAME = 'lab-external-router';

/** BIRD 2: one eBGP session per node, learned routes into the kernel, nothing of its own exported. */
export function birdConfigText(o: {
  routerId: string;
  localIp: string;
  localIp6?: string;
  localAs: number;
  clusterAs: number;
  nodes: readonly { name: string; ip: string; ip6?: string }[];
}): string {
  const lines = [
    `router id ${o.routerId};`,
    'protocol device {}',
    'protocol kernel k4 { ipv4 { export all; }; }',
    ...(o.localIp6 ? ['protocol kernel k6 { ipv6 { export all; }; }'] : []),
  ];
  const session = (name: string, local: string, peer: string, af: 'ipv4' | 'ipv6') => [
    `protocol bgp ${name} {`,
    `  local ${local} as ${o.localAs};`,
    `  neighbor ${peer} as ${o.clusterAs};`,
    '  connect retry time 1;',
    '  error wait time 1, 5;',
    `  ${af} { import all; export none; };`,
    '}',
  ];
  for (const n of o.nodes) {
    const id = n.name.replace(/[^A-Za-z0-9]/g, '_');
    lines.push(...session(id, o.localIp, n.ip, 'ipv4'));
    if (o.localIp6 && n.ip6) lines.push(...session(`${id}_v6`, o.localIp6, n.ip6, 'ipv6'));
  }
  return `${lines.join('\n')}\n`;
}

/** `birdc show protocols` -> BGP protocol name and state ("Established", "Active", ...). */
export function parseBirdProtocols(text: string): { name: string; state: string }[] {
  const out: { name: string; state: string }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Name Proto Table State Since Info
    if (f[1] !== 'BGP') continue;
    const info = f.slice(5).join(' ');
    out.push({
      name: f[0] ?? '',
      state: /Established/.test(info) ? 'Established' : info.split(' ')[0] || (f[3] ?? ''),
    });
  }
  return out;
}

/** Makes the router's namespace, starts BIRD and adds it as a global peer of every node. */
export async function startExternalRouter(c: LabCluster, write: (file: string, text: string) => void): Promise<void> {
  const s = c.state;
  const A = labAddresses(s.index);
  const ns = await c.makeNetns('ext');
  await c.fabric.ip('link', 'add', 'vext', 'type', 'veth', 'peer', 'name', UPLINK, 'netns', ns.name);
  await c.fabric.ip('link', 'set', 'vext', 'master', 'br0', 'up');
  await ns.ip('addr', 'add', `${A.externalRouterIp}/24`, 'dev', UPLINK);
  await ns.ip('link', 'set', UPLINK, 'up');
  if (s.ipv6) await ns.ip('addr', 'add', `${A.externalRouterIp6}/64`, 'dev', UPLINK, 'nodad');
  const conf = join(s.dir, 'bird.conf');
  const sock = join(s.dir, 'bird.ctl');
  write(
    conf,
    birdConfigText({
      routerId: A.externalRouterIp,
      localIp: A.externalRouterIp,
      ...(s.ipv6 ? { localIp6: A.externalRouterIp6 } : {}),
      localAs: EXTERNAL_AS,
      clusterAs: s.nodes[0]?.asNumber ?? 64512,
      nodes: s.nodes,
    }),
  );
  c.spawn(ns.name, 'bird', 'bird', ['-f', '-c', conf, '-s', sock, '-P', join(s.dir, 'bird.pid')]);
  s.externalRouter = {
    netns: ns.name,
    ip: A.externalRouterIp,
    ...(s.ipv6 ? { ip6: A.externalRouterIp6 } : {}),
    asNumber: EXTERNAL_AS,
  };
  await c.petrelctlOk(
    'bgp',
    'peer',
    'add',
    EXTERNAL_PEER_NAME,
    '--peer-ip',
    A.externalRouterIp,
    '--as',
    String(EXTERNAL_AS),
  );
  if (s.ipv6)
    await c.petrelctlOk(
      'bgp',
      'peer',
      'add',
      `${EXTERNAL_PEER_NAME}-v6`,
      '--peer-ip',
      A.externalRouterIp6,
      '--as',
      String(EXTERNAL_AS),
    );
}

/** BIRD's view of its sessions (empty when birdc does not answer). */
export async function birdSessions(c: LabCluster): Promise<{ name: string; state: string }[]> {
  const r = await run('birdc', ['-s', join(c.state.dir, 'bird.ctl'), 'show', 'protocols'], { timeoutMs: 5000 });
  return r.code === 0 ? parseBirdProtocols(r.stdout) : [];
}
