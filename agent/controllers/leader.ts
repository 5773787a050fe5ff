/**
 * Leader election on a coordination.k8s.io/v1 Lease (client-go's leaderelection, in small): one
 * replica of petrel-controllers acts, the others wait.
 *
 * Complicating factors:
 *  - Clocks of replicas differ, so a Lease is judged expired from *local* observation, as
 *    client-go does: when its resourceVersion last changed as seen by this replica (monotonic
 *    clock), not from the renewTime written by another machine.
 *  - Every write is conditional on the resourceVersion read (409 Conflict when another replica
 *    wrote first): two replicas can never both win one round.
 *  - A leader that cannot renew stops acting once its last successful renewal is older than the
 *    renew deadline (shorter than the lease duration), before anybody else may take over.
 *  - On shutdown the leader releases the Lease (empty holder), so a standby takes over at once.
 */
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';

/** What the decision needs of the Lease. */
export interface LeaseView {
  holderIdentity: string;
  leaseDurationSeconds: number;
  resourceVersion: string;
}

export type LeaseDecision =
  | { op: 'create' }
  | { op: 'renew' }
  | { op: 'takeover' }
  | { op: 'wait'; holder: string; expiresInMs: number };

/**
 * Pure: given the Lease (null when absent), who we are, and when (monotonic ms) we first saw its
 * current resourceVersion, decide.
 */
export function decideLease(
  lease: LeaseView | null,
  me: string,
  observedAtMs: number,
  nowMs: number,
  defaultDurationMs: number,
): LeaseDecision {
  if (!lease) return { op: 'create' };
  if (lease.holderIdentity === me) return { op: 'renew' };
  if (!lease.holderIdentity) return { op: 'takeover' }; // released
  const durMs = lease.leaseDurationSeconds > 0 ? lease.leaseDurationSeconds * 1000 : defaultDurationMs;
  const left = observedAtMs + durMs - nowMs;
  if (left <= 0) return { op: 'takeover' };
  return { op: 'wait', holder: lease.holderIdentity, expiresInMs: left };
}

/** The Lease operations (KubeApi in production; the test double's API in tests). */
export interface LeaseApi {
  read(): Promise<(LeaseView & { leaseTransitions: number; acquireTime?: string | undefined }) | null>;
  create(holder: string, durationSec: number, nowWallMs: number): Promise<unknown>;
  update(
    rec: LeaseView & { leaseTransitions: number; acquireTime?: string | undefined },
    times: { acquireMs?: number | undefined; renewMs: number },
  ): Promise<unknown>;
}

export interface LeaderOptions {
  identity: string;
  leaseDurationMs: number;
  /** A leader stops acting when it has not renewed for this long (< leaseDurationMs). */
  renewDeadlineMs: number;
  retryPeriodMs: number;
  onStarted?: () => void;
  onStopped?: () => void;
}

export class LeaderElector {
  private observed: { rv: string; atMs: number } | null = null;
  private lastRenewMs: number | null = null;
  private timer: TimerHandle | null = null;
  private running = false;
  private leading = false;
  private busy: Promise<void> = Promise.resolve();
  /** Rounds that ended in a 409 Conflict (another replica wrote first). */
  conflicts = 0;

  constructor(
    private readonly api: LeaseApi,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: LeaderOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** True while this replica holds the Lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.running && this.lastRenewMs !== null && this.clock.now() - this.lastRenewMs < this.opts.renewDeadlineMs;
  }

  /** Stops; a leader releases the Lease (empty holder) so a standby takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    await this.busy;
    if (this.lastRenewMs !== null) {
      try {
        const l = await this.api.read();
        if (l && l.holderIdentity === this.opts.identity)
          await this.api.update(
            { ...l, holderIdentity: '', leaseDurationSeconds: 1 },
            { renewMs: this.clock.wallNow() },
          );
        this.log.info({ identity: this.opts.identity }, 'leader lease released');
      } catch (err) {
        this.log.warn({ err }, 'could not release the leader lease');
      }
    }
    this.lastRenewMs = null;
    this.changed();
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimer(ms, () => {
      this.busy = this.round().finally(() => this.schedule(this.opts.retryPeriodMs));
    });
  }

  private changed(): void {
    const now = this.isLeader();
    if (now === this.leading) return;
    this.leading = now;
    this.log.info({ identity: this.opts.identity, leader: now }, now ? 'became leader' : 'stopped leading');
    if (now) this.opts.onStarted?.();
    else this.opts.onStopped?.();
  }

  private async round(): Promise<void> {
    const me = this.opts.identity;
    const durSec = Math.ceil(this.opts.leaseDurationMs / 1000);
    try {
      const l = await this.api.read();
      const now = this.clock.now();
      if (l && this.observed?.rv !== l.resourceVersion) this.observed = { rv: l.resourceVersion, atMs: now };
      const d = decideLease(l, me, this.observed?.atMs ?? now, now, this.opts.leaseDurationMs);
      const wall = this.clock.wallNow();
      switch (d.op) {
        case 'create':
          await this.api.create(me, durSec, wall);
          this.lastRenewMs = now;
          break;
        case 'renew':
          if (l) await this.api.update({ ...l, leaseDurationSeconds: durSec }, { renewMs: wall });
          this.lastRenewMs = now;
          break;
        case 'takeover':
          if (l) {
            await this.api.update(
              { ...l, holderIdentity: me, leaseDurationSeconds: durSec, leaseTransitions: l.leaseTransitions + 1 },
              { acquireMs: wall, renewMs: wall },
            );
            this.log.info({ identity: me, previous: l.holderIdentity || null }, 'took over the leader lease');
          }
          this.lastRenewMs = now;
          break;
        case 'wait':
          this.lastRenewMs = null;
          break;
      }
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code === 409) {
        this.conflicts++;
        this.log.debug({ identity: me }, 'leader lease conflict: another replica wrote first');
        this.lastRenewMs = null;
      } else this.log.warn({ err, identity: me }, 'leader lease round failed');
      // On other errors a leader keeps acting until its renew deadline passes (isLeader()).
    }
    this.changed();
  }
}
