/**
 * petrel-controllers, the parts wired: pod and node informers (Kubernetes API), the leader
 * elector (Lease), the IPAM garbage collector and the node controller (etcd), and metrics.
 *
 * Complicating factors:
 *  - Only the leader acts, and it re-checks leadership before every release.
 *  - Nothing is released while either view is incomplete (an informer not synced: list not
 *    complete, or its watch broken); such a round is skipped and counted.
 *  - Allocations are read from etcd *before* the pod view is taken: a pod is created in the API
 *    before its sandbox asks for an address, so every allocation read belongs to a pod the later
 *    view already has, if it still exists.
 *  - A Kubernetes Node deleted while its agent still holds its liveness lease in etcd is left
 *    alone until the lease is gone (the agent may be draining); later rounds retry.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { type Ipam, keys, parseAffinityKey, parseBlock } from '../../ipam-etcd/index.js';
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Informer, KubeNode, KubePod } from '../k8s/index.js';
import { nodeKeys, parseNodeRecord } from '../node/record.js';
import { NodeAliveError, removeNode } from '../node/remove.js';
import { planGc, podView } from './gc-plan.js';
import type { LeaderElector } from './leader.js';

export interface ControllersOptions {
  /** Grace period of a leak candidate (and minimum allocation age), ms. 0 disables the IPAM GC. */
  leakGraceMs: number;
  /** Interval of the IPAM GC and node controller rounds, ms. */
  intervalMs: number;
}

export interface ControllerMetrics {
  releases: Counter<'reason'>;
  candidates: Gauge;
  rounds: Counter<'controller' | 'result'>;
  nodesRemoved: Counter;
  leader: Gauge;
}

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  return {
    releases: new Counter({
      name: 'petrel_controllers_ipam_gc_releases_total',
      help: 'Addresses released by the IPAM garbage collector, by leak reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    candidates: new Gauge({
      name: 'petrel_controllers_ipam_gc_candidates',
      help: 'Handles seen leaked and waiting for the grace period',
      registers: [registry],
    }),
    rounds: new Counter({
      name: 'petrel_controllers_rounds_total',
      help: 'Controller rounds by result (done, not-leader, view-incomplete, error)',
      labelNames: ['controller', 'result'],
      registers: [registry],
    }),
    nodesRemoved: new Counter({
      name: 'petrel_controllers_nodes_removed_total',
      help: 'Nodes whose IPAM state was released after their Kubernetes Node was deleted',
      registers: [registry],
    }),
    leader: new Gauge({
      name: 'petrel_controllers_leader',
      help: '1 while this replica holds the leader Lease',
      registers: [registry],
    }),
  };
}

export class Controllers {
  private candidates = new Map<string, number>();
  private timer: TimerHandle | null = null;
  private running = false;
  private round: Promise<void> = Promise.resolve();
  /** Last round's results, for /status and tests. */
  readonly last: { gc?: string; nodes?: string; releasedTotal: number; nodesRemovedTotal: number } = {
    releasedTotal: 0,
    nodesRemovedTotal: 0,
  };

  constructor(
    private readonly ipam: Ipam,
    private readonly pods: Informer<KubePod>,
    private readonly nodes: Informer<KubeNode>,
    private readonly leader: LeaderElector,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly metrics: ControllerMetrics,
    private readonly opts: ControllersOptions,
  ) {}

  start(): void {
    this.running = true;
    this.schedule(this.opts.intervalMs);
  }

  /** Runs a round soon (a Node was deleted). */
  kick(): void {
    if (!this.running) return;
    this.timer?.cancel();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    await this.round;
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimer(ms, () => {
      this.round = this.runOnce().finally(() => this.schedule(this.opts.intervalMs));
    });
  }

  private viewComplete(): boolean {
    return this.pods.isSynced() && this.nodes.isSynced();
  }

  /** One round of both controllers. */
  async runOnce(): Promise<void> {
    this.metrics.leader.set(this.leader.isLeader() ? 1 : 0);
    await this.nodeRound().catch((err: unknown) => {
      this.metrics.rounds.inc({ controller: 'node', result: 'error' });
      this.log.warn({ err }, 'node controller round failed');
    });
    if (this.opts.leakGraceMs > 0)
      await this.gcRound().catch((err: unknown) => {
        this.metrics.rounds.inc({ controller: 'ipam-gc', result: 'error' });
        this.log.warn({ err }, 'ipam gc round failed');
      });
  }

  private skip(controller: string, result: string): boolean {
    this.metrics.rounds.inc({ controller, result });
    if (controller === 'ipam-gc') this.last.gc = result;
    else this.last.nodes = result;
    return false;
  }

  private ready(controller: string): boolean {
    if (!this.leader.isLeader()) return this.skip(controller, 'not-leader');
    if (!this.viewComplete()) {
      this.log.info(
        { controller, podsSynced: this.pods.isSynced(), nodesSynced: this.nodes.isSynced() },
        'view of the cluster incomplete: nothing released this round',
      );
      return this.skip(controller, 'view-incomplete');
    }
    return true;
  }

  private async gcRound(): Promise<void> {
    if (!this.ready('ipam-gc')) return;
    // Allocations first, then the views (see the header).
    const blocks = (await this.ipam.store.list(keys.blocks)).map((kv) => parseBlock(kv.key, kv.value));
    if (!this.ready('ipam-gc')) return;
    const pods = new Map(this.pods.items().map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, podView(p)]));
    const nodes = new Set(this.nodes.items().map((n) => n.metadata?.name ?? ''));
    const plan = planGc({
      blocks,
      pods,
      nodes,
      nowMs: this.clock.wallNow(),
      graceMs: this.opts.leakGraceMs,
      candidates: this.candidates,
    });
    this.candidates = plan.candidates;
    this.metrics.candidates.set(plan.candidates.size);
    for (const rel of plan.release) {
      if (!this.leader.isLeader() || !this.viewComplete()) {
        this.skip('ipam-gc', 'interrupted');
        return;
      }
      const ips = await this.ipam.releaseLeaked(rel.addresses);
      this.metrics.releases.inc({ reason: rel.reason }, ips.length);
      this.last.releasedTotal += ips.length;
      this.log.info(
        {
          handle: rel.handle,
          reason: rel.reason,
          ips,
          kept: rel.addresses.length - ips.length,
          owner: rel.addresses[0]?.owner,
          candidateSinceMs: rel.sinceMs,
        },
        'released leaked addresses',
      );
    }
    this.metrics.rounds.inc({ controller: 'ipam-gc', result: 'done' });
    this.last.gc = 'done';
  }

  private async nodeRound(): Promise<void> {
    if (!this.ready('node')) return;
    const store = this.ipam.store;
    const known = new Set<string>();
    for (const kv of await store.list(nodeKeys.nodes)) {
      try {
        known.add(parseNodeRecord(kv.key, kv.value).name);
      } catch {
        // unreadable records are `petrelctl ipam check`'s business
      }
    }
    for (const k of await store.listKeys(keys.affinities)) {
      const a = parseAffinityKey(k);
      if (a) known.add(a.node);
    }
    if (!this.ready('node')) return;
    const live = new Set(this.nodes.items().map((n) => n.metadata?.name ?? ''));
    for (const name of [...known].sort()) {
      if (live.has(name)) continue;
      if (!this.leader.isLeader() || !this.nodes.isSynced()) return;
      try {
        const r = await removeNode(this.ipam, name);
        if (!r) continue;
        this.metrics.nodesRemoved.inc();
        this.last.nodesRemovedTotal++;
        this.log.info(
          { node: name, addresses: r.addresses, blocks: r.blocks, orphaned: r.orphaned, affinities: r.affinities },
          'node gone from Kubernetes: its IPAM state released',
        );
      } catch (err) {
        if (err instanceof NodeAliveError)
          this.log.info({ node: name }, 'node gone from Kubernetes but its agent is alive: waiting');
        else throw err;
      }
    }
    this.metrics.rounds.inc({ controller: 'node', result: 'done' });
    this.last.nodes = 'done';
  }
}
