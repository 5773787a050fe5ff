/**
 * The IPAM socket service's request handler: protocol requests -> IpamApi calls -> responses.
 * No sockets here (server.ts owns those), so it is unit-tested with the fake IPAM.
 *
 * Complicating factors:
 *  - Idempotent assign: a repeated CNI ADD for the same handle must get the same addresses, so
 *    assign first looks the handle up and returns what it holds.
 *  - Concurrency: the runtime runs ADDs for different pods in parallel. They all allocate from
 *    this node's affine blocks; the allocator merges concurrent requests into one transaction per
 *    block (group commit), so they run in parallel. Operations on the same handle are serialised
 *    (a repeated ADD and its DEL must not interleave), and so is the node's gateway assignment.
 *  - Partial failure: a static multi-address request that fails midway releases what it took.
 */

import { HandleExistsError } from '../../ipam-etcd/errors.js';
import type { Assignment, IpamApi, Pool } from '../../ipam-etcd/types.js';
import type { Logger } from '../common/logger.js';
import { applyPodIpam, mentionsPodIpam } from './pod-ipam.js';
import type { AgentRequest, AgentResponse, WireAssignment, WireError, WireErrorKind } from './protocol.js';

type AssignRequest = Extract<AgentRequest, { op: 'assign' }>;

/**
 * Handle under which a node's gateway addresses are held (assign with `gateways: true`): one per
 * pool, from the node's own block, owned by the node (released with it by `petrelctl node rm`).
 */
export const gatewayHandle = (node: string) => `petrel-gateway.${node}`;

/** IpamApi plus the optional handle listing GC needs. */
export interface IpamBackend extends IpamApi {
  /** Handles that start with `prefix` and hold at least one address attributed to `node`. */
  listHandles?(prefix: string, node: string): Promise<string[]>;
}

const IPAM_KINDS: readonly WireErrorKind[] = [
  'conflict',
  'not-found',
  'exhausted',
  'invalid',
  'in-use',
  'unavailable',
  'corrupt',
  'retries-exhausted',
];

/** An error carrying a wire kind, thrown inside the service. */
class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly kind: WireErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Maps anything thrown by the IPAM to a wire error (IpamError kinds pass through by name). */
export function toWireError(err: unknown): WireError {
  if (err instanceof ServiceError) return { kind: err.kind, message: err.message };
  const kind = (err as { kind?: unknown } | null)?.kind;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof kind === 'string' && (IPAM_KINDS as readonly string[]).includes(kind)) {
    return { kind: kind as WireErrorKind, message };
  }
  return { kind: 'internal', message };
}

function wire(a: Assignment): WireAssignment {
  return { ip: a.ip, family: a.family, block: a.block, pool: a.pool, ipipMode: a.ipipMode, vxlanMode: a.vxlanMode };
}

export interface IpamServiceOptions {
  ipam: IpamBackend;
  nodeName: string;
  log: Logger;
  /** The pod veth MTU the data plane planned (returned with every assignment), if known. */
  podMtu?: () => number | undefined;
  /**
   * A pod's IPAM annotations (petrel.io/ipv4pools, ipv6pools, ipAddrs: pod-ipam.ts) and, when the pod
   * leaves a family's pools open, its namespace's; null when the pod does not exist. Absent without a
   * Kubernetes API: the request runs as the plugin sent it.
   */
  podAnnotations?: (namespace: string, pod: string) => Promise<PodAnnotations | null>;
  /** Called once per request with its op and `ok` or the error kind (metrics). */
  onResult?: (op: AgentRequest['op'], result: string) => void;
}

/** The annotations of a pod and (when needed) of its namespace. */
export interface PodAnnotations {
  pod: Record<string, string>;
  namespace: Record<string, string>;
}

export class IpamService {
  private readonly ipam: IpamBackend;
  private readonly nodeName: string;
  private readonly log: Logger;
  private readonly onResult: IpamServiceOptions['onResult'];
  /** Per key (a handle, 'gc', 'gateways'): the tail of its queue of mutating operations. */
  private readonly tails = new Map<string, Promise<unknown>>();
  /** Pool name -> this node's gateway address in it (held for the node's life, so cached). */
  private readonly gateways = new Map<string, string>();

  constructor(private readonly opts: IpamServiceOptions) {
    this.ipam = opts.ipam;
    this.nodeName = opts.nodeName;
    this.log = opts.log.child({ component: 'ipam-service' });
    this.onResult = opts.onResult;
  }

  /** Handles one request; never throws (failures become `ok: false` responses). */
  async handle(req: AgentRequest): Promise<AgentResponse> {
    const res = await this.dispatch(req);
    this.onResult?.(req.op, res.ok ? 'ok' : res.error.kind);
    return res;
  }

  private async dispatch(req: AgentRequest): Promise<AgentResponse> {
    try {
      switch (req.op) {
        case 'assign':
          return { v: 1, id: req.id, ok: true, assignments: await this.serial(req.handle, () => this.assign(req)) };
        case 'release': {
          const released = await this.serial(req.handle, () => this.ipam.releaseByHandle(req.handle));
          if (released.length > 0) this.log.info({ handle: req.handle, ips: released }, 'released');
          return { v: 1, id: req.id, ok: true, released };
        }
        case 'get':
          return { v: 1, id: req.id, ok: true, assignments: (await this.ipam.ipsByHandle(req.handle)).map(wire) };
        case 'status': {
          const pools = (await this.ipam.listPools()).filter((p) => !p.disabled);
          if (pools.length === 0) throw new ServiceError('not-found', 'no enabled IP pool');
          return { v: 1, id: req.id, ok: true, pools: pools.length };
        }
        case 'gc':
          return { v: 1, id: req.id, ok: true, released: await this.serial('gc', () => this.gc(req.prefix, req.keep)) };
      }
    } catch (err) {
      const error = toWireError(err);
      this.log.warn({ op: req.op, kind: error.kind, err }, 'ipam request failed');
      return { v: 1, id: req.id, ok: false, error };
    }
  }

  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.tails.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /**
   * Gives this node one gateway address per usable pool (the address that plugins such as ptp
   * put on the host end of every pod's veth): auto-assigned from the node's own block under the
   * node's gateway handle, so no pod can hold it and it goes with the node — Calico's node owns its
   * tunnel address the same way. Kept for the agent's life (cached).
   */
  private async reserveGateways(only: string[] | undefined): Promise<Map<string, Pool>> {
    const pools = new Map<string, Pool>();
    const handle = gatewayHandle(this.nodeName);
    let held: Assignment[] | undefined;
    for (const p of await this.ipam.listPools()) {
      if (p.disabled || (only && !only.includes(p.name))) continue;
      pools.set(p.name, p);
      if (this.gateways.has(p.name)) continue;
      held ??= await this.ipam.ipsByHandle(handle);
      let gw = held.find((a) => a.pool === p.name);
      if (!gw) {
        const v6 = p.cidr.includes(':');
        const got = await this.ipam.autoAssign({
          handle,
          node: this.nodeName,
          num4: v6 ? 0 : 1,
          num6: v6 ? 1 : 0,
          pools: [p.name],
          attrs: { purpose: 'gateway', node: this.nodeName },
        });
        gw = got[0];
        if (!gw) throw new ServiceError('exhausted', `no gateway address left in pool ${p.name} for ${this.nodeName}`);
        held.push(gw);
        this.log.info({ pool: p.name, gateway: gw.ip }, 'node gateway address assigned');
      }
      this.gateways.set(p.name, gw.ip);
    }
    return pools;
  }

  private withGateways(list: Assignment[], pools: Map<string, Pool>): WireAssignment[] {
    return list.map((a) => {
      const p = pools.get(a.pool);
      const gw = this.gateways.get(a.pool);
      return p && gw ? { ...wire(a), poolCidr: p.cidr, gateway: gw } : wire(a);
    });
  }

  private async assign(asked: AssignRequest): Promise<WireAssignment[]> {
    // Idempotent: a repeated ADD for the same handle gets what the handle already holds (its pod's
    // annotations were applied when it was assigned: a failed read of them does not fail it).
    // Without annotations to read or addresses named, the handle is not read first: the assignment
    // asks for a fresh handle (its transaction requires the handle to be absent) and only a repeat
    // pays the read, after HandleExistsError. Otherwise the handle and the pod are read together.
    const annotated = this.readsAnnotations(asked);
    if (!annotated && !asked.ips?.length) {
      try {
        return await this.assignNew(asked, true);
      } catch (err) {
        if (err instanceof HandleExistsError) return this.heldResult(asked, await this.ipam.ipsByHandle(asked.handle));
        if (err instanceof ServiceError) throw err; // our own check after the assignment (released)
        // The assignment failed before it could tell whether the handle was held (no free address,
        // etcd away): a repeated ADD still gets what its handle holds, which nothing here released.
        const held = await this.ipam.ipsByHandle(asked.handle).catch(() => []);
        if (held.length > 0) return this.heldResult(asked, held);
        throw err;
      }
    }
    const [held, req] = await Promise.all([
      this.ipam.ipsByHandle(asked.handle),
      annotated ? this.withPodAnnotations(asked).catch((err: unknown) => err as Error) : asked,
    ]);
    if (held.length > 0) return this.heldResult(asked, held);
    if (req instanceof Error) throw req;
    return this.assignNew(req, false);
  }

  /** The answer for a handle that already holds addresses (gateways of the pools they are from). */
  private async heldResult(asked: AssignRequest, held: Assignment[]): Promise<WireAssignment[]> {
    if (held.length === 0) throw new ServiceError('conflict', `handle ${asked.handle} changed during the request`);
    const gwPools = [...new Set(held.map((a) => a.pool))];
    const pools = asked.gateways ? await this.serial('gateways', () => this.reserveGateways(gwPools)) : undefined;
    return this.answer(held, pools);
  }

  private answer(list: Assignment[], pools: Map<string, Pool> | undefined): WireAssignment[] {
    const mtu = this.opts.podMtu?.();
    return (pools ? this.withGateways(list, pools) : list.map(wire)).map((a) => (mtu ? { ...a, podMtu: mtu } : a));
  }

  /** Assigns for a handle that held nothing when the request started (`fresh`: not read, see assign). */
  private async assignNew(req: AssignRequest, fresh: boolean): Promise<WireAssignment[]> {
    // Gateways for the pools the addresses come from (the annotations may have chosen them).
    const pools = req.gateways ? await this.serial('gateways', () => this.reserveGateways(req.pools)) : undefined;
    const attrs: Record<string, string> = { ...(req.attrs ?? {}), node: this.nodeName };
    let got: Assignment[] = [];
    try {
      if (req.ips && req.ips.length > 0) {
        for (const ip of req.ips) {
          got.push(await this.ipam.assignIp({ ip, handle: req.handle, node: this.nodeName, attrs }));
        }
      } else {
        const args = { handle: req.handle, node: this.nodeName, num4: req.num4, num6: req.num6, attrs, fresh };
        got = await this.ipam.autoAssign(req.pools ? { ...args, pools: req.pools } : args);
        const n4 = got.filter((a) => a.family === 4).length;
        const n6 = got.length - n4;
        if (n4 < req.num4 || n6 < req.num6) {
          throw new ServiceError('exhausted', `asked for ${req.num4} IPv4 + ${req.num6} IPv6, got ${n4} + ${n6}`);
        }
      }
      const allowed = req.pools;
      const outside = allowed ? got.filter((a) => !allowed.includes(a.pool)) : [];
      if (allowed && outside.length > 0) {
        throw new ServiceError(
          'invalid',
          `${outside.map((a) => `${a.ip} (pool ${a.pool})`).join(', ')} not in the allowed pools [${allowed.join(', ')}]`,
        );
      }
    } catch (err) {
      // A fresh handle may have held addresses before this call (a repeat the assignment could not
      // tell apart, e.g. when no address was free): release only what this call got (a failed
      // autoAssign has rolled back its own part). Otherwise the handle held nothing when read:
      // release whatever it holds now.
      const release = fresh
        ? got.length > 0
          ? this.ipam.releaseIps(got.map((a) => a.ip))
          : Promise.resolve([])
        : this.ipam.releaseByHandle(req.handle);
      await release.catch((e: unknown) => this.log.warn({ handle: req.handle, err: e }, 'rollback release failed'));
      throw err;
    }
    this.log.info(
      { handle: req.handle, ips: got.map((a) => a.ip), pod: attrs.pod, namespace: attrs.namespace },
      'assigned',
    );
    return this.answer(got, pools);
  }

  /** Whether the request's pod annotations are to be read (Kubernetes pods, with an API to ask). */
  private readsAnnotations(req: AssignRequest): boolean {
    return !!this.opts.podAnnotations && !!req.attrs?.namespace && !!req.attrs?.pod;
  }

  /**
   * The request as the pod's IPAM annotations make it (Kubernetes pods only: the plugin sent the
   * pod's namespace and name). The pod must be readable: an address that its annotations pin must
   * never be replaced by an automatic one because the API server was briefly unreachable.
   */
  private async withPodAnnotations(req: AssignRequest): Promise<AssignRequest> {
    const source = this.opts.podAnnotations;
    const namespace = req.attrs?.namespace;
    const name = req.attrs?.pod;
    if (!source || !namespace || !name) return req;
    let ann: PodAnnotations | null;
    try {
      ann = await source(namespace, name);
    } catch (err) {
      throw new ServiceError(
        'unavailable',
        `reading pod ${namespace}/${name} from the Kubernetes API: ${(err as Error).message}`,
      );
    }
    if (!ann) throw new ServiceError('not-found', `pod ${namespace}/${name} not found in the Kubernetes API`);
    // Most pods carry none: their ADD pays no pool read.
    if (!mentionsPodIpam(ann.pod, ann.namespace)) return req;
    const r = applyPodIpam(req, ann.pod, ann.namespace, await this.ipam.listPools());
    if (!r.ok) throw new ServiceError('invalid', `pod ${namespace}/${name}: ${r.error}`);
    this.log.info(
      { pod: name, namespace, annotations: r.applied, pools: r.req.pools, ips: r.req.ips },
      'pod annotations applied',
    );
    const out: AssignRequest = { ...req, num4: r.req.num4, num6: r.req.num6 };
    if (r.req.pools) out.pools = r.req.pools;
    else delete out.pools;
    if (r.req.ips) out.ips = r.req.ips;
    else delete out.ips;
    return out;
  }

  private async gc(prefix: string, keep: string[]): Promise<string[]> {
    if (!this.ipam.listHandles) throw new ServiceError('internal', 'this IPAM cannot list handles for GC');
    const keepSet = new Set(keep);
    const released: string[] = [];
    let firstErr: unknown;
    for (const h of await this.ipam.listHandles(prefix, this.nodeName)) {
      if (keepSet.has(h)) continue;
      try {
        released.push(...(await this.ipam.releaseByHandle(h)));
        this.log.info({ handle: h }, 'gc released handle');
      } catch (err) {
        // SPEC 1.1.0 GC: continue past errors and report them.
        firstErr ??= err;
      }
    }
    if (firstErr !== undefined) throw firstErr;
    return released;
  }
}
