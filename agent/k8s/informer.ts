/**
 * A list+watch cache of one resource (client-go's reflector + store, in small).
 *
 * Complicating factors:
 *  - "Synced" means the cache is a complete, current view: a list finished every page (a list
 *    failing part way, e.g. on its second page, changes nothing and is retried) and the watch
 *    that continues from the list's resourceVersion is open. While the watch is broken the view
 *    may miss changes, so isSynced() is false until it is open again. Callers that delete things
 *    on absence (the IPAM GC) must act only while synced.
 *  - A watch continues from the last resourceVersion seen (events and BOOKMARKs). When the API
 *    server has compacted past it, it answers with an ERROR event carrying 410 Gone (or the list's
 *    continue token expires with 410): the informer lists again from scratch and the relist
 *    replaces the cache, reporting what was deleted meanwhile.
 *  - An unreachable API server (or any other failure) is retried with capped exponential backoff
 *    with jitter (Clock.random); a normal end of the watch (server timeout) re-watches at once.
 *  - Callbacks of a stopped or replaced watch are dropped (generation counter).
 */
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import {
  KubeApiError,
  type KubeObject,
  keyOf,
  type ListWatchSource,
  statusOf,
  type WatchEventType,
  type WatchHandle,
} from './types.js';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(obj: T, old: T): void;
  onDelete?(obj: T): void;
}

export interface InformerOptions {
  /** Page size of lists (default 500). */
  pageSize?: number;
  /** First retry delay (default 500 ms), doubled per failure up to maxBackoffMs (default 30 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * A list page that has not answered after this long fails (default 30 s): a stalled API
   * server, or a body cut off mid-way that the HTTP client never reports, must not stall the
   * informer for ever.
   */
  listTimeoutMs?: number;
}

export interface InformerStats {
  /** Lists completed. */
  lists: number;
  /** Relists caused by 410 Gone. */
  gone: number;
  /** Failed lists or watches. */
  failures: number;
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private lastRv = '';
  private listed = false;
  private watching = false;
  private stopped = true;
  private gen = 0;
  private watchHandle: WatchHandle | null = null;
  private timer: TimerHandle | null = null;
  private attempt = 0;
  private syncWaiters: (() => void)[] = [];
  readonly stats: InformerStats = { lists: 0, gone: 0, failures: 0 };
  private readonly pageSize: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly listTimeoutMs: number;

  constructor(
    private readonly what: string,
    private readonly src: ListWatchSource<T>,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly handlers: InformerHandlers<T> = {},
    opts: InformerOptions = {},
  ) {
    this.pageSize = opts.pageSize ?? 500;
    this.backoffMs = opts.backoffMs ?? 500;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.listTimeoutMs = opts.listTimeoutMs ?? 30_000;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.gen++;
    this.timer?.cancel();
    this.timer = null;
    this.watchHandle?.stop();
    this.watchHandle = null;
    this.watching = false;
  }

  /** A complete list has been loaded and the watch continuing it is open. */
  isSynced(): boolean {
    return this.listed && this.watching && !this.stopped;
  }

  /** Resolves when isSynced() next becomes true. */
  waitForSync(): Promise<void> {
    if (this.isSynced()) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** The cached objects (a copy of the list). */
  items(): T[] {
    return [...this.cache.values()];
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  /** The last resourceVersion seen (list, event or bookmark). */
  resourceVersion(): string {
    return this.lastRv;
  }

  private retryLater(why: string, err: unknown, then: () => void): void {
    if (this.stopped) return;
    this.stats.failures++;
    const base = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** this.attempt);
    const ms = Math.round(base * (0.5 + this.clock.random() / 2));
    this.attempt++;
    this.log.warn({ what: this.what, err, retryMs: ms, attempt: this.attempt }, why);
    const g = this.gen;
    this.timer = this.clock.setTimer(ms, () => {
      this.timer = null;
      if (g === this.gen && !this.stopped) then();
    });
    this.timer.unref();
  }

  private timed<R>(p: Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const t = this.clock.setTimer(this.listTimeoutMs, () =>
        reject(new KubeApiError(0, `list ${this.what}: no answer after ${this.listTimeoutMs} ms`)),
      );
      t.unref();
      p.then(
        (v) => {
          t.cancel();
          resolve(v);
        },
        (e: unknown) => {
          t.cancel();
          reject(e);
        },
      );
    });
  }

  private async relist(): Promise<void> {
    const g = ++this.gen;
    this.watching = false;
    this.watchHandle?.stop();
    this.watchHandle = null;
    const items: T[] = [];
    let rv = '';
    let cont: string | undefined;
    try {
      do {
        const page = await this.timed(this.src.list({ limit: this.pageSize, continue: cont }));
        if (g !== this.gen) return;
        items.push(...page.items);
        rv = page.resourceVersion;
        cont = page.continue || undefined;
      } while (cont);
    } catch (err) {
      if (g !== this.gen) return;
      if (statusOf(err) === 410) {
        // The continue token expired (compaction): start the list again.
        this.stats.gone++;
        this.log.info({ what: this.what }, 'list continue token expired (410): listing again');
        this.timer = this.clock.setTimer(0, () => {
          if (g === this.gen) void this.relist();
        });
        return;
      }
      this.retryLater('list failed', err, () => void this.relist());
      return;
    }
    this.replace(items);
    this.lastRv = rv;
    this.listed = true;
    this.stats.lists++;
    this.log.debug({ what: this.what, count: items.length, resourceVersion: rv }, 'listed');
    await this.watchFrom(g);
  }

  /** The cache becomes `items`: adds, updates and deletes reported by difference. */
  private replace(items: T[]): void {
    const next = new Map(items.map((o) => [keyOf(o), o] as const));
    for (const [k, old] of this.cache) {
      if (!next.has(k)) {
        this.cache.delete(k);
        this.handlers.onDelete?.(old);
      }
    }
    for (const [k, o] of next) {
      const old = this.cache.get(k);
      this.cache.set(k, o);
      if (!old) this.handlers.onAdd?.(o);
      else if (old.metadata?.resourceVersion !== o.metadata?.resourceVersion) this.handlers.onUpdate?.(o, old);
    }
  }

  private async watchFrom(listGen: number): Promise<void> {
    const g = ++this.gen;
    if (listGen !== g - 1 || this.stopped) return;
    let ended = false;
    const onEvent = (type: WatchEventType, obj: T) => {
      if (g !== this.gen || ended) return;
      this.event(g, type, obj);
    };
    const onDone = (err: unknown) => {
      if (g !== this.gen || ended) return;
      ended = true;
      this.watching = false;
      this.watchHandle = null;
      if (this.stopped) return;
      if (err) this.retryLater('watch failed', err, () => void this.watchFrom(this.gen));
      else {
        // Normal end (server-side timeout): continue from the last resourceVersion.
        this.log.debug({ what: this.what, resourceVersion: this.lastRv }, 'watch ended: watching again');
        this.timer = this.clock.setTimer(0, () => {
          if (g === this.gen) void this.watchFrom(this.gen);
        });
      }
    };
    try {
      const h = await this.src.watch(this.lastRv, onEvent, onDone);
      if (g !== this.gen || ended) {
        h.stop();
        return;
      }
      this.watchHandle = h;
      this.watching = true;
      this.attempt = 0;
      const waiters = this.syncWaiters;
      this.syncWaiters = [];
      for (const w of waiters) w();
    } catch (err) {
      if (g !== this.gen || ended) return;
      ended = true;
      if (statusOf(err) === 410) {
        this.gone();
        return;
      }
      this.retryLater('watch failed', err, () => void this.watchFrom(this.gen));
    }
  }

  private gone(): void {
    this.stats.gone++;
    this.log.info({ what: this.what, resourceVersion: this.lastRv }, 'resourceVersion too old (410 Gone): relisting');
    this.watching = false;
    // A new generation first: the aborted watch's own "done" callback is then dropped.
    this.gen++;
    const h = this.watchHandle;
    this.watchHandle = null;
    h?.stop();
    void this.relist();
  }

  private event(g: number, type: WatchEventType, obj: T): void {
    const rv = obj?.metadata?.resourceVersion;
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const k = keyOf(obj);
        const old = this.cache.get(k);
        this.cache.set(k, obj);
        if (old) this.handlers.onUpdate?.(obj, old);
        else this.handlers.onAdd?.(obj);
        break;
      }
      case 'DELETED': {
        const k = keyOf(obj);
        const old = this.cache.get(k);
        this.cache.delete(k);
        if (old) this.handlers.onDelete?.(obj);
        break;
      }
      case 'BOOKMARK':
        break;
      case 'ERROR': {
        // API conventions: the object is a Status; code 410 means the resourceVersion is gone.
        const code = (obj as unknown as { code?: number }).code;
        if (g !== this.gen) return;
        if (code === 410) this.gone();
        else {
          this.gen++;
          const h = this.watchHandle;
          this.watchHandle = null;
          this.watching = false;
          h?.stop();
          this.retryLater('watch error event', obj, () => void this.watchFrom(this.gen));
        }
        return;
      }
    }
    if (rv) this.lastRv = rv;
  }
}
