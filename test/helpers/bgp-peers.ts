/**
 * Launchers for real BGP peers inside a network namespace, for integration tests: BIRD 2
 * (`bird -f -c CONF -s SOCK -P PID`) and GoBGP (`gobgpd -f CONF`), plus a tshark capture. Each
 * launcher writes its config into a fresh temp dir, starts the daemon in the namespace, waits
 * until its control channel answers, and `stop()` kills it by PID and removes the temp dir.
 * Config builders cover what the interop tests need (eBGP/iBGP, IPv4/IPv6 channels, ADD-PATH,
 * static routes to export); pass raw config text for anything else.
 */

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ExecResult, Netns } from './netns.js';
import type { Daemon } from './process.js';
import { waitFor } from './process.js';

export interface Peer {
  readonly pid: number;
  readonly dir: string;
  readonly daemon: Daemon;
  /** Stops the daemon by PID (SIGTERM, then SIGKILL) and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
}

function tempDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `petrel-${tag}-`));
}

function makeStop(d: Daemon, dir: string): () => Promise<void> {
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    await d.stop(3000);
    rmSync(dir, { recursive: true, force: true });
  };
}

// ---------------------------------------------------------------- BIRD 2

export interface BirdNeighbor {
  name: string;
  localAddress: string;
  localAs: number;
  address: string;
  as: number;
  /** Channels to enable on this session. */
  ipv4?: boolean;
  ipv6?: boolean;
  /** `add paths on` in each enabled channel. */
  addPaths?: boolean;
  extendedMessages?: boolean;
  /** Extra statements for the export filter, e.g. `bgp_med = 50;`. */
  exportStatements?: string;
  holdTimeSec?: number;
  /** Only accept connections (`passive on`). */
  passive?: boolean;
  /** Import policy of each channel (`all`). `none` keeps nothing from this peer. */
  import?: 'all' | 'none';
  /** `none` exports nothing to this peer (default: the export filter accepting everything). */
  export?: 'filter' | 'none';
  /** Extra statements inside `protocol bgp` (e.g. `rr client;`) and inside each channel (e.g. `gateway direct;`). */
  extra?: string;
  channelExtra?: string;
}

export interface BirdConfigOptions {
  routerId: string;
  neighbors: BirdNeighbor[];
  /** Add `protocol direct { ipv4; ipv6; }` (next-hop resolution for iBGP). No kernel protocol either way. */
  direct?: boolean;
  /** Static routes exported to BGP (blackhole routes; nothing reaches the kernel). */
  static4?: string[];
  static6?: string[];
}

/** A BIRD 2 config: device protocol, static routes, one `protocol bgp` per neighbor; no kernel protocol. */
export function birdConfig(o: BirdConfigOptions): string {
  const lines = [`router id ${o.routerId};`, 'protocol device {}'];
  if (o.direct) lines.push('protocol direct { ipv4; ipv6; }');
  if (o.static4?.length)
    lines.push(`protocol static s4 { ipv4; ${o.static4.map((r) => `route ${r} blackhole;`).join(' ')} }`);
  if (o.static6?.length)
    lines.push(`protocol static s6 { ipv6; ${o.static6.map((r) => `route ${r} blackhole;`).join(' ')} }`);
  for (const n of o.neighbors) {
    const filter = n.export === 'none' ? 'export none;' : `export filter { ${n.exportStatements ?? ''} accept; };`;
    const channel = (af: string) =>
      `  ${af} { import ${n.import ?? 'all'}; ${filter} ${n.addPaths ? 'add paths on;' : ''} ${n.channelExtra ?? ''} };`;
    lines.push(
      `protocol bgp ${n.name} {`,
      `  local ${n.localAddress} as ${n.localAs};`,
      `  neighbor ${n.address} as ${n.as};`,
      `  hold time ${n.holdTimeSec ?? 90};`,
      '  connect retry time 1;',
      '  error wait time 1, 5;',
      n.extendedMessages ? '  enable extended messages on;' : '',
      n.passive ? '  passive on;' : '',
      n.extra ? `  ${n.extra}` : '',
      n.ipv4 !== false ? channel('ipv4') : '',
      n.ipv6 ? channel('ipv6') : '',
      '}',
    );
  }
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}

export interface BirdPeer extends Peer {
  readonly socket: string;
  /** `birdc -s SOCK <args>`; resolves with stdout. */
  birdc(...args: string[]): Promise<string>;
}

/**
 * BIRD in a namespace. `args` are extra daemon arguments (e.g. -R for graceful-restart recovery);
 * `bin` chooses the binaries (BIRD 2 from PATH by default; BIRD 1.6 from its cache dir).
 */
export async function startBird(
  ns: Netns,
  config: string,
  args: string[] = [],
  bin: { bird: string; birdc: string } = { bird: 'bird', birdc: 'birdc' },
): Promise<BirdPeer> {
  const dir = tempDir('bird');
  const conf = join(dir, 'bird.conf');
  const socket = join(dir, 'bird.ctl');
  writeFileSync(conf, config);
  const daemon = ns.spawn(bin.bird, ['-f', '-c', conf, '-s', socket, '-P', join(dir, 'bird.pid'), ...args]);
  const stop = makeStop(daemon, dir);
  const birdc = async (...a: string[]) => {
    const r: ExecResult = await ns.exec(bin.birdc, ['-s', socket, ...a], { timeoutMs: 5000 });
    if (r.code !== 0) throw new Error(`birdc ${a.join(' ')}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  try {
    await waitFor('bird control socket', async () => {
      if (daemon.exited()) throw new Error(`bird exited: ${daemon.output()}`);
      return existsSync(socket) && (await birdc('show', 'status')).includes('Daemon is up');
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: daemon.pid, dir, daemon, socket, birdc, stop };
}

// ---------------------------------------------------------------- GoBGP

export interface GobgpNeighbor {
  address: string;
  as: number;
  /** 'ipv4-unicast' | 'ipv6-unicast' */
  families: string[];
  /** ADD-PATH receive + send-max for each family. */
  addPaths?: boolean;
  localAddress?: string;
  /** Only accept connections (`passive-mode`). */
  passive?: boolean;
  /** RFC 4456: the neighbor is our route-reflector client, with this cluster ID. */
  routeReflectorClusterId?: string;
}

export interface GobgpConfigOptions {
  routerId: string;
  as: number;
  neighbors: GobgpNeighbor[];
  /** Listen address for BGP (default: all). */
  listenAddresses?: string[];
}

export function gobgpConfig(o: GobgpConfigOptions): string {
  const out = [
    '[global.config]',
    `  as = ${o.as}`,
    `  router-id = "${o.routerId}"`,
    o.listenAddresses ? `  local-address-list = [${o.listenAddresses.map((a) => `"${a}"`).join(', ')}]` : '',
  ];
  for (const n of o.neighbors) {
    out.push(
      '[[neighbors]]',
      '  [neighbors.config]',
      `    neighbor-address = "${n.address}"`,
      `    peer-as = ${n.as}`,
      '  [neighbors.timers.config]',
      '    connect-retry = 1',
    );
    if (n.localAddress || n.passive) {
      out.push('  [neighbors.transport.config]');
      if (n.localAddress) out.push(`    local-address = "${n.localAddress}"`);
      if (n.passive) out.push('    passive-mode = true');
    }
    if (n.routeReflectorClusterId)
      out.push(
        '  [neighbors.route-reflector.config]',
        '    route-reflector-client = true',
        `    route-reflector-cluster-id = "${n.routeReflectorClusterId}"`,
      );
    for (const f of n.families) {
      out.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', `      afi-safi-name = "${f}"`);
      if (n.addPaths)
        out.push('    [neighbors.afi-safis.add-paths.config]', '      receive = true', '      send-max = 8');
    }
  }
  return `${out.filter((l) => l !== '').join('\n')}\n`;
}

export interface GobgpPeer extends Peer {
  /** `gobgp -u 127.0.0.1 -p PORT <args>` inside the namespace; resolves with stdout. */
  gobgp(...args: string[]): Promise<string>;
}

/**
 * Starts gobgpd with its gRPC API on 127.0.0.1:`apiPort` inside `ns` (namespaced, so the port cannot
 * clash). `args` are extra daemon arguments (e.g. `-r`: set the Restart State bit, for a graceful restart).
 */
export async function startGobgp(ns: Netns, config: string, apiPort = 50051, args: string[] = []): Promise<GobgpPeer> {
  const dir = tempDir('gobgp');
  const conf = join(dir, 'gobgpd.toml');
  writeFileSync(conf, config);
  const daemon = ns.spawn('gobgpd', [
    '-f',
    conf,
    '-p',
    '--api-hosts',
    `127.0.0.1:${apiPort}`,
    '--pprof-disable',
    ...args,
  ]);
  const stop = makeStop(daemon, dir);
  const gobgp = async (...args: string[]) => {
    const r = await ns.exec('gobgp', ['-u', '127.0.0.1', '-p', String(apiPort), ...args], { timeoutMs: 5000 });
    if (r.code !== 0) throw new Error(`gobgp ${args.join(' ')}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  try {
    await waitFor('gobgpd API', async () => {
      if (daemon.exited()) throw new Error(`gobgpd exited: ${daemon.output()}`);
      await gobgp('global');
      return true;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: daemon.pid, dir, daemon, gobgp, stop };
}

// ---------------------------------------------------------------- capture

export interface Capture extends Peer {
  /** The pcap file (libpcap format). Valid after `stop()` until the caller removes `dir`... so call `finish()`. */
  readonly file: string;
  /** Stops tshark (flushing the file) but keeps the temp dir; returns the pcap path. */
  finish(): Promise<string>;
}

/** tshark capturing BGP (tcp port 179) on `iface` inside `ns`, written as libpcap. */
export async function startCapture(ns: Netns, iface: string, filter = 'tcp port 179'): Promise<Capture> {
  const dir = tempDir('pcap');
  const file = join(dir, 'bgp.pcap');
  // -B: a 16 MiB kernel buffer, so a busy machine does not drop packets (a gap stops tshark
  // from reassembling the BGP stream after it).
  const daemon = ns.spawn('tshark', ['-q', '-B', '16', '-i', iface, '-F', 'pcap', '-w', file, '-f', filter]);
  let finished = false;
  const finish = async () => {
    if (!finished) {
      finished = true;
      // Packets still in the kernel's capture buffer when dumpcap stops are lost, and the last
      // ones are what the tests look at (an UPDATE sent a few ms before): let it drain first.
      // SIGTERM then makes tshark stop dumpcap and flush the file; do not kill it early.
      await delay(1000);
      await daemon.stop(15_000);
    }
    return file;
  };
  const stop = async () => {
    await finish();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('tshark capturing', () => {
      if (daemon.exited()) throw new Error(`tshark exited: ${daemon.output()}`);
      return daemon.output().includes('Capturing on');
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { pid: daemon.pid, dir, daemon, file, finish, stop };
}
