/**
 * `petrelctl node list [--json]`, `node status [--endpoint URL] [--json] [--routes]`,
 * `node rm NAME [--force]`; and `petrelctl bgp config set|show`, `bgp peer add|list|rm`
 * (cluster BGP configuration in etcd, applied by every agent at run time).
 * Bad input: one error line, exit 1 (or 2 for usage), nothing written.
 */
import type { Command } from 'commander';
import { type Ipam, IpamError, type IpamStore, parseSelector } from '../../ipam-etcd/index.js';
import {
  type BgpClusterConfig,
  type BgpPeerRecord,
  checkHoldTime,
  DEFAULT_BGP_CONFIG,
  formatBgpConfig,
  formatBgpPeer,
  type NodeRecord,
  nodeKeys,
  parseAliveRecord,
  parseBgpConfig,
  parseBgpPeer,
  parseNodeRecord,
  tunnelHandle,
  validatePeer,
} from '../node/record.js';
import { removeNode } from '../node/remove.js';
import { ClusterEtcd } from '../sync/etcd.js';
import { type CtlContext, etcdConnection, printJson, table } from './common.js';

const invalid = (msg: string) => new IpamError('invalid', msg);
const checkSelector = (s: string) => {
  parseSelector(s);
};

function uint(v: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max)
    throw invalid(`${flag} ${JSON.stringify(v)} is not a number in ${min}..${max}`);
  return Number(v);
}

async function listNodes(store: IpamStore) {
  const nodes: NodeRecord[] = [];
  for (const kv of await store.list(nodeKeys.nodes)) {
    try {
      nodes.push(parseNodeRecord(kv.key, kv.value));
    } catch {
      // unreadable records are reported by ipam check; skip here
    }
  }
  const alive = new Map<string, { lease: string; since: string }>();
  for (const kv of await store.list(nodeKeys.alive)) {
    try {
      const a = parseAliveRecord(kv.key, kv.value);
      alive.set(a.name, a);
    } catch {
      // ignore
    }
  }
  const blocks = new Map<string, string[]>();
  for (const kv of await store.list('/petrel/ipam/v1/blocks/')) {
    try {
      const b = JSON.parse(kv.value) as { cidr: string; affinity: string | null };
      if (b.affinity?.startsWith('host:')) {
        const n = b.affinity.slice(5);
        blocks.set(n, [...(blocks.get(n) ?? []), b.cidr]);
      }
    } catch {
      // ignore
    }
  }
  return { nodes, alive, blocks };
}

async function readBgpConfig(store: IpamStore): Promise<{ cfg: BgpClusterConfig; rev: string | null }> {
  const kv = await store.get(nodeKeys.bgpConfig);
  return kv
    ? { cfg: parseBgpConfig(kv.key, kv.value), rev: kv.modRevision }
    : { cfg: { ...DEFAULT_BGP_CONFIG }, rev: null };
}

async function withCluster<T>(ctx: CtlContext, fn: (c: ClusterEtcd) => Promise<T>): Promise<T> {
  const o = ctx.options();
  const c = await ClusterEtcd.open(etcdConnection(o));
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

export function registerNode(program: Command, ctx: CtlContext): void {
  const node = program.commands.find((c) => c.name() === 'node') ?? program.command('node').description('node records');
  node.description('node records: labels, addresses, liveness; status of a running agent');

  node
    .command('list')
    .description('nodes registered in etcd: addresses, AS, blocks, tunnel addresses, alive')
    .option('--json', 'JSON output')
    .action(async (opts: { json?: boolean }) => {
      await ctx.withIpam(async (i: Ipam) => {
        const [{ nodes, alive, blocks }, bgp] = await Promise.all([listNodes(i.store), readBgpConfig(i.store)]);
        const rows = nodes.map((n) => ({
          name: n.name,
          ...(n.ipv4 ? { ipv4: n.ipv4 } : {}),
          ...(n.ipv6 ? { ipv6: n.ipv6 } : {}),
          asNumber: n.asNumber ?? bgp.cfg.asNumber,
          asNumberFromNode: n.asNumber !== undefined,
          labels: n.labels,
          ...(n.routeReflectorClusterId ? { routeReflectorClusterId: n.routeReflectorClusterId } : {}),
          blocks: (blocks.get(n.name) ?? []).sort(),
          tunnelAddresses: {
            ...(n.ipipTunnelAddr ? { ipip: n.ipipTunnelAddr } : {}),
            ...(n.vxlanTunnelAddr ? { vxlan: n.vxlanTunnelAddr } : {}),
            ...(n.vxlanTunnelAddrV6 ? { vxlanV6: n.vxlanTunnelAddrV6 } : {}),
          },
          ...(n.vxlanMac ? { vxlanMac: n.vxlanMac } : {}),
          ...(n.agentVersion ? { agentVersion: n.agentVersion } : {}),
          alive: alive.has(n.name),
          ...(alive.get(n.name) ? { since: alive.get(n.name)?.since } : {}),
        }));
        if (opts.json) {
          printJson(rows);
          return;
        }
        ctx.out(
          table([
            ['NAME', 'IPV4', 'IPV6', 'AS', 'BLOCKS', 'TUNNEL ADDRESSES', 'ALIVE'],
            ...rows.map((r) => [
              r.name,
              r.ipv4 ?? '-',
              r.ipv6 ?? '-',
              String(r.asNumber),
              r.blocks.join(',') || '-',
              Object.entries(r.tunnelAddresses)
                .map(([k, v]) => `${k}=${v}`)
                .join(',') || '-',
              r.alive ? 'yes' : 'no',
            ]),
          ]),
        );
      });
    });

  node
    .command('status')
    .description("this node's BGP sessions, from the agent's status endpoint (like calicoctl node status)")
    .option('--endpoint <url>', 'agent status endpoint', 'http://127.0.0.1:9099')
    .option('--json', 'print the raw status JSON')
    .option('--routes', 'also list the Loc-RIB best routes')
    .action(async (opts: { endpoint: string; json?: boolean; routes?: boolean }) => {
      const base = /^https?:\/\//.test(opts.endpoint) ? opts.endpoint.replace(/\/$/, '') : `http://${opts.endpoint}`;
      const get = async (path: string) => {
        const url = `${base}${path}`;
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          return (await res.json()) as Record<string, unknown>;
        } catch (err) {
          throw new Error(`cannot reach the agent at ${url}: ${(err as Error).message}`, { cause: err });
        }
      };
      const st = (await get('/status')) as {
        node: string;
        asn: number;
        routerId: string;
        readiness: { ready: boolean; reasons: string[] };
        peers: {
          address: string;
          type: string;
          state: string;
          establishedAt?: string;
          lastError?: string;
          prefixesReceived: number;
          prefixesAdvertised: number;
        }[];
      };
      const routes = opts.routes
        ? ((await get('/routes')) as unknown as { prefix: string; nextHops: string[]; peer?: string; local: boolean }[])
        : undefined;
      if (opts.json) {
        printJson(routes ? { ...st, routes } : st);
        return;
      }
      ctx.out(
        `Petrel agent on ${st.node}: ${st.readiness.ready ? 'ready' : `not ready (${st.readiness.reasons.join('; ')})`}`,
      );
      ctx.out(`BGP AS ${st.asn}, router ID ${st.routerId || '-'}`);
      ctx.out('');
      ctx.out('IPv4/IPv6 BGP status');
      ctx.out(
        table([
          ['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO'],
          ...st.peers.map((p) => [
            p.address,
            p.type,
            p.state === 'Established' ? 'up' : 'start',
            p.establishedAt ?? '-',
            p.state === 'Established'
              ? `Established (${p.prefixesReceived} in, ${p.prefixesAdvertised} out)`
              : `${p.state}${p.lastError ? `: ${p.lastError}` : ''}`,
          ]),
        ]),
      );
      if (routes) {
        ctx.out('');
        ctx.out(
          table([
            ['PREFIX', 'NEXT HOP', 'FROM'],
            ...routes.map((r) => [r.prefix, r.nextHops.join(',') || '-', r.local ? 'local' : (r.peer ?? '-')]),
          ]),
        );
      }
    });

  node
    .command('rm <name>')
    .description('remove a gone node: its record, blocks, affinities and addresses (refused while it is alive)')
    .option('--force', 'also while its lease is alive (revokes the lease)')
    .action(async (name: string, opts: { force?: boolean }) => {
      await ctx.withIpam(async (i: Ipam) => {
        const r = await removeNode(i, name, {
          force: opts.force ?? false,
          revokeLease: (lease) => withCluster(ctx, (c) => c.revokeLease(lease)),
        });
        if (!r) throw new IpamError('not-found', `node ${name} not found`);
        ctx.out(
          `removed node ${name}: ${r.addresses.length} addresses, ${r.blocks.length} blocks released` +
            (r.orphaned.length ? `, ${r.orphaned.length} blocks kept for other nodes' addresses` : '') +
            ` (tunnel handles ${tunnelHandle.ipip(name)}, ${tunnelHandle.vxlan(name)} included)`,
        );
      });
    });
}

export function registerClusterBgp(program: Command, ctx: CtlContext): void {
  const bgp = program.commands.find((c) => c.name() === 'bgp') ?? program.command('bgp');
  bgp.description('cluster BGP configuration and peers in etcd; run or inspect a standalone speaker');
  const config = bgp.command('config').description('cluster-wide BGP settings (AS, mesh, port, timers)');
  config
    .command('set')
    .description('change cluster BGP settings; agents apply them without restarting')
    .option('--as <n>', 'cluster AS number (default 64512)')
    .option('--node-mesh <on|off>', 'node-to-node mesh (default on)')
    .option('--listen-port <p>', 'BGP port (default 179)')
    .option('--hold-time <s>', 'hold time in seconds (0 or 3..65535, default 90)')
    .option('--graceful-restart-time <s>', 'graceful restart time in seconds (default 120)')
    .action(
      async (o: {
        as?: string;
        nodeMesh?: string;
        listenPort?: string;
        holdTime?: string;
        gracefulRestartTime?: string;
      }) => {
        const change: Partial<BgpClusterConfig> = {};
        if (o.as !== undefined) change.asNumber = uint(o.as, '--as', 1, 4294967295);
        if (o.nodeMesh !== undefined) {
          if (o.nodeMesh !== 'on' && o.nodeMesh !== 'off')
            throw invalid(`--node-mesh ${JSON.stringify(o.nodeMesh)}: on or off`);
          change.nodeToNodeMesh = o.nodeMesh === 'on';
        }
        if (o.listenPort !== undefined) change.listenPort = uint(o.listenPort, '--listen-port', 1, 65535);
        if (o.holdTime !== undefined) {
          const h = uint(o.holdTime, '--hold-time', 0, 65535);
          try {
            checkHoldTime(h, '--hold-time');
          } catch (err) {
            throw invalid((err as Error).message);
          }
          change.holdTimeSec = h;
        }
        if (o.gracefulRestartTime !== undefined)
          change.gracefulRestartTimeSec = uint(o.gracefulRestartTime, '--graceful-restart-time', 0, 4095);
        if (Object.keys(change).length === 0) throw invalid('bgp config set: nothing to change (see --help)');
        await ctx.withIpam(async (i: Ipam) => {
          const { cfg, rev } = await readBgpConfig(i.store);
          const next = { ...cfg, ...change };
          await i.store.commit(
            [{ key: nodeKeys.bgpConfig, modRevision: rev }],
            [{ key: nodeKeys.bgpConfig, value: formatBgpConfig(next) }],
          );
          ctx.out(
            `BGP config: AS ${next.asNumber}, mesh ${next.nodeToNodeMesh ? 'on' : 'off'}, port ${next.listenPort}, hold time ${next.holdTimeSec} s, graceful restart ${next.gracefulRestartTimeSec} s`,
          );
        });
      },
    );
  config
    .command('show')
    .description('show the cluster BGP settings (defaults when never set)')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      await ctx.withIpam(async (i: Ipam) => {
        const { cfg } = await readBgpConfig(i.store);
        if (o.json) {
          printJson(cfg);
          return;
        }
        ctx.out(
          table([
            ['AS', 'NODE MESH', 'LISTEN PORT', 'HOLD TIME', 'GRACEFUL RESTART'],
            [
              String(cfg.asNumber),
              cfg.nodeToNodeMesh ? 'on' : 'off',
              String(cfg.listenPort),
              `${cfg.holdTimeSec}s`,
              `${cfg.gracefulRestartTimeSec}s`,
            ],
          ]),
        );
      });
    });

  const peer = bgp
    .command('peer')
    .description('BGP peers: global, node-specific, or nodes by selector (route reflectors)');
  peer
    .command('add <name>')
    .description('add (or replace) a BGP peer')
    .option('--peer-ip <ip>', 'address of an external peer')
    .option('--as <n>', 'AS of the external peer')
    .option('--node <node>', 'only this node has the session')
    .option('--node-selector <sel>', 'only nodes matching this selector, e.g. "rack == \'r1\'"')
    .option('--peer-selector <sel>', 'the peers are the nodes matching this selector (route reflectors)')
    .option('--hold-time <s>', 'hold time in seconds')
    .option('--passive', 'never connect; wait for the peer')
    .action(
      async (
        name: string,
        o: {
          peerIp?: string;
          as?: string;
          node?: string;
          nodeSelector?: string;
          peerSelector?: string;
          holdTime?: string;
          passive?: boolean;
        },
      ) => {
        const p: BgpPeerRecord = { name };
        if (o.peerIp !== undefined) p.peerIp = o.peerIp;
        if (o.as !== undefined) p.asNumber = uint(o.as, '--as', 1, 4294967295);
        if (o.node !== undefined) p.node = o.node;
        if (o.nodeSelector !== undefined) p.nodeSelector = o.nodeSelector;
        if (o.peerSelector !== undefined) p.peerSelector = o.peerSelector;
        if (o.holdTime !== undefined) p.holdTimeSec = uint(o.holdTime, '--hold-time', 0, 65535);
        if (o.passive) p.passive = true;
        try {
          validatePeer(p, checkSelector);
        } catch (err) {
          throw invalid((err as Error).message);
        }
        await ctx.withIpam(async (i: Ipam) => {
          await i.store.commit([], [{ key: nodeKeys.bgpPeer(name), value: formatBgpPeer(p) }]);
          ctx.out(`BGP peer ${name} set`);
        });
      },
    );
  peer
    .command('list')
    .description('list BGP peers')
    .option('--json', 'JSON output')
    .action(async (o: { json?: boolean }) => {
      await ctx.withIpam(async (i: Ipam) => {
        const peers: BgpPeerRecord[] = [];
        for (const kv of await i.store.list(nodeKeys.bgpPeers))
          peers.push(parseBgpPeer(kv.key, kv.value, checkSelector));
        if (o.json) {
          printJson(peers);
          return;
        }
        ctx.out(
          table([
            ['NAME', 'PEER IP', 'AS', 'NODE', 'NODE SELECTOR', 'PEER SELECTOR', 'HOLD', 'PASSIVE'],
            ...peers.map((p) => [
              p.name,
              p.peerIp ?? '-',
              p.asNumber !== undefined ? String(p.asNumber) : '-',
              p.node ?? (p.nodeSelector ? '-' : '(all)'),
              p.nodeSelector ?? '-',
              p.peerSelector ?? '-',
              p.holdTimeSec !== undefined ? `${p.holdTimeSec}s` : '-',
              p.passive ? 'yes' : 'no',
            ]),
          ]),
        );
      });
    });
  peer
    .command('rm <name>')
    .description('remove a BGP peer')
    .action(async (name: string) => {
      await ctx.withIpam(async (i: Ipam) => {
        const kv = await i.store.get(nodeKeys.bgpPeer(name));
        if (!kv) throw new IpamError('not-found', `BGP peer ${name} not found`);
        await i.store.commit([{ key: kv.key, modRevision: kv.modRevision }], [{ key: kv.key, delete: true }]);
        ctx.out(`BGP peer ${name} removed`);
      });
    });
}
