/**
 * Shared pieces of the BGP interop tests: a two-namespace topology (ours <-> theirs on a veth
 * with 10.99.0.0/24 and fd99::/64, no DAD), our speaker as a real `petrelctl bgp run` process
 * inside a namespace (stdout JSON lines collected), and config builders for BIRD 1.6/2, GoBGP
 * and FRR. Nothing touches the root namespace; everything started is stopped by PID.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BgpRunConfig } from '../../../bgp/index.js';
import { createNetns, type Netns } from '../../helpers/netns.js';
import { type Daemon, waitFor } from '../../helpers/process.js';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CTL = `${ROOT}dist/agent/ctl/main.js`;

export interface Topo {
  ours: Netns;
  theirs: Netns;
  /** Our side: 10.99.0.1 / fd99::1; theirs: 10.99.0.2 / fd99::2 (plus any extra namespaces). */
  extra: Netns[];
  destroy(): Promise<void>;
}

async function addr(ns: Netns, dev: string, a4: string, a6: string): Promise<void> {
  // Keep the IPv6 address across link down/up (hold timer tests flap the link).
  await ns.sysctl(`net.ipv6.conf.${dev}.keep_addr_on_down`, '1');
  await ns.ip('addr', 'add', a4, 'dev', dev);
  await ns.ip('addr', 'add', a6, 'dev', dev, 'nodad');
  await ns.ip('link', 'set', dev, 'up');
}

/** ours (10.99.0.1) <-> theirs (10.99.0.2) on one veth. */
export async function twoNodes(): Promise<Topo> {
  const ours = await createNetns('us');
  const theirs = await createNetns('them');
  await ours.ip('link', 'add', 'veth-us', 'type', 'veth', 'peer', 'name', 'veth-them', 'netns', theirs.name);
  await addr(ours, 'veth-us', '10.99.0.1/24', 'fd99::1/64');
  await addr(theirs, 'veth-them', '10.99.0.2/24', 'fd99::2/64');
  return {
    ours,
    theirs,
    extra: [],
    destroy: async () => {
      await ours.delete();
      await theirs.delete();
    },
  };
}

/**
 * A star on one bridge-less LAN: `n` namespaces joined to a hub namespace by veths, all in
 * 10.99.0.0/24: hub 10.99.0.254 is only a bridge. Node i gets 10.99.0.(i+1) / fd99::(i+1).
 */
export async function lan(n: number): Promise<{ nodes: Netns[]; destroy(): Promise<void> }> {
  const hub = await createNetns('hub');
  await hub.ip('link', 'add', 'br0', 'type', 'bridge');
  await hub.ip('link', 'set', 'br0', 'up');
  const nodes: Netns[] = [];
  for (let i = 0; i < n; i++) {
    const ns = await createNetns(`n${i}`);
    await hub.ip('link', 'add', `h${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.name);
    await hub.ip('link', 'set', `h${i}`, 'master', 'br0');
    await hub.ip('link', 'set', `h${i}`, 'up');
    await addr(ns, 'eth0', `10.99.0.${i + 1}/24`, `fd99::${i + 1}/64`);
    nodes.push(ns);
  }
  return {
    nodes,
    destroy: async () => {
      for (const ns of nodes) await ns.delete();
      await hub.delete();
    },
  };
}

export interface RouteLine {
  event: 'add' | 'withdraw';
  prefix: string;
  nextHops: string[];
  replace?: boolean;
  family?: string;
  asPath?: number[];
}

export interface Petrel {
  readonly daemon: Daemon;
  readonly lines: RouteLine[];
  /** The current view from the stream: prefix -> next hops. */
  routes(): Map<string, string[]>;
  waitRoute(prefix: string, present?: boolean, timeoutMs?: number): Promise<void>;
  status(): Promise<import('../../../bgp/index.js').SpeakerStatus>;
  /** Runs `petrelctl bgp <args> --endpoint <ours>` inside the namespace. */
  ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (no Cease): a crash, for graceful restart tests. */
  kill(): Promise<void>;
  readonly dir: string;
}

export type PetrelConfig = Omit<Partial<BgpRunConfig['speaker']>, never> & {
  asn: number;
  routerId: string;
  peers: unknown[];
  announce?: unknown[];
  status?: { address: string; port: number };
  listen?: { address: string; port: number };
};

/** Starts `petrelctl bgp run` inside `ns`. */
export async function startPetrel(ns: Netns, cfg: PetrelConfig): Promise<Petrel> {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-bgp-'));
  const file = join(dir, 'bgp.json');
  const full = { status: { address: '127.0.0.1', port: 9179 }, ...cfg };
  writeFileSync(file, JSON.stringify(full, null, 2));
  const daemon = ns.spawn(process.execPath, [
    '--enable-source-maps',
    CTL,
    '--log-level',
    'debug',
    'bgp',
    'run',
    '--config',
    file,
  ]);
  const lines: RouteLine[] = [];
  let buf = '';
  daemon.proc.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) lines.push(JSON.parse(line) as RouteLine);
      i = buf.indexOf('\n');
    }
  });
  const routes = () => {
    const m = new Map<string, string[]>();
    for (const l of lines) {
      if (l.event === 'add') m.set(l.prefix, l.nextHops);
      else m.delete(l.prefix);
    }
    return m;
  };
  const statusPort = full.status.port;
  const status = async () => {
    const r = await ns.exec(
      process.execPath,
      [CTL, 'bgp', 'status', '--json', '--endpoint', `127.0.0.1:${statusPort}`],
      { timeoutMs: 10_000 },
    );
    if (r.code !== 0) throw new Error(`bgp status: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  await waitFor('petrel status endpoint', async () => {
    if (daemon.exited()) throw new Error(`petrelctl exited: ${daemon.output()}`);
    await status();
    return true;
  });
  return {
    daemon,
    lines,
    routes,
    dir,
    status,
    ctl: (...args) =>
      ns.exec(process.execPath, [CTL, 'bgp', ...args, '--endpoint', `127.0.0.1:${statusPort}`], { timeoutMs: 10_000 }),
    waitRoute: (prefix, present = true, timeoutMs = 20_000) =>
      waitFor(
        `${prefix} ${present ? 'in' : 'gone from'} our stream`,
        () => routes().has(prefix) === present,
        timeoutMs,
      ).then(() => undefined),
    stop: async () => {
      daemon.proc.kill('SIGTERM');
      await waitFor('petrelctl exit', () => daemon.exited(), 10_000);
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
      return daemon.proc.exitCode;
    },
    kill: async () => {
      daemon.proc.kill('SIGKILL');
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes a config file into a fresh temp dir (for daemons without a helper). */
export function tempConfig(tag: string, name: string, text: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), `petrel-${tag}-`));
  const file = join(dir, name);
  writeFileSync(file, text);
  return { dir, file };
}

// ---------------------------------------------------------------- BIRD configs

export interface BirdBgpOptions {
  routerId: string;
  localAddress: string;
  localAs: number;
  neighbor: string;
  neighborAs: number;
  holdTimeSec?: number;
  /** Our static routes they export. */
  static4?: string[];
  static6?: string[];
  ipv6NextHop?: string;
  gracefulRestart?: boolean;
  /** Extra lines inside `protocol bgp`. */
  extra?: string;
  name?: string;
}

/** BIRD 2: device + direct (next-hop resolution), statics, one BGP session with ipv4 + ipv6 channels. No kernel protocol. */
export function bird2Config(o: BirdBgpOptions, more: BirdBgpOptions[] = []): string {
  const lines = [`router id ${o.routerId};`, 'protocol device {}', 'protocol direct { ipv4; ipv6; }'];
  if (o.static4?.length)
    lines.push(`protocol static s4 { ipv4; ${o.static4.map((r) => `route ${r} blackhole;`).join(' ')} }`);
  if (o.static6?.length)
    lines.push(`protocol static s6 { ipv6; ${o.static6.map((r) => `route ${r} blackhole;`).join(' ')} }`);
  for (const b of [o, ...more]) {
    lines.push(
      `protocol bgp ${b.name ?? 'petrel'} {`,
      `  local ${b.localAddress} as ${b.localAs};`,
      `  neighbor ${b.neighbor} as ${b.neighborAs};`,
      `  hold time ${b.holdTimeSec ?? 90};`,
      '  connect retry time 1; error wait time 1, 3;',
      b.gracefulRestart ? '  graceful restart on; graceful restart time 60;' : '',
      b.extra ?? '',
      '  ipv4 { import all; export where source = RTS_STATIC || source = RTS_BGP; };',
      `  ipv6 { import all; export where source = RTS_STATIC || source = RTS_BGP; ${b.ipv6NextHop ? `next hop address ${b.ipv6NextHop};` : ''} };`,
      '}',
    );
  }
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}

/** GET a URL from inside a namespace (node's fetch in a child process); resolves with the body. */
export async function httpGet(ns: Netns, url: string): Promise<{ code: number; stdout: string }> {
  const script = `fetch(${JSON.stringify(url)}).then(async (r) => process.stdout.write(await r.text()), (e) => { console.error(e); process.exit(2); })`;
  const r = await ns.exec(process.execPath, ['-e', script], { timeoutMs: 10_000 });
  return { code: r.code, stdout: r.stdout };
}

export const BIRD16 = `${process.env.PETREL_BIRD16_DIR ?? '/var/cache/petrel/bird16'}/usr/sbin`;

// ---------------------------------------------------------------- GoBGP config

export interface GobgpOptions {
  routerId: string;
  asn: number;
  neighbor: string;
  neighborAs: number;
  holdTimeSec?: number;
  gracefulRestart?: boolean;
  routeReflectorClient?: boolean;
  clusterId?: string;
}

/** gobgpd TOML: one neighbor with ipv4 + ipv6 unicast, optional GR and route-reflector client. */
export function gobgpConfigFor(o: GobgpOptions, more: GobgpOptions[] = []): string {
  const out = [
    '[global.config]',
    `  as = ${o.asn}`,
    `  router-id = "${o.routerId}"`,
    `  local-address-list = ["${o.routerId}"]`,
  ];
  for (const n of [o, ...more]) {
    out.push(
      '[[neighbors]]',
      '  [neighbors.config]',
      `    neighbor-address = "${n.neighbor}"`,
      `    peer-as = ${n.neighborAs}`,
      '  [neighbors.timers.config]',
      '    connect-retry = 1',
      `    hold-time = ${n.holdTimeSec ?? 90}`,
      `    keepalive-interval = ${Math.max(1, Math.floor((n.holdTimeSec ?? 90) / 3))}`,
    );
    if (n.routeReflectorClient) {
      out.push(
        '  [neighbors.route-reflector.config]',
        '    route-reflector-client = true',
        `    route-reflector-cluster-id = "${n.clusterId ?? n.routerId}"`,
      );
    }
    if (n.gracefulRestart)
      out.push('  [neighbors.graceful-restart.config]', '    enabled = true', '    restart-time = 60');
    for (const f of ['ipv4-unicast', 'ipv6-unicast']) {
      out.push('  [[neighbors.afi-safis]]', '    [neighbors.afi-safis.config]', `      afi-safi-name = "${f}"`);
      if (n.gracefulRestart) out.push('    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true');
    }
  }
  return `${out.join('\n')}\n`;
}
