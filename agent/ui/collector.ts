/**
 * The UI's edge towards the cluster: reads etcd (one prefix read of /petrel/ for IPAM, node
 * records, liveness and BGP config, so one picture is one etcd revision), asks every node's agent
 * for GET /status and /routes on the node's address, and keeps one GET /routes/watch stream per
 * agent for the live route feed. Each refresh builds a new ClusterView (model.ts) and emits it.
 *
 * Complicating factors:
 *  - an agent that does not answer must not hold up the picture: every request has a deadline,
 *    and the picture says "unreachable" with the error;
 *  - a watch stream ends when its agent dies: the feed says so, and the stream is dialled again
 *    (every RETRY_MS) while the node is still in etcd; a new stream starts with a snapshot, so
 *    nothing it missed is silently lost (the snapshot count is in the feed entry);
 *  - a route change is a reason to refresh now rather than at the next tick (debounced).
 */
import { EventEmitter } from 'node:events';
import { type ClientRequest, request } from 'node:http';
import { type IpamStore, takeSnapshot, usage } from '../../ipam-etcd/index.js';
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import {
  DEFAULT_BGP_CONFIG,
  nodeKeys,
  parseAliveRecord,
  parseBgpConfig,
  parseBgpPeer,
  parseNodeRecord,
} from '../node/record.js';
import {
  type AgentProbe,
  type AgentRouteJson,
  type AgentStatusJson,
  buildView,
  type ClusterView,
  type EtcdData,
  type FeedEntry,
  FeedRing,
  nodesByIp,
  routeEntry,
  SseParser,
} from './model.js';

export interface CollectorOptions {
  store: IpamStore;
  /** The agents' status port (they listen on the node address, `--status-listen 0.0.0.0:PORT`). */
  statusPort: number;
  refreshMs: number;
  /** Per-request deadline towards agents. */
  requestTimeoutMs: number;
  clock: Clock;
  log: Logger;
}

const RETRY_MS = 2000;
const EARLY_REFRESH_MS = 150;

/** GET url → parsed JSON, within timeoutMs. */
function getJson(url: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (body.length > 16 << 20) req.destroy(new Error('response too large'));
      });
      res.on('end', () => {
        if ((res.statusCode ?? 0) >= 400 && res.statusCode !== 503) {
          reject(new Error(`HTTP ${res.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(body));
        } catch {
          reject(new Error('not JSON'));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `ECONNREFUSED 10.99.0.13:9099`, `no answer in 1500 ms`: the error without Node's syscall prefix. */
const errText = (err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  const msg = e.message ?? String(err);
  if (!e.code) return msg;
  const i = msg.indexOf(e.code);
  return i >= 0 ? msg.slice(i) : `${e.code} ${msg}`;
};

interface Watch {
  url: string;
  req?: ClientRequest | undefined;
  retry?: TimerHandle;
  connected: boolean;
  /** The node is gone from etcd: do not dial again. */
  closed: boolean;
}

/** Emits `view` (ClusterView) after every refresh and `feed` (FeedEntry) per route change. */
export class Collector extends EventEmitter<{ view: [ClusterView]; feed: [FeedEntry] }> {
  private timer: TimerHandle | undefined;
  private early: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly watches = new Map<string, Watch>();
  private view: ClusterView | undefined;
  readonly feed = new FeedRing(500);

  constructor(private readonly o: CollectorOptions) {
    super();
  }

  current(): ClusterView | undefined {
    return this.view;
  }

  start(): void {
    void this.tick();
  }

  /** Refreshes now (one refresh at a time; a request during one is served by the next). */
  refresh(): Promise<void> {
    if (!this.running) {
      this.running = this.refreshOnce().finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    await this.refresh();
    if (this.stopped) return;
    this.timer = this.o.clock.setTimer(this.o.refreshMs, () => void this.tick());
    this.timer.unref();
  }

  private soon(): void {
    if (this.early || this.stopped) return;
    this.early = this.o.clock.setTimer(EARLY_REFRESH_MS, () => {
      this.early = undefined;
      void this.refresh();
    });
    this.early.unref();
  }

  private async readEtcd(): Promise<EtcdData> {
    const kvs = await this.o.store.list('/petrel/');
    const snapStore: Pick<IpamStore, 'list'> = {
      list: async (prefix: string) => kvs.filter((kv) => kv.key.startsWith(prefix)),
    };
    const ipam = usage(await takeSnapshot(snapStore as IpamStore));
    const data: EtcdData = { ipam, nodes: [], alive: [], bgp: { ...DEFAULT_BGP_CONFIG }, peers: [] };
    for (const kv of kvs) {
      try {
        if (kv.key.startsWith(nodeKeys.nodes)) data.nodes.push(parseNodeRecord(kv.key, kv.value));
        else if (kv.key.startsWith(nodeKeys.alive)) data.alive.push(parseAliveRecord(kv.key, kv.value).name);
        else if (kv.key === nodeKeys.bgpConfig) data.bgp = parseBgpConfig(kv.key, kv.value);
        else if (kv.key.startsWith(nodeKeys.bgpPeers)) data.peers.push(parseBgpPeer(kv.key, kv.value, () => {}));
      } catch (err) {
        // Unreadable records are `petrelctl ipam check`'s business; the picture skips them.
        this.o.log.debug({ key: kv.key, err: (err as Error).message }, 'record skipped');
      }
    }
    return data;
  }

  private async probe(node: string, base: string): Promise<AgentProbe> {
    try {
      const [status, routes] = await Promise.all([
        getJson(`${base}/status`, this.o.requestTimeoutMs),
        getJson(`${base}/routes`, this.o.requestTimeoutMs),
      ]);
      return {
        node,
        url: base,
        ok: true,
        status: (status ?? {}) as AgentStatusJson,
        routes: Array.isArray(routes) ? (routes as AgentRouteJson[]) : [],
      };
    } catch (err) {
      return { node, url: base, ok: false, error: errText(err) };
    }
  }

  private baseUrl(ip: string): string {
    return `http://${ip.includes(':') ? `[${ip}]` : ip}:${this.o.statusPort}`;
  }

  private async refreshOnce(): Promise<void> {
    let etcd: EtcdData;
    try {
      etcd = await this.readEtcd();
    } catch (err) {
      this.o.log.warn({ err: errText(err) }, 'etcd read failed');
      // Keep the last picture (marked), or start with an empty one: the page says why either way.
      const last =
        this.view ??
        buildView(
          { ipam: { pools: [], orphanBlocks: [] }, nodes: [], alive: [], bgp: { ...DEFAULT_BGP_CONFIG }, peers: [] },
          [],
          new Date(this.o.clock.wallNow()).toISOString(),
        );
      const problems = [`etcd unreachable: ${errText(err)}`, ...last.problems.filter((p) => !/^etcd/.test(p))];
      this.view = { ...last, problems };
      this.emit('view', this.view);
      return;
    }
    const targets = etcd.nodes.flatMap((n) => {
      const ip = (n.ipv4 ?? n.ipv6 ?? '').split('/')[0];
      return ip ? [{ node: n.name, base: this.baseUrl(ip) }] : [];
    });
    const probes = await Promise.all(targets.map((t) => this.probe(t.node, t.base)));
    const view = buildView(etcd, probes, new Date(this.o.clock.wallNow()).toISOString());
    this.view = view;
    this.syncWatches(targets, nodesByIp(view));
    this.emit('view', view);
  }

  private pushFeed(e: Omit<FeedEntry, 'seq' | 'at'>): void {
    const entry = { seq: this.feed.nextSeq(), at: new Date(this.o.clock.wallNow()).toISOString(), ...e } as FeedEntry;
    this.feed.push(entry);
    this.emit('feed', entry);
  }

  private syncWatches(targets: { node: string; base: string }[], byIp: Map<string, string>): void {
    const want = new Map(targets.map((t) => [t.node, `${t.base}/routes/watch`]));
    for (const [node, w] of this.watches) {
      if (want.get(node) === w.url) continue;
      this.closeWatch(w);
      this.watches.delete(node);
    }
    for (const [node, url] of want) {
      if (this.watches.has(node)) continue;
      const w: Watch = { url, connected: false, closed: false };
      this.watches.set(node, w);
      this.dial(node, w, byIp);
    }
  }

  private closeWatch(w: Watch): void {
    w.closed = true;
    w.retry?.cancel();
    w.req?.destroy();
  }

  private dial(node: string, w: Watch, byIp: Map<string, string>): void {
    if (w.closed || this.stopped) return;
    const parser = new SseParser();
    let ended = false;
    const lost = (why: string) => {
      if (ended) return;
      ended = true;
      w.req = undefined;
      if (w.connected) {
        w.connected = false;
        this.pushFeed({ node, kind: 'stream-lost', detail: why });
        this.soon();
      }
      if (w.closed || this.stopped) return;
      w.retry = this.o.clock.setTimer(RETRY_MS, () => this.dial(node, w, this.view ? nodesByIp(this.view) : byIp));
      w.retry.unref();
    };
    const req = request(w.url, { method: 'GET', headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        lost(`HTTP ${res.statusCode}`);
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const ev of parser.push(chunk)) {
          let data: unknown;
          try {
            data = JSON.parse(ev.data);
          } catch {
            continue;
          }
          if (ev.event === 'snapshot') {
            const n = Array.isArray(data) ? data.filter((r) => !(r as { local?: boolean }).local).length : 0;
            w.connected = true;
            this.pushFeed({ node, kind: 'stream-up', detail: `${n} learned route(s)` });
          } else if (ev.event === 'route') {
            const m = this.view ? nodesByIp(this.view) : byIp;
            const e = routeEntry(node, data as { event: string; prefix: string }, m, 0, '');
            if (e) {
              const { seq: _s, at: _a, ...rest } = e;
              this.pushFeed(rest);
              this.soon();
            }
          }
        }
      });
      res.on('end', () => lost('stream ended'));
      res.on('error', (err) => lost(errText(err)));
      res.on('close', () => lost('stream closed'));
    });
    // A connect that never completes (node gone from the wire) must not hang: 3 s to connect.
    req.setTimeout(3000, () => {
      if (!w.connected) req.destroy(new Error('no answer in 3000 ms'));
    });
    req.on('response', () => req.setTimeout(0));
    req.on('error', (err) => lost(errText(err)));
    req.end();
    w.req = req;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.early?.cancel();
    for (const w of this.watches.values()) this.closeWatch(w);
    this.watches.clear();
    await this.running;
  }
}
