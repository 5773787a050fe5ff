/**
 * Runs this node's BGP speaker from the cluster state: plans with bgp-config.ts, applies the
 * difference at run time (peers added/removed, blocks announced/withdrawn) without restarting the
 * speaker; only a change of the speaker-wide settings (AS, router ID, listen port, reflector
 * role, graceful-restart time) builds a new speaker.
 *
 * The Loc-RIB best routes learned from peers are kept (route events) for the routing snapshot.
 * Note: written against the landed Speaker API (addPeer/removePeer/announce/withdraw); the
 * speaker helper's config-diff API (applyConfig) was not on its branch yet.
 */
import { EventEmitter } from 'node:events';
import { type Network, type PeerStatus, type RouteEvent, Speaker, type SpeakerStatus } from '../bgp/index.js';
import {
  type BgpPlan,
  diffList,
  diffPeers,
  needsRestart,
  type PlannedPeer,
  type PlanOptions,
  planBgp,
  toPeerConfig,
} from './bgp-config.js';
import type { Clock } from './common/clock.js';
import type { Logger } from './common/log.js';
import type { ClusterState } from './sync/types.js';

export interface LearnedRoute {
  prefix: string;
  nextHop: string;
  peer?: string;
}

export interface AgentPeerStatus extends PeerStatus {
  type: string;
  name: string;
}

/**
 * `learned`: the learned set changed; `route`: one Loc-RIB best-path change as the speaker reported
 * it (the agent's /routes/watch feed); `reset`: the speaker was replaced, its routes are gone.
 */
export class BgpRunner extends EventEmitter<{ learned: []; route: [RouteEvent]; reset: [] }> {
  private speaker: Speaker | undefined;
  private plan: BgpPlan = { peers: [], announcements: [] };
  private readonly learned = new Map<string, LearnedRoute>();
  /** Prefixes changed since the last takeChanges(): the route now, or null when gone. */
  private changed = new Map<string, LearnedRoute | null>();
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  lastError?: string;

  constructor(
    private readonly opts: Omit<PlanOptions, 'restarting'> & { restarting: boolean },
    private readonly deps: { clock: Clock; log: Logger; network?: Network },
  ) {
    super();
  }

  /** Applies a new cluster state (serialised: one apply at a time, the latest wins). */
  apply(state: ClusterState): Promise<void> {
    this.queue = this.queue
      .then(() => this.applyNow(state))
      .catch((err: unknown) => {
        this.lastError = (err as Error).message;
        this.deps.log.error({ err }, 'BGP apply failed');
      });
    return this.queue;
  }

  private async applyNow(state: ClusterState): Promise<void> {
    if (this.stopped) return;
    const next = planBgp(state, { ...this.opts, restarting: this.opts.restarting && !this.speaker });
    if (!this.speaker || needsRestart(this.plan.speaker, next.speaker)) {
      if (this.speaker) {
        this.deps.log.info({}, 'speaker settings changed: new speaker');
        await this.speaker.stop('configuration change');
        this.speaker = undefined;
        for (const p of this.learned.keys()) this.changed.set(p, null);
        this.learned.clear();
        this.emit('learned');
        this.emit('reset');
      }
      this.plan = { peers: [], announcements: [] };
      if (!next.speaker) {
        this.plan = next;
        return;
      }
      const sp = new Speaker(next.speaker, {
        clock: this.deps.clock,
        log: this.deps.log.child({ component: 'bgp' }),
        ...(this.deps.network ? { network: this.deps.network } : {}),
      });
      sp.on('route', (ev) => {
        if (ev.event === 'withdraw' || ev.nextHops.length === 0) {
          this.learned.delete(ev.prefix);
          this.changed.set(ev.prefix, null);
        } else {
          const r: LearnedRoute = {
            prefix: ev.prefix,
            nextHop: ev.nextHops[0] as string,
            ...(ev.peer ? { peer: ev.peer } : {}),
          };
          this.learned.set(ev.prefix, r);
          this.changed.set(ev.prefix, r);
        }
        this.emit('learned');
        this.emit('route', ev);
      });
      this.speaker = sp;
      for (const p of next.peers) sp.addPeer(toPeerConfig(p));
      for (const a of next.announcements) sp.announce(a);
      await sp.start();
      this.plan = { ...next, peers: [...next.peers] };
      this.deps.log.info({ peers: next.peers.length, announcements: next.announcements.length }, 'speaker started');
      return;
    }
    const sp = this.speaker;
    const d = diffPeers(this.plan.peers, next.peers);
    for (const p of d.remove) {
      this.deps.log.info({ peer: p.address, type: p.type }, 'peer removed');
      sp.removePeer(p.address);
    }
    for (const p of d.add) {
      this.deps.log.info({ peer: p.address, type: p.type }, 'peer added');
      sp.addPeer(toPeerConfig(p));
    }
    for (const p of d.refilter) {
      this.deps.log.info({ peer: p.address, type: p.type }, 'peer export filter changed (pools): applied in place');
      sp.setExportFilter(p.address, p.exportFilter);
    }
    const a = diffList(this.plan.announcements, next.announcements);
    for (const x of a.remove) sp.withdraw(x);
    for (const x of a.add) sp.announce(x);
    if (a.add.length || a.remove.length)
      this.deps.log.info({ announce: a.add, withdraw: a.remove }, 'announcements changed');
    this.plan = next;
  }

  get running(): boolean {
    return this.speaker !== undefined;
  }

  get peers(): readonly PlannedPeer[] {
    return this.plan.peers;
  }

  /**
   * The Loc-RIB changes since the last call, one per prefix (its latest state): what the data
   * plane applies route by route.
   */
  takeChanges(): { prefix: string; route: LearnedRoute | null }[] {
    const out = [...this.changed].map(([prefix, route]) => ({ prefix, route }));
    this.changed = new Map();
    return out;
  }

  /** The Loc-RIB best routes learned from peers (the planner's `learned`). */
  learnedRoutes(): LearnedRoute[] {
    return [...this.learned.values()];
  }

  peerStatus(): AgentPeerStatus[] {
    if (!this.speaker) return [];
    const byAddr = new Map(this.plan.peers.map((p) => [p.address, p]));
    return this.speaker.peerStatus().map((s) => ({
      ...s,
      type: byAddr.get(s.address)?.type ?? 'unknown',
      name: byAddr.get(s.address)?.name ?? '',
    }));
  }

  status(): (SpeakerStatus & { peers: AgentPeerStatus[] }) | undefined {
    if (!this.speaker) return undefined;
    return { ...this.speaker.status(), peers: this.peerStatus() };
  }

  bestRoutes(): ReturnType<Speaker['bestRoutes']> {
    return this.speaker?.bestRoutes() ?? [];
  }

  /** Peers configured but not Established. */
  notEstablished(): string[] {
    return this.peerStatus()
      .filter((p) => p.state !== 'Established')
      .map((p) => `${p.address} (${p.type}) is ${p.state}`);
  }

  /**
   * Stops applying. With `graceful` (SIGTERM) the sessions are left for the process exit to close
   * without a NOTIFICATION, so peers that negotiated graceful restart keep this node's routes for
   * the restart time (RFC 4724 §4.2); otherwise Cease 6/2 to every peer.
   */
  async stop(graceful: boolean): Promise<void> {
    this.stopped = true;
    await this.queue;
    if (!graceful) await this.speaker?.stop('petrel-agent stopping');
  }
}
