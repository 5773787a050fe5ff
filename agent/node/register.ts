/**
 * Node registration: claims the node's addresses (two nodes never share one), writes its record,
 * keeps its liveness key bound to an etcd lease, and assigns its tunnel addresses from its own
 * block under per-node handles (Calico: `ipip-tunnel-addr-<node>`).
 *
 * Complicating factors:
 *  - a claim is a create-if-absent transaction on /petrel/node-addresses/<ip>: two agents racing
 *    for one address cannot both win; the loser gets DuplicateAddressError and does not route.
 *  - an address change releases the node's old claims (only while they still name this node).
 *  - etcd away longer than the lease TTL: the lease expires (other nodes drop this node's mesh
 *    session and routes, as for a dead node); when etcd returns a new lease is granted and the
 *    liveness key written again.
 *  - labels, AS and the reflector cluster ID set with petrelctl stay unless a flag sets them.
 */
import type { Lease } from 'etcd3';
import type { Ipam, Pool } from '../../ipam-etcd/index.js';
import { parseCidr, parseSelector } from '../../ipam-etcd/index.js';
import type { Clock, TimerHandle } from '../common/clock.js';
import type { Logger } from '../common/log.js';
import { ClaimTakenError, type ClusterEtcd } from '../sync/etcd.js';
import { addrOf, formatNodeRecord, type NodeRecord, nodeKeys, parseNodeRecord, tunnelHandle } from './record.js';

export class DuplicateAddressError extends Error {
  override readonly name = 'DuplicateAddressError';
  readonly code = 'duplicate-address';
  constructor(
    readonly address: string,
    readonly holder: string,
  ) {
    super(
      `address ${address} is already used by node ${holder}: refusing to register (run petrelctl node rm ${holder} if it is gone)`,
    );
  }
}

export interface RegisterOptions {
  name: string;
  ipv4?: string;
  ipv6?: string;
  asNumber?: number;
  labels?: Record<string, string>;
  routeReflectorClusterId?: string;
  agentVersion: string;
  leaseTtlSec: number;
}

/** A deterministic, locally administered unicast MAC for the node's VXLAN device. */
export function vxlanMacFor(name: string): string {
  let h = 0x811c9dc5;
  let g = 0x01000193;
  for (let i = 0; i < name.length; i++) {
    h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    g = Math.imul(g ^ name.charCodeAt(i), 0x811c9dc5) >>> 0;
  }
  const b = [0x66, (h >>> 24) & 255, (h >>> 16) & 255, (h >>> 8) & 255, h & 255, g & 255];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function familyOf(cidr: string): 4 | 6 {
  return parseCidr(cidr, false).family;
}

export class NodeRegistration {
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  private regrantTimer: TimerHandle | undefined;
  private closed = false;
  record: NodeRecord;

  private constructor(
    private readonly etcd: ClusterEtcd,
    private readonly opts: RegisterOptions,
    private readonly deps: { clock: Clock; log: Logger },
    record: NodeRecord,
  ) {
    this.record = record;
  }

  /** Claims addresses and writes the record; throws DuplicateAddressError or EtcdUnavailableError. */
  static async register(
    etcd: ClusterEtcd,
    opts: RegisterOptions,
    deps: { clock: Clock; log: Logger },
  ): Promise<NodeRegistration> {
    const key = nodeKeys.node(opts.name);
    const raw = await etcd.get(key);
    let prev: NodeRecord | undefined;
    if (raw !== null) {
      try {
        prev = parseNodeRecord(key, raw);
      } catch (err) {
        deps.log.warn({ err: (err as Error).message }, 'replacing unreadable node record');
      }
    }
    const want = [opts.ipv4, opts.ipv6].filter((x): x is string => !!x).map(addrOf);
    for (const ip of want) {
      try {
        await etcd.claim(nodeKeys.address(ip), opts.name);
      } catch (err) {
        if (err instanceof ClaimTakenError) throw new DuplicateAddressError(ip, err.holder);
        throw err;
      }
    }
    for (const old of [prev?.ipv4, prev?.ipv6].filter((x): x is string => !!x).map(addrOf)) {
      if (!want.includes(old)) await etcd.deleteIf(nodeKeys.address(old), opts.name);
    }
    const record: NodeRecord = {
      ...(prev ?? {}),
      name: opts.name,
      labels: opts.labels ?? prev?.labels ?? {},
      vxlanMac: prev?.vxlanMac ?? vxlanMacFor(opts.name),
      agentVersion: opts.agentVersion,
    };
    delete record.ipv4;
    delete record.ipv6;
    if (opts.ipv4) record.ipv4 = opts.ipv4;
    if (opts.ipv6) record.ipv6 = opts.ipv6;
    if (opts.asNumber !== undefined) record.asNumber = opts.asNumber;
    if (opts.routeReflectorClusterId !== undefined) record.routeReflectorClusterId = opts.routeReflectorClusterId;
    await etcd.put(key, formatNodeRecord(record));
    const reg = new NodeRegistration(etcd, opts, deps, record);
    await reg.grant();
    deps.log.info({ node: opts.name, ipv4: record.ipv4, ipv6: record.ipv6, lease: reg.leaseId }, 'node registered');
    return reg;
  }

  get alive(): boolean {
    return this.leaseId !== undefined;
  }

  private async grant(): Promise<void> {
    const lease = this.etcd.lease(this.opts.leaseTtlSec, (err) => {
      if (this.closed || lease !== this.lease) return;
      this.deps.log.warn({ err: err.message }, 'node lease lost: re-granting');
      this.leaseId = undefined;
      this.regrantLater(1000);
    });
    this.lease = lease;
    const id = await lease.grant();
    await lease
      .put(nodeKeys.aliveOf(this.opts.name))
      .value(
        JSON.stringify({ name: this.opts.name, lease: id, since: new Date(this.deps.clock.wallNow()).toISOString() }),
      )
      .exec();
    this.leaseId = id;
  }

  private regrantLater(ms: number): void {
    this.regrantTimer?.cancel();
    this.regrantTimer = this.deps.clock.setTimer(ms, () => {
      void this.grant().catch((err: unknown) => {
        this.deps.log.warn({ err: (err as Error).message }, 'lease grant failed');
        this.regrantLater(Math.min(ms * 2, 10_000));
      });
    });
  }

  /** Writes changed record fields (tunnel addresses). */
  async update(change: Partial<NodeRecord>): Promise<void> {
    const next: NodeRecord = { ...this.record, ...change };
    for (const [k, v] of Object.entries(change))
      if (v === undefined) delete (next as unknown as Record<string, unknown>)[k];
    if (formatNodeRecord(next) === formatNodeRecord(this.record)) return;
    await this.etcd.put(nodeKeys.node(this.opts.name), formatNodeRecord(next));
    this.record = next;
  }

  /**
   * Assigns (or releases) the node's tunnel addresses for the pools' modes: an IPIP address when
   * an enabled IPv4 pool usable here has IPIP on, VXLAN v4/v6 likewise. Idempotent (by handle).
   */
  async ensureTunnelAddresses(ipam: Ipam, pools: readonly Pool[]): Promise<void> {
    const labels = this.record.labels;
    const usable = pools.filter((p) => !p.disabled && parseSelector(p.nodeSelector)(labels));
    const want = {
      ipip: usable.filter((p) => familyOf(p.cidr) === 4 && p.ipipMode !== 'Never' && this.record.ipv4),
      vxlan: usable.filter((p) => familyOf(p.cidr) === 4 && p.vxlanMode !== 'Never' && this.record.ipv4),
      vxlanV6: usable.filter((p) => familyOf(p.cidr) === 6 && p.vxlanMode !== 'Never' && this.record.ipv6),
    };
    const field = { ipip: 'ipipTunnelAddr', vxlan: 'vxlanTunnelAddr', vxlanV6: 'vxlanTunnelAddrV6' } as const;
    const change: Partial<NodeRecord> = {};
    for (const kind of ['ipip', 'vxlan', 'vxlanV6'] as const) {
      const handle = tunnelHandle[kind](this.opts.name);
      const held = await ipam.ipsByHandle(handle);
      const inWanted = held.filter((a) => want[kind].some((p) => p.name === a.pool));
      if (want[kind].length === 0) {
        if (held.length) await ipam.releaseByHandle(handle);
        if (this.record[field[kind]] !== undefined) change[field[kind]] = undefined as unknown as string;
        continue;
      }
      let ip = inWanted[0]?.ip;
      if (!ip) {
        if (held.length) await ipam.releaseByHandle(handle);
        const [a] = await ipam.autoAssign({
          handle,
          node: this.opts.name,
          ...(kind === 'vxlanV6' ? { num4: 0, num6: 1 } : { num4: 1, num6: 0 }),
          pools: want[kind].map((p) => p.name),
          attrs: { purpose: `${kind}-tunnel` },
        });
        ip = a?.ip;
        this.deps.log.info({ kind, ip }, 'tunnel address assigned');
      }
      if (ip && this.record[field[kind]] !== ip) change[field[kind]] = ip;
    }
    if (Object.keys(change).length) await this.update(change);
  }

  /**
   * Stops refreshing. `revoke`: the liveness key goes now (clean shutdown of a node that leaves);
   * otherwise it expires with the TTL (a restart keeps the node alive for its peers).
   */
  async close(revoke = false): Promise<void> {
    this.closed = true;
    this.regrantTimer?.cancel();
    const l = this.lease;
    this.lease = undefined;
    if (!l) return;
    if (revoke) await l.revoke().catch(() => undefined);
    else l.release();
  }
}
