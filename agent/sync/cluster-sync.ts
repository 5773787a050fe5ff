/**
 * Keeps the agent's view of etcd: one consistent read of /petrel/, then a watch from that
 * revision; every batch of relevant changes rebuilds the ClusterState and emits it.
 *
 * Complicating factors:
 *  - etcd unreachable at start: retry with backoff (1 s doubling to 30 s, jittered); no state is
 *    emitted until the first read succeeds (`ready` stays false).
 *  - etcd lost while running: the watch client reconnects and resumes at the last revision; the
 *    last state stays in force (sessions and routes stay) until then.
 *  - history compacted (or the watch cancelled) while we were away: re-read everything and watch
 *    again (a full resync), so no change is missed.
 *  - bursts (a pod ADD writes a block and a handle): events in one loop turn make one rebuild.
 */
import { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import type { ClusterEtcd, WatchHandle } from './etcd.js';
import { StateBuilder, WATCH_PREFIX } from './state.js';
import type { ClusterState } from './types.js';

export interface SyncStatus {
  /** A state has been read at least once. */
  ready: boolean;
  /** The watch is connected (false while etcd is away). */
  connected: boolean;
  revision: string;
  resyncs: number;
  lastError?: string;
  problems: { key: string; error: string }[];
}

export class ClusterSync extends EventEmitter<{ state: [ClusterState] }> {
  private readonly kvs = new Map<string, string>();
  private readonly builder: StateBuilder;
  private watch: WatchHandle | undefined;
  private rebuildTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private backoffMs = 1000;
  private stopped = false;
  private current: ClusterState | undefined;
  readonly status: SyncStatus = { ready: false, connected: false, revision: '0', resyncs: 0, problems: [] };

  constructor(
    private readonly etcd: ClusterEtcd,
    private readonly deps: { clock: Clock; log: Logger; checkSelector: (s: string) => void },
  ) {
    super();
    this.builder = new StateBuilder(deps.checkSelector);
  }

  get state(): ClusterState | undefined {
    return this.current;
  }

  start(): void {
    void this.resync();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.rebuildTimer?.cancel();
    this.retryTimer?.cancel();
    await this.watch?.cancel();
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    const old = this.watch;
    this.watch = undefined;
    await old?.cancel();
    try {
      const { revision, kvs } = await this.etcd.readPrefixes([WATCH_PREFIX]);
      this.kvs.clear();
      for (const kv of kvs) if (StateBuilder.relevant(kv.key)) this.kvs.set(kv.key, kv.value);
      this.status.revision = revision;
      this.rebuild();
      this.watch = await this.etcd.watch(
        WATCH_PREFIX,
        revision,
        (evs, rev) => {
          let changed = false;
          for (const e of evs) {
            if (!StateBuilder.relevant(e.key)) continue;
            changed = true;
            if (e.type === 'put') this.kvs.set(e.key, e.value);
            else this.kvs.delete(e.key);
          }
          this.status.revision = rev;
          if (changed) this.scheduleRebuild();
        },
        (err) => {
          this.deps.log.warn({ err: err.message }, 'etcd watch lost: full resync');
          this.status.resyncs++;
          this.retryLater(0);
        },
        (up) => {
          if (this.status.connected !== up) this.deps.log.info({ connected: up }, 'etcd watch connection');
          this.status.connected = up;
        },
      );
      this.status.connected = true;
      this.backoffMs = 1000;
      delete this.status.lastError;
    } catch (err) {
      this.status.connected = false;
      this.status.lastError = (err as Error).message;
      this.deps.log.warn({ err: (err as Error).message, retryInMs: this.backoffMs }, 'etcd read failed');
      this.retryLater(this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    }
  }

  private retryLater(ms: number): void {
    this.retryTimer?.cancel();
    const jitter = ms * 0.2 * this.deps.clock.random();
    this.retryTimer = this.deps.clock.setTimer(ms + jitter, () => void this.resync());
  }

  private scheduleRebuild(): void {
    if (this.rebuildTimer) return;
    this.rebuildTimer = this.deps.clock.setTimer(0, () => {
      this.rebuildTimer = undefined;
      this.rebuild();
    });
  }

  private rebuild(): void {
    const { state, problems } = this.builder.build(this.kvs, this.status.revision);
    for (const p of problems) {
      if (!this.status.problems.some((q) => q.key === p.key && q.error === p.error))
        this.deps.log.warn({ key: p.key, err: p.error }, 'record skipped');
    }
    this.status.problems = problems;
    this.status.ready = true;
    this.current = state;
    this.emit('state', state);
  }
}
