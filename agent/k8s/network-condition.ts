/**
 * Sets the node's NetworkUnavailable condition to False once this node's routes are in place
 * (as calico-node does with reason CalicoIsUp): kubelet/the scheduler then treat the node's pod
 * network as ready. Polls `routesReady()` every `pollMs`; the patch (strategic merge of
 * status.conditions by type, so kubelet's other conditions stay) is retried with capped backoff
 * until it succeeds once; then it is done.
 */
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';

export interface NodeConditionSetter {
  setNodeCondition(
    name: string,
    cond: { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string },
    nowMs: number,
  ): Promise<void>;
}

export const NETWORK_UP = {
  type: 'NetworkUnavailable',
  status: 'False',
  reason: 'PetrelIsUp',
  message: 'Petrel routes are in place on this node',
} as const;

export class NetworkCondition {
  private timer: TimerHandle | null = null;
  private stopped = false;
  private failures = 0;
  /** True once the condition has been written. */
  done = false;

  constructor(
    private readonly node: string,
    private readonly api: NodeConditionSetter,
    private readonly routesReady: () => boolean,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly pollMs = 1000,
  ) {}

  start(): void {
    this.next(0);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private next(ms: number): void {
    if (this.stopped || this.done) return;
    this.timer = this.clock.setTimer(ms, () => void this.tick());
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (!this.routesReady()) {
      this.next(this.pollMs);
      return;
    }
    try {
      await this.api.setNodeCondition(this.node, { ...NETWORK_UP }, this.clock.wallNow());
      this.done = true;
      this.log.info({ node: this.node }, 'node condition NetworkUnavailable=False set');
    } catch (err) {
      this.failures++;
      const ms = Math.min(30_000, this.pollMs * 2 ** Math.min(this.failures, 5));
      this.log.warn({ err, node: this.node, retryMs: ms }, 'setting NetworkUnavailable=False failed');
      this.next(ms);
    }
  }
}
