/**
 * The Kubernetes API client, on @kubernetes/client-node 1.x: configuration from a kubeconfig
 * file or in-cluster (the service account token and CA mounted in the pod, and
 * KUBERNETES_SERVICE_HOST/PORT), list+watch sources for the informer, Lease and node status calls.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Lease,
  V1MicroTime,
  Watch,
} from '@kubernetes/client-node';
import {
  KubeApiError,
  type KubeNode,
  type KubeObject,
  type KubePod,
  type ListPage,
  type ListWatchSource,
  statusOf,
  type WatchEventType,
} from './types.js';

export interface KubeConnectOptions {
  /** A kubeconfig file; without it the in-cluster configuration is used. */
  kubeconfig?: string | undefined;
  /** Root under which the service account files are read (tests); default "/". */
  inClusterRoot?: string | undefined;
}

export function loadKubeConfig(opts: KubeConnectOptions): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else {
    if (!process.env.KUBERNETES_SERVICE_HOST)
      throw new Error('no --kubeconfig and not in a cluster (KUBERNETES_SERVICE_HOST unset)');
    kc.loadFromCluster(opts.inClusterRoot ?? '');
  }
  return kc;
}

/** Wraps client-node errors into KubeApiError with the HTTP status (0 when none, e.g. refused). */
function wrap(err: unknown, what: string): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const code = statusOf(err) ?? 0;
  return new KubeApiError(code, `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** A read that answers null for 404 Not Found; any other failure is a KubeApiError naming `what`. */
async function orNull<T>(what: string, read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (err) {
    if (statusOf(err) === 404) return null;
    throw wrap(err, what);
  }
}

/** A Lease as the leader election reads it. */
export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** RFC 3339 MicroTime strings as stored. */
  acquireTime?: string | undefined;
  renewTime?: string | undefined;
  leaseTransitions: number;
  resourceVersion: string;
}

const microTime = (ms: number) => new V1MicroTime(ms);

export class KubeApi {
  readonly core: CoreV1Api;
  readonly coord: CoordinationV1Api;

  constructor(readonly config: KubeConfig) {
    this.core = config.makeApiClient(CoreV1Api);
    this.coord = config.makeApiClient(CoordinationV1Api);
  }

  /** A list+watch source on a collection path, e.g. /api/v1/pods. */
  private source<T extends KubeObject>(
    path: string,
    list: (
      limit: number,
      cont: string | undefined,
    ) => Promise<{ items: unknown[]; metadata?: { resourceVersion?: string; _continue?: string } }>,
    watchParams: Record<string, string> = {},
  ): ListWatchSource<T> {
    const config = this.config;
    return {
      async list(o): Promise<ListPage<T>> {
        try {
          const r = await list(o.limit, o.continue);
          return {
            items: r.items as T[],
            resourceVersion: r.metadata?.resourceVersion ?? '',
            continue: r.metadata?._continue || undefined,
          };
        } catch (err) {
          throw wrap(err, `list ${path}`);
        }
      },
      async watch(rv, onEvent, onDone) {
        let failed: unknown;
        let started = false;
        const ctl = await new Watch(config).watch(
          path,
          { resourceVersion: rv, allowWatchBookmarks: true, ...watchParams },
          (type, obj) => onEvent(type as WatchEventType, obj as T),
          (err) => {
            if (!started) failed = err;
            else onDone(err ? wrap(err, `watch ${path}`) : null);
          },
        );
        if (failed !== undefined) throw wrap(failed ?? new Error('watch ended at once'), `watch ${path}`);
        started = true;
        return { stop: () => ctl.abort() };
      },
    };
  }

  /** All pods (optionally those on one node, by fieldSelector spec.nodeName). */
  pods(opts: { nodeName?: string } = {}): ListWatchSource<KubePod> {
    const fieldSelector = opts.nodeName ? `spec.nodeName=${opts.nodeName}` : undefined;
    return this.source<KubePod>(
      '/api/v1/pods',
      (limit, cont) =>
        this.core.listPodForAllNamespaces({
          limit,
          ...(cont ? { _continue: cont } : {}),
          ...(fieldSelector ? { fieldSelector } : {}),
        }),
      fieldSelector ? { fieldSelector } : {},
    );
  }

  /** All nodes, or the one named (fieldSelector metadata.name). */
  nodes(opts: { name?: string } = {}): ListWatchSource<KubeNode> {
    const fieldSelector = opts.name ? `metadata.name=${opts.name}` : undefined;
    return this.source<KubeNode>(
      '/api/v1/nodes',
      (limit, cont) =>
        this.core.listNode({
          limit,
          ...(cont ? { _continue: cont } : {}),
          ...(fieldSelector ? { fieldSelector } : {}),
        }),
      fieldSelector ? { fieldSelector } : {},
    );
  }

  readNode(name: string): Promise<KubeNode | null> {
    return orNull(`read node ${name}`, async () => (await this.core.readNode({ name })) as KubeNode);
  }

  readPod(namespace: string, name: string): Promise<KubePod | null> {
    return orNull(
      `read pod ${namespace}/${name}`,
      async () => (await this.core.readNamespacedPod({ namespace, name })) as KubePod,
    );
  }

  /** A Namespace (its annotations carry namespace-wide defaults such as petrel.io/ipv4pools); null if absent. */
  readNamespace(name: string): Promise<KubeObject | null> {
    return orNull(`read namespace ${name}`, async () => (await this.core.readNamespace({ name })) as KubeObject);
  }

  /** Sets one node condition (strategic merge patch of status.conditions by type). */
  async setNodeCondition(
    name: string,
    cond: { type: string; status: 'True' | 'False' | 'Unknown'; reason: string; message: string },
    nowMs: number,
  ): Promise<void> {
    const t = new Date(nowMs).toISOString().replace(/\.\d+Z$/, 'Z');
    try {
      await this.core.patchNodeStatus(
        { name, body: { status: { conditions: [{ ...cond, lastTransitionTime: t, lastHeartbeatTime: t }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
    } catch (err) {
      throw wrap(err, `patch node ${name} status`);
    }
  }

  readLease(namespace: string, name: string): Promise<LeaseRecord | null> {
    return orNull(`read lease ${namespace}/${name}`, async () =>
      toLeaseRecord(await this.coord.readNamespacedLease({ namespace, name })),
    );
  }

  /** Creates the Lease; KubeApiError 409 when it exists. */
  async createLease(
    namespace: string,
    name: string,
    spec: { holderIdentity: string; leaseDurationSeconds: number; nowMs: number },
  ): Promise<LeaseRecord> {
    try {
      const l = await this.coord.createNamespacedLease({
        namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: {
            holderIdentity: spec.holderIdentity,
            leaseDurationSeconds: spec.leaseDurationSeconds,
            acquireTime: microTime(spec.nowMs),
            renewTime: microTime(spec.nowMs),
            leaseTransitions: 0,
          },
        },
      });
      return toLeaseRecord(l);
    } catch (err) {
      throw wrap(err, `create lease ${namespace}/${name}`);
    }
  }

  /** Replaces the Lease, conditional on `resourceVersion`; KubeApiError 409 when it changed. */
  async updateLease(
    namespace: string,
    name: string,
    rec: LeaseRecord,
    times: { acquireMs?: number | undefined; renewMs: number },
  ): Promise<LeaseRecord> {
    try {
      const l = await this.coord.replaceNamespacedLease({
        namespace,
        name,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, resourceVersion: rec.resourceVersion },
          spec: {
            holderIdentity: rec.holderIdentity,
            leaseDurationSeconds: rec.leaseDurationSeconds,
            ...(times.acquireMs !== undefined
              ? { acquireTime: microTime(times.acquireMs) }
              : rec.acquireTime
                ? { acquireTime: rec.acquireTime as unknown as V1MicroTime }
                : {}),
            renewTime: microTime(times.renewMs),
            leaseTransitions: rec.leaseTransitions,
          },
        },
      });
      return toLeaseRecord(l);
    } catch (err) {
      throw wrap(err, `update lease ${namespace}/${name}`);
    }
  }
}

function toLeaseRecord(l: V1Lease): LeaseRecord {
  const s = l.spec ?? {};
  const t = (v: unknown) =>
    v === undefined || v === null ? undefined : v instanceof Date ? v.toISOString() : String(v);
  return {
    holderIdentity: s.holderIdentity ?? '',
    leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
    acquireTime: t(s.acquireTime),
    renewTime: t(s.renewTime),
    leaseTransitions: s.leaseTransitions ?? 0,
    resourceVersion: l.metadata?.resourceVersion ?? '',
  };
}
