/**
 * Keeps the node record's labels equal to this node's Kubernetes Node labels (pool nodeSelectors
 * select on them), as Calico does in Kubernetes: a watch of the one Node (fieldSelector
 * metadata.name), and each change of its labels applied once, in order, latest wins; a failed
 * apply is retried with capped backoff.
 */
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { Informer } from './informer.js';
import type { KubeNode, ListWatchSource } from './types.js';

export class NodeLabelSync {
  private readonly informer: Informer<KubeNode>;
  private applied: string | null = null;
  private wanted: Record<string, string> | null = null;
  private busy = false;
  private failures = 0;
  private timer: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly node: string,
    source: ListWatchSource<KubeNode>,
    private readonly apply: (labels: Record<string, string>) => Promise<void>,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    const on = (n: KubeNode) => {
      if (n.metadata?.name !== this.node) return;
      this.wanted = { ...(n.metadata?.labels ?? {}) };
      void this.drain();
    };
    this.informer = new Informer('node', source, clock, log, { onAdd: on, onUpdate: on });
  }

  start(): void {
    this.informer.start();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.informer.stop();
  }

  /** The labels last applied (JSON), null before the first. */
  appliedLabels(): Record<string, string> | null {
    return this.applied === null ? null : (JSON.parse(this.applied) as Record<string, string>);
  }

  private async drain(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      while (this.wanted && !this.stopped) {
        const w = this.wanted;
        const key = JSON.stringify(Object.fromEntries(Object.entries(w).sort()));
        if (key === this.applied) {
          this.wanted = this.wanted === w ? null : this.wanted;
          continue;
        }
        try {
          await this.apply(w);
          this.applied = key;
          this.failures = 0;
          this.log.info({ node: this.node, labels: w }, 'node labels from Kubernetes applied');
          if (this.wanted === w) this.wanted = null;
        } catch (err) {
          this.failures++;
          const ms = Math.min(30_000, 500 * 2 ** Math.min(this.failures, 6));
          this.log.warn({ err, node: this.node, retryMs: ms }, 'applying node labels failed');
          this.timer = this.clock.setTimer(ms, () => void this.drain());
          this.timer.unref();
          return;
        }
      }
    } finally {
      this.busy = false;
    }
  }
}
