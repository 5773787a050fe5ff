/**
 * Shared pieces of the BGP interop tests: a two-namespace topology (ours <-> theirs on a veth
 * with 10.99.0.0/24 and fd99::/64, no DAD), our speaker as a real `petrelctl bgp run` process
 * inside a namespace (stdout JSON lines collected, each stamped with its arrival time), config
 * builders for BIRD 1.6/2, GoBGP and FRR, and a tshark reader that turns a capture into timed BGP
 * messages (for ordering assertions: End-of-RIB, the R bit, what was sent when). Nothing touches
 * the root namespace; everything started is stopped by PID.
 *
 * A file that runs the same cases in several modes (iBGP / eBGP) registers a case that applies to
 * one mode only in every mode, through `onlyWhen`: where it does not apply it shows up as skipped
 * with "does not apply: <reason>", so no case vanishes from the report. That skip is not a missing
 * capability (needs(), which fails under CI=true): nothing is missing, so it stays a skip under CI.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestFn, type TestOptions, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BgpRunConfig } from '../../../bgp/index.js';
import { startCapture } from '../../helpers/bgp-peers.js';
import { createNetns, type Netns, run } from '../../helpers/netns.js';
import { type Daemon, waitFor } from '../../helpers/process.js';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Prefix of the skip message of a case that does not apply to a mode (not a missing capability). */
export const DOES_NOT_APPLY = 'does not apply';

/**
 * `test` for a case that applies in some modes only: registered as a normal test when `applies`,
 * else as a skipped test whose message says why ("does not apply: <reason>"). Options such as
 * `{ skip: needs('tshark') }` are kept where the case applies.
 */
export function onlyWhen(
  applies: boolean,
  reason: string,
): (name: string, ...rest: [TestFn] | [TestOptions, TestFn]) => Promise<void> {
  return (name, ...rest) => {
    const [options, fn] = rest.length === 1 ? [{}, rest[0]] : rest;
    return test(name, applies ? options : { ...options, skip: `${DOES_NOT_APPLY}: ${reason}` }, fn);
  };
}
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
  // No duplicate address detection: the link-local address is final the moment it appears.
  await ns.sysctl(`net.ipv6.conf.${dev}.accept_dad`, '0');
  await ns.ip('addr', 'add', a4, 'dev', dev);
  await ns.ip('addr', 'add', a6, 'dev', dev, 'nodad');
  await ns.ip('link', 'set', dev, 'up');
}

/**
 * Wait until the kernel reports the link operationally up and its IPv6 link-local address is there
 * and final. A veth's carrier reaches operstate through linkwatch, up to a second after `link set
 * up`, and only then does the kernel add the link-local address; a daemon started before that sees
 * the interface change under it (BIRD 1.6 in eBGP, whose neighbor must be on a direct interface,
 * then can drop a fresh session with "Neighbor lost").
 */
async function operUp(ns: Netns, dev: string): Promise<void> {
  await waitFor(
    `${dev} operstate up, link-local address final`,
    async () => {
      if (!(await ns.ip('-o', 'link', 'show', 'dev', dev)).includes('state UP')) return false;
      const v6 = await ns.ip('-6', '-o', 'addr', 'show', 'dev', dev);
      return v6.includes('fe80::') && !/tentative|dadfailed/.test(v6);
    },
    5000,
  );
}

/** ours (10.99.0.1) <-> theirs (10.99.0.2) on one veth. */
export async function twoNodes(): Promise<Topo> {
  const ours = await createNetns('us');
  const theirs = await createNetns('them');
  await ours.ip('link', 'add', 'veth-us', 'type', 'veth', 'peer', 'name', 'veth-them', 'netns', theirs.name);
  await addr(ours, 'veth-us', '10.99.0.1/24', 'fd99::1/64');
  await addr(theirs, 'veth-them', '10.99.0.2/24', 'fd99::2/64');
  await operUp(ours, 'veth-us');
  await operUp(theirs, 'veth-them');
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
  for (const ns of nodes) await operUp(ns, 'eth0');
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
  /** When the test read the line (Date.now(), the clock of capture timestamps); not printed by petrelctl. */
  at: number;
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
      if (line.trim()) lines.push({ ...(JSON.parse(line) as Omit<RouteLine, 'at'>), at: Date.now() });
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
  try {
    await waitFor('petrel status endpoint', async () => {
      if (daemon.exited()) throw new Error(`petrelctl exited: ${daemon.output()}`);
      await status();
      return true;
    });
  } catch (err) {
    // The caller never gets a handle to stop it: do not leave the speaker running.
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}; petrelctl output: ${daemon.output().slice(-2000)}`, { cause: err });
  }
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
  /** Configured administratively down (`gobgp neighbor ADDR enable` brings it up). */
  adminDown?: boolean;
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
      ...(n.adminDown ? ['    admin-down = true'] : []),
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

// ---------------------------------------------------------------- wire (tshark)

/** One BGP message from a capture, as tshark's dissector sees it. */
export interface WireMsg {
  /** Capture time in ms since the epoch (the clock of Date.now() and RouteLine.at). */
  t: number;
  src: string;
  dst: string;
  type: 'open' | 'update' | 'notification' | 'keepalive' | 'route-refresh' | 'other';
  /** UPDATE: prefixes announced / withdrawn (classic fields and MP_REACH / MP_UNREACH). */
  announced: string[];
  withdrawn: string[];
  /** UPDATE: an End-of-RIB marker (RFC 4724 §2) for this family. */
  endOfRib?: 'ipv4' | 'ipv6';
  /** OPEN: the graceful restart capability: Restart State (R) bit, and the F bit of each AFI/SAFI. */
  gr?: { restarting: boolean; forwarding: boolean[] };
  /** NOTIFICATION: `code/subcode`. */
  notification?: string;
}

type Json = Record<string, unknown>;
const asList = (v: unknown): Json[] => (v === undefined || v === '' ? [] : Array.isArray(v) ? v : [v]) as Json[];
/** tshark keys prefix lists by the prefix itself ("10.244.1.0/26": {...}). */
const prefixKeys = (v: unknown): string[] =>
  v && typeof v === 'object' ? Object.keys(v).filter((k) => /^[0-9a-f.:]+\/\d+$/.test(k)) : [];
const TYPES = ['other', 'open', 'update', 'notification', 'keepalive', 'route-refresh'] as const;

function wireMsg(t: number, src: string, dst: string, m: Json): WireMsg {
  const type = TYPES[Number(m['bgp.type'])] ?? 'other';
  const out: WireMsg = { t, src, dst, type, announced: [], withdrawn: [] };
  if (type === 'update') {
    out.announced.push(...prefixKeys(m['bgp.update.nlri']));
    out.withdrawn.push(...prefixKeys(m['bgp.update.withdrawn_routes']));
    const attrs = asList((m['bgp.update.path_attributes'] as Json | undefined)?.['bgp.update.path_attribute']);
    let unreachAfi: string | undefined;
    for (const a of attrs) {
      const code = a['bgp.update.path_attribute.type_code'];
      if (code === '14') out.announced.push(...prefixKeys(a['bgp.update.path_attribute.mp_reach_nlri']));
      if (code === '15') {
        unreachAfi = a['bgp.update.path_attribute.mp_unreach_nlri.afi'] as string;
        out.withdrawn.push(...prefixKeys(a['bgp.update.path_attribute.mp_unreach_nlri']));
      }
    }
    if (out.announced.length === 0 && out.withdrawn.length === 0) {
      // RFC 4724 §2: IPv4 EoR is an empty UPDATE; other families, an UPDATE with only an empty MP_UNREACH.
      if (attrs.length === 0) out.endOfRib = 'ipv4';
      else if (attrs.length === 1 && unreachAfi !== undefined) out.endOfRib = unreachAfi === '2' ? 'ipv6' : 'ipv4';
    }
  } else if (type === 'open') {
    const param = (m['bgp.open.opt'] as Json | undefined)?.['bgp.open.opt.param'];
    for (const p of asList(param))
      for (const c of asList(p['bgp.cap'])) {
        if (c['bgp.cap.type'] !== '64') continue;
        const timers = c['bgp.cap.gr.timers_tree'] as Json | undefined;
        out.gr = {
          restarting: timers?.['bgp.cap.gr.timers.restart_flag'] === '1',
          forwarding: asList(c['bgp.cap.gr.flag_tree']).map((f) => f['bgp.cap.gr.flag.pfs'] === '1'),
        };
      }
  } else if (type === 'notification') {
    const sub = Object.entries(m).find(([k]) => k.startsWith('bgp.notify.minor_error'))?.[1];
    out.notification = `${m['bgp.notify.major_error']}/${sub ?? 0}`;
  }
  return out;
}

/** Decodes a libpcap file with tshark (an independent BGP decoder): every BGP message, in capture order. */
export async function readBgpCapture(file: string): Promise<WireMsg[]> {
  const r = await run('tshark', ['-r', file, '-Y', 'bgp', '-T', 'json', '--no-duplicate-keys'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`tshark -r ${file}: ${r.stderr}`);
  const out: WireMsg[] = [];
  for (const pkt of JSON.parse(r.stdout || '[]') as { _source: { layers: Json } }[]) {
    const l = pkt._source.layers;
    const frame = l.frame as Json;
    const ip = (l.ip ?? l.ipv6) as Json;
    const src = (ip['ip.src'] ?? ip['ipv6.src']) as string;
    const dst = (ip['ip.dst'] ?? ip['ipv6.dst']) as string;
    const t = Number(frame['frame.time_epoch']) * 1000;
    for (const m of asList(l.bgp)) out.push(wireMsg(t, src, dst, m));
  }
  return out;
}

/** Messages from `src` to `dst` (either may be omitted), optionally of one type, captured at or after `since`. */
export function wire(
  msgs: WireMsg[],
  o: { src?: string; dst?: string; type?: WireMsg['type']; since?: number },
): WireMsg[] {
  return msgs.filter(
    (m) =>
      (o.src === undefined || m.src === o.src) &&
      (o.dst === undefined || m.dst === o.dst) &&
      (o.type === undefined || m.type === o.type) &&
      m.t >= (o.since ?? 0),
  );
}

/**
 * Asserts what a graceful restart of the peer `peer` looked like to us, from a capture of the
 * restart (`msgs`) and our stream since line `fromLine`:
 * - the peer's first OPEN after `since` carried the R bit and the F bit for each of its families
 *   (it really was a restarting speaker, RFC 4724 §4.1);
 * - each `kept` prefix was never withdrawn from our stream (the stale route bridged the restart);
 * - each `dropped` prefix (which the restarted peer no longer has) was withdrawn, and not before the
 *   peer's End-of-RIB for its family (RFC 4724 §4.2: stale routes go at End-of-RIB).
 * Returns the peer's End-of-RIB times by family.
 */
export function assertPeerRestarted(
  msgs: WireMsg[],
  o: { peer: string; since: number; lines: RouteLine[]; fromLine: number; kept: string[]; dropped: string[] },
): Record<string, number> {
  const open = wire(msgs, { src: o.peer, type: 'open', since: o.since })[0];
  if (!open) throw new Error(`no OPEN from ${o.peer} in the capture`);
  if (!open.gr?.restarting || open.gr.forwarding.length === 0 || !open.gr.forwarding.every(Boolean))
    throw new Error(`the OPEN from ${o.peer} after its restart has no R bit / F bits: ${JSON.stringify(open.gr)}`);
  const eor: Record<string, number> = {};
  for (const m of wire(msgs, { src: o.peer, type: 'update', since: open.t }))
    if (m.endOfRib && eor[m.endOfRib] === undefined) eor[m.endOfRib] = m.t;
  const since = o.lines.slice(o.fromLine);
  for (const p of o.kept) {
    const w = since.find((l) => l.prefix === p && l.event === 'withdraw');
    if (w) throw new Error(`${p} was withdrawn from our stream during the restart of ${o.peer}`);
  }
  for (const p of o.dropped) {
    const w = since.find((l) => l.prefix === p && l.event === 'withdraw');
    if (!w) throw new Error(`${p} (no longer announced by ${o.peer}) was not withdrawn`);
    const fam = p.includes(':') ? 'ipv6' : 'ipv4';
    const at = eor[fam];
    if (at === undefined) throw new Error(`no ${fam} End-of-RIB from ${o.peer} after its restart`);
    if (w.at < at)
      throw new Error(`${p} was withdrawn ${Math.round(at - w.at)} ms before ${o.peer}'s ${fam} End-of-RIB`);
  }
  return eor;
}

/**
 * Hold timer expiry on the two-node topology: the peer's link goes down (no FIN, no
 * NOTIFICATION), so only our hold timer can end the session; its routes must be withdrawn and
 * come back when the link does. Returns our status while the link was down.
 */
export async function holdTimerExpiry(
  topo: Topo,
  us: Petrel,
  theirs: readonly string[],
): Promise<import('../../../bgp/index.js').PeerStatus | undefined> {
  await topo.theirs.ip('link', 'set', 'veth-them', 'down');
  let st: import('../../../bgp/index.js').PeerStatus | undefined;
  try {
    for (const p of theirs) await us.waitRoute(p, false, 15_000);
    st = (await us.status()).peers[0];
    assert.equal(st?.lastError, 'hold timer expired');
  } finally {
    await topo.theirs.ip('link', 'set', 'veth-them', 'up');
  }
  for (const p of theirs) await us.waitRoute(p, true, 30_000);
  return st;
}

/**
 * The peer (10.99.0.2, one session on the two-node topology) restarts gracefully: `crash` kills
 * it, `restart` brings it back with the R bit and without `dropped`. Its routes (`kept` and
 * `dropped`) stay in our stream, marked stale, while it is down; after its End-of-RIB `dropped`
 * is withdrawn and nothing else, checked on a capture of the session (assertPeerRestarted).
 */
export async function peerRestartsGracefully(
  topo: Topo,
  us: Petrel,
  o: { kept: string[]; dropped: string[]; crash(): unknown; restart(): Promise<unknown> },
): Promise<void> {
  const all = [...o.kept, ...o.dropped];
  for (const p of all) await us.waitRoute(p);
  const cap = await startCapture(topo.ours, 'veth-us');
  try {
    const fromLine = us.lines.length;
    const since = Date.now();
    await o.crash();
    await waitFor('session down', async () => (await us.status()).peers[0]?.state !== 'Established', 10_000);
    const st = (await us.status()).peers[0];
    assert.equal(st?.staleRoutes, all.length, `routes kept as stale: ${JSON.stringify(st)}`);
    for (const p of all) assert.ok(us.routes().has(p), `${p} still in our stream`);
    await o.restart();
    await waitFor('re-established', async () => (await us.status()).peers[0]?.state === 'Established', 20_000);
    for (const p of o.dropped) await us.waitRoute(p, false, 20_000);
    await waitFor('stale routes refreshed', async () => (await us.status()).peers[0]?.staleRoutes === 0, 20_000);
    assertPeerRestarted(await readBgpCapture(await cap.finish()), {
      peer: '10.99.0.2',
      since,
      lines: us.lines,
      fromLine,
      kept: o.kept,
      dropped: o.dropped,
    });
    for (const p of o.kept) assert.ok(us.routes().has(p), `${p} kept`);
  } finally {
    await cap.stop();
  }
}
