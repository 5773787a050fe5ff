/**
 * KubeApiDouble: a TEST DOUBLE of the Kubernetes API server (no real kube-apiserver can be
 * installed on these machines). It serves, over HTTP or HTTPS on loopback, the part of the API
 * that Petrel uses, following the API conventions closely enough that the real
 * @kubernetes/client-node and the real `kubectl` talk to it:
 *
 *  - core/v1 `nodes` (cluster scoped) and `pods` (namespaced, also listed across namespaces),
 *    each with its `status` subresource; core/v1 `namespaces` (cluster scoped, plain objects);
 *    coordination.k8s.io/v1 `leases` (namespaced).
 *  - get, list (limit + continue pagination, labelSelector, fieldSelector with = and !=), watch
 *    (`?watch=true`, from a resourceVersion, `allowWatchBookmarks` BOOKMARK events,
 *    `timeoutSeconds`), create, update (PUT, with the resourceVersion precondition: 409 Conflict
 *    when stale), patch (JSON merge patch, strategic merge patch with the merge keys of the
 *    fields Petrel touches, e.g. node `status.conditions` by `type`; JSON patch), delete (with
 *    `preconditions.resourceVersion`).
 *  - One global resourceVersion counter (like etcd's revision) and an event history; compact()
 *    drops the history, after which a watch from an older resourceVersion gets the ERROR event
 *    with a 410 Gone Status (reason Expired), and a list continue token from before gets 410.
 *  - Discovery (/api, /apis, /api/v1, /apis/coordination.k8s.io/v1, /version) for kubectl.
 *  - Faults: failNext() (an HTTP error status for matching requests), failMidList() (the next
 *    list of a resource fails after its first page, or is cut off mid-body), unreachable() /
 *    reachable() (the listener and every open connection closed; re-opened on the same port),
 *    expireWatches() (every open watch ends with 410).
 *
 * What it does not do (documented so nobody relies on it): admission, defaulting and validation
 * of objects beyond metadata, namespace lifecycle (a pod needs no Namespace object; deleting one
 * deletes nothing else), graceful deletion (deletes are immediate),
 * snapshot-consistent pagination (a continued list serves current objects after the token's key,
 * stamped with the first page's resourceVersion), protobuf, server-side apply.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { makePki } from './certs.js';
import { scratchDir } from './tmp.js';

/** A Kubernetes object as JSON. */
// biome-ignore lint/suspicious/noExplicitAny: objects are free-form JSON
export type KObj = Record<string, any>;

export type ResourceName = 'nodes' | 'pods' | 'namespaces' | 'leases';

interface ResourceDef {
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
  /** Whether the resource has a status subresource (the main resource then ignores status). */
  hasStatus: boolean;
  shortNames: string[];
}

const RESOURCES: Record<ResourceName, ResourceDef> = {
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false, hasStatus: true, shortNames: ['no'] },
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true, hasStatus: true, shortNames: ['po'] },
  // Plain objects here (no phase, finalizers or cascading delete): Petrel reads their annotations.
  namespaces: { group: '', version: 'v1', kind: 'Namespace', namespaced: false, hasStatus: false, shortNames: ['ns'] },
  leases: {
    group: 'coordination.k8s.io',
    version: 'v1',
    kind: 'Lease',
    namespaced: true,
    hasStatus: false,
    shortNames: [],
  },
};

const apiVersionOf = (d: ResourceDef) => (d.group ? `${d.group}/${d.version}` : d.version);

/**
 * Strategic merge patch: list fields merged by key (as the Kubernetes types declare with
 * `patchMergeKey`), for the fields Petrel and these tests patch. Other lists are replaced.
 */
const MERGE_KEYS: Record<string, string> = {
  'status.conditions': 'type',
  'status.addresses': 'type',
  'spec.taints': 'key',
  'spec.containers': 'name',
  'metadata.ownerReferences': 'uid',
};

export interface FaultMatch {
  method?: string;
  resource?: ResourceName;
  /** Only list requests (GET on a collection without watch). */
  list?: boolean;
  watch?: boolean;
}

interface Fault extends FaultMatch {
  status: number;
  times: number;
}

interface Watcher {
  resource: ResourceName;
  namespace: string | undefined;
  match: (o: KObj) => boolean;
  res: ServerResponse;
  closed: boolean;
  timers: NodeJS.Timeout[];
}

/** What an authorizer is asked (the API server's RBAC attributes). */
export interface AuthzRequest {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  group: string;
  resource: ResourceName;
  subresource: string | undefined;
  namespace: string | undefined;
  name: string | undefined;
}

export interface KubeApiOptions {
  /**
   * Authorizes requests that carry the `token` (e.g. test/helpers/kube-rbac.ts: the manifests' RBAC
   * for a ServiceAccount); denied requests get 403 Forbidden. Discovery is always allowed.
   */
  authorize?: (r: AuthzRequest) => boolean;
  /**
   * HTTPS certificate (server certificate for 127.0.0.1 and its CA). By default a throw-away PKI
   * is made (test/helpers/certs.ts): client-node refuses plain HTTP without skipTLSVerify, like a
   * real cluster the double serves HTTPS.
   */
  tls?: { cert: string; key: string; ca: string };
  /** Serve plain HTTP instead (kubectl accepts it; client-node only with skipTLSVerify). */
  plainHttp?: boolean;
  /** Require `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /** Interval of BOOKMARK events on watches that allow them (default 1000 ms). */
  bookmarkIntervalMs?: number;
  /**
   * Serve at most this many items per list page whatever the `limit` (the API server may return
   * fewer items than asked, with a continue token): makes pagination happen with few objects.
   */
  maxPageSize?: number;
  port?: number;
}

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
}

const clone = <T>(o: T): T => structuredClone(o);

function isObj(v: unknown): v is KObj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: KObj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Strategic merge patch (the subset described at MERGE_KEYS). */
export function strategicMergePatch(target: unknown, patch: unknown, path = ''): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: KObj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') || k.startsWith('$retainKeys') || k === '$patch') continue;
    const p = path ? `${path}.${k}` : k;
    const mk = MERGE_KEYS[p];
    if (v === null) delete out[k];
    else if (mk && Array.isArray(v)) {
      const list: KObj[] = Array.isArray(out[k]) ? clone(out[k]) : [];
      for (const item of v as KObj[]) {
        const i = list.findIndex((x) => x[mk] === item[mk]);
        if (item.$patch === 'delete') {
          if (i >= 0) list.splice(i, 1);
        } else if (i >= 0) list[i] = strategicMergePatch(list[i], item, p) as KObj;
        else list.push(strategicMergePatch({}, item, p) as KObj);
      }
      out[k] = list;
    } else out[k] = strategicMergePatch(out[k], v, p);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, test). */
export function jsonPatch(target: KObj, ops: { op: string; path: string; value?: unknown }[]): KObj {
  const doc = clone(target);
  for (const op of ops) {
    const parts = op.path
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = parts.pop();
    if (last === undefined) throw new PatchError('empty path');
    // biome-ignore lint/suspicious/noExplicitAny: walking free-form JSON
    let parent: any = doc;
    for (const p of parts) {
      if (parent[p] === undefined) {
        if (op.op === 'add') parent[p] = {};
        else throw new PatchError(`path ${op.path} not found`);
      }
      parent = parent[p];
    }
    if (op.op === 'test') {
      if (JSON.stringify(parent[last]) !== JSON.stringify(op.value)) throw new PatchError(`test ${op.path} failed`);
    } else if (op.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (op.op === 'add' && Array.isArray(parent)) {
      if (last === '-') parent.push(op.value);
      else parent.splice(Number(last), 0, op.value);
    } else if (op.op === 'add' || op.op === 'replace') parent[last] = clone(op.value);
    else throw new PatchError(`unsupported op ${op.op}`);
  }
  return doc;
}

class PatchError extends Error {
  override readonly name = 'PatchError';
}

class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: KObj,
  ) {
    super(message);
  }
}

function status(code: number, reason: string, message: string, details?: KObj): KObj {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

function getPath(o: KObj, dotted: string): unknown {
  // biome-ignore lint/suspicious/noExplicitAny: walking free-form JSON
  let cur: any = o;
  for (const p of dotted.split('.')) {
    if (cur === undefined || cur === null) return undefined;
    cur = cur[p];
  }
  return cur;
}

/** `a.b=c,d!=e` (fieldSelector) */
function parseFieldSelector(s: string | undefined): (o: KObj) => boolean {
  if (!s) return () => true;
  const terms = s.split(',').map((t) => {
    const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(t.trim());
    if (!m) throw new ApiError(400, 'BadRequest', `invalid field selector ${JSON.stringify(s)}`);
    return { path: m[1] as string, neg: m[2] === '!=', value: m[3] as string };
  });
  return (o) => terms.every((t) => (String(getPath(o, t.path) ?? '') === t.value) !== t.neg);
}

/** `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)` (labelSelector) */
function parseLabelSelector(s: string | undefined): (o: KObj) => boolean {
  if (!s) return () => true;
  const terms: ((l: Record<string, string>) => boolean)[] = [];
  for (const raw of s.match(/([^,(]+(\([^)]*\))?)/g) ?? []) {
    const t = raw.trim();
    if (!t) continue;
    let m = /^(\S+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t);
    if (m) {
      const vals = (m[3] as string).split(',').map((x) => x.trim());
      const k = m[1] as string;
      const neg = m[2] === 'notin';
      terms.push((l) => (l[k] !== undefined && vals.includes(l[k])) !== neg);
      continue;
    }
    m = /^([^!=]+)(!=|==|=)(.*)$/.exec(t);
    if (m) {
      const [k, op, v] = [(m[1] as string).trim(), m[2], (m[3] as string).trim()];
      terms.push((l) => (l[k] === v) !== (op === '!='));
      continue;
    }
    if (t.startsWith('!')) terms.push((l) => l[t.slice(1)] === undefined);
    else terms.push((l) => l[t] !== undefined);
  }
  return (o) => terms.every((f) => f(o.metadata?.labels ?? {}));
}

interface Route {
  resource: ResourceName;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
}

export class KubeApiDouble {
  readonly requests: RequestRecord[] = [];
  private server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly store = new Map<ResourceName, Map<string, KObj>>(
    (Object.keys(RESOURCES) as ResourceName[]).map((r) => [r, new Map()]),
  );
  private rv = 1;
  private compactedRv = 0;
  private history: { rv: number; type: string; resource: ResourceName; obj: KObj }[] = [];
  private watchers = new Set<Watcher>();
  private faults: Fault[] = [];
  private midList = new Map<ResourceName, { mode: 'page' | 'cut'; times: number }>();
  private port = 0;
  private readonly scheme: 'http' | 'https';

  private readonly opts: KubeApiOptions;

  private constructor(opts: KubeApiOptions) {
    if (!opts.plainHttp && !opts.tls) {
      const pki = makePki();
      opts = { ...opts, tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca } };
    }
    this.opts = opts;
    this.scheme = opts.tls ? 'https' : 'http';
    this.server = this.makeServer();
  }

  /** Starts the double on 127.0.0.1 (a free port unless `port` is given). */
  static async start(opts: KubeApiOptions = {}): Promise<KubeApiDouble> {
    const api = new KubeApiDouble(opts);
    await api.listen(opts.port ?? 0);
    return api;
  }

  /** e.g. https://127.0.0.1:38211 */
  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  get host(): string {
    return '127.0.0.1';
  }

  /** The CA certificate file clients must trust (undefined over plain HTTP). */
  get caFile(): string | undefined {
    return this.opts.tls?.ca;
  }

  get portNumber(): number {
    return this.port;
  }

  /** The current resourceVersion (the last write's). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /**
   * Writes a kubeconfig for this server (for kubectl and KubeConfig.loadFromFile): its CA, and
   * the server's token unless another is given. Returns its path.
   */
  writeKubeconfig(opts: { namespace?: string; token?: string } = {}): string {
    const dir = scratchDir('kubeconfig');
    const file = join(dir, 'kubeconfig');
    const cluster = this.opts.tls
      ? `    server: ${this.url}\n    certificate-authority: ${this.opts.tls.ca}\n`
      : `    server: ${this.url}\n`;
    const token = opts.token ?? this.opts.token;
    const user = token ? `    token: ${token}\n` : '    {}\n';
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: double',
        '  cluster:',
        cluster.trimEnd(),
        'users:',
        '- name: tester',
        '  user:',
        user.trimEnd(),
        'contexts:',
        '- name: double',
        '  context:',
        '    cluster: double',
        '    user: tester',
        ...(opts.namespace ? [`    namespace: ${opts.namespace}`] : []),
        'current-context: double',
        '',
      ].join('\n'),
    );
    return file;
  }

  // ------------------------------------------------------------------ direct state (the "cluster")

  /** Creates an object as a cluster component would (kubelet registering a node, a pod created). */
  create(resource: ResourceName, obj: KObj): KObj {
    return clone(this.doCreate(resource, obj.metadata?.namespace, obj));
  }

  get(resource: ResourceName, name: string, namespace?: string): KObj | undefined {
    const o = this.store.get(resource)?.get(this.key(resource, namespace, name));
    return o ? clone(o) : undefined;
  }

  list(resource: ResourceName): KObj[] {
    return [...(this.store.get(resource)?.values() ?? [])].map(clone);
  }

  /** Replaces an object unconditionally (status included). */
  update(resource: ResourceName, obj: KObj): KObj {
    const ns = obj.metadata?.namespace;
    const cur = this.mustGet(resource, ns, obj.metadata?.name);
    const next = clone(obj);
    next.metadata = { ...cur.metadata, ...next.metadata, resourceVersion: cur.metadata.resourceVersion };
    return clone(this.commit(resource, 'MODIFIED', next, cur));
  }

  delete(resource: ResourceName, name: string, namespace?: string): void {
    const cur = this.mustGet(resource, namespace, name);
    this.doDelete(resource, cur);
  }

  /** A Node with an InternalIP and labels, as kubelet registers it. */
  addNode(name: string, opts: { internalIP?: string; labels?: Record<string, string> } = {}): KObj {
    return this.create('nodes', {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, ...(opts.labels ?? {}) } },
      spec: {},
      status: {
        addresses: [
          ...(opts.internalIP ? [{ type: 'InternalIP', address: opts.internalIP }] : []),
          { type: 'Hostname', address: name },
        ],
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready' }],
      },
    });
  }

  /** A Namespace with annotations. */
  addNamespace(name: string, annotations: Record<string, string> = {}): KObj {
    return this.create('namespaces', {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, ...(Object.keys(annotations).length ? { annotations } : {}) },
    });
  }

  /** A scheduled pod (phase Running when it has addresses). */
  addPod(
    namespace: string,
    name: string,
    opts: { node: string; ips?: string[]; annotations?: Record<string, string> },
  ): KObj {
    return this.create('pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
      spec: { nodeName: opts.node, containers: [{ name: 'main', image: 'pause' }] },
      status: opts.ips?.length
        ? { phase: 'Running', podIP: opts.ips[0], podIPs: opts.ips.map((ip) => ({ ip })) }
        : { phase: 'Pending' },
    });
  }

  // ------------------------------------------------------------------ faults

  /** The next `times` requests matching `m` get `status` (a Status body). */
  failNext(m: FaultMatch, status: number, times = 1): void {
    this.faults.push({ ...m, status, times });
  }

  /**
   * The next list of `resource` fails part way: with `limit` pagination the first page is served
   * and the continue request gets 500; without it the body is cut off after half its bytes.
   */
  failMidList(resource: ResourceName, times = 1): void {
    this.midList.set(resource, { mode: 'page', times });
  }

  /** Lists of `resource` succeed again. */
  clearMidList(resource: ResourceName): void {
    this.midList.delete(resource);
  }

  /** Lists that failed part way so far. */
  midListFailures = 0;

  private midListFired(resource: ResourceName): void {
    this.midListFailures++;
    const m = this.midList.get(resource);
    if (m && --m.times <= 0) this.midList.delete(resource);
  }

  /** Drops the event history: watches from an older resourceVersion get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Ends every open watch with an ERROR event carrying 410 Gone (as after etcd compaction). */
  expireWatches(): void {
    this.compact();
    for (const w of [...this.watchers]) {
      this.send(w, { type: 'ERROR', object: status(410, 'Expired', 'too old resource version') });
      this.closeWatch(w);
    }
  }

  /** Closes the listener and every connection: clients see connection refused until reachable(). */
  async unreachable(): Promise<void> {
    for (const w of [...this.watchers]) this.closeWatch(w);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async reachable(): Promise<void> {
    this.server = this.makeServer();
    await this.listen(this.port);
  }

  async stop(): Promise<void> {
    await this.unreachable();
  }

  /** Number of watches open now for `resource`. */
  openWatches(resource?: ResourceName): number {
    return [...this.watchers].filter((w) => !resource || w.resource === resource).length;
  }

  // ------------------------------------------------------------------ server

  private makeServer(): Server {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.reply(res, 500, status(500, 'InternalError', String(err)));
        else res.destroy();
      });
    };
    const s = this.opts.tls
      ? createHttps({ cert: readFileSync(this.opts.tls.cert), key: readFileSync(this.opts.tls.key) }, handler)
      : createHttp(handler);
    s.on('connection', (sock: Socket) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    s.on('secureConnection', (sock: Socket) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
    return s;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        const a = this.server.address();
        if (a && typeof a === 'object') this.port = a.port;
        resolve();
      });
    });
  }

  private reply(res: ServerResponse, code: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = req.method ?? 'GET';
    this.requests.push({
      method,
      path: url.pathname,
      query,
      ...(req.headers['content-type'] ? { contentType: req.headers['content-type'] } : {}),
    });
    if (this.opts.token && req.headers.authorization !== `Bearer ${this.opts.token}`) {
      this.reply(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const disc = this.discovery(url.pathname);
    if (disc) {
      if (method !== 'GET') this.reply(res, 405, status(405, 'MethodNotAllowed', 'method not allowed'));
      else this.reply(res, 200, disc);
      return;
    }
    let route: Route;
    try {
      route = this.route(url.pathname);
    } catch (err) {
      const e = err as ApiError;
      this.reply(res, e.code, status(e.code, e.reason, e.message));
      return;
    }
    const isWatch = query.watch === 'true' || query.watch === '1';
    const isList = method === 'GET' && route.name === undefined && !isWatch;
    if (this.opts.authorize) {
      const verb = (
        {
          GET: isWatch ? 'watch' : isList ? 'list' : 'get',
          POST: 'create',
          PUT: 'update',
          PATCH: 'patch',
          DELETE: 'delete',
        } as const
      )[method as 'GET'];
      const d = RESOURCES[route.resource];
      if (
        !verb ||
        !this.opts.authorize({
          verb,
          group: d.group,
          resource: route.resource,
          subresource: route.subresource,
          namespace: route.namespace,
          name: route.name,
        })
      ) {
        this.reply(
          res,
          403,
          status(
            403,
            'Forbidden',
            `${route.resource}${route.subresource ? `/${route.subresource}` : ''} is forbidden: cannot ${verb} in the namespace "${route.namespace ?? ''}"`,
          ),
        );
        return;
      }
    }
    const fault = this.faults.find(
      (f) =>
        (f.method === undefined || f.method === method) &&
        (f.resource === undefined || f.resource === route.resource) &&
        (f.list === undefined || f.list === isList) &&
        (f.watch === undefined || f.watch === isWatch),
    );
    if (fault) {
      if (--fault.times <= 0) this.faults.splice(this.faults.indexOf(fault), 1);
      this.reply(res, fault.status, status(fault.status, 'InternalError', `injected fault ${fault.status}`));
      return;
    }
    const body = method === 'GET' || method === 'DELETE' ? await this.readBody(req) : await this.readBody(req);
    try {
      if (method === 'GET' && isWatch) {
        this.watch(route, query, res);
        return;
      }
      if (isList) {
        this.listReq(route, query, res);
        return;
      }
      const out = this.dispatch(method, route, body, req.headers['content-type'] ?? '');
      this.reply(res, out.code, out.body);
    } catch (err) {
      if (err instanceof ApiError) this.reply(res, err.code, status(err.code, err.reason, err.message, err.details));
      else if (err instanceof PatchError || err instanceof SyntaxError)
        this.reply(res, 422, status(422, 'Invalid', (err as Error).message));
      else throw err;
    }
  }

  private discovery(path: string): KObj | null {
    const resourceList = (group: string, version: string) => {
      const gv = group ? `${group}/${version}` : version;
      const resources: KObj[] = [];
      for (const [name, d] of Object.entries(RESOURCES)) {
        if (d.group !== group || d.version !== version) continue;
        resources.push({
          name,
          singularName: d.kind.toLowerCase(),
          namespaced: d.namespaced,
          kind: d.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
          ...(d.shortNames.length ? { shortNames: d.shortNames } : {}),
        });
        if (d.hasStatus)
          resources.push({
            name: `${name}/status`,
            singularName: '',
            namespaced: d.namespaced,
            kind: d.kind,
            verbs: ['get', 'patch', 'update'],
          });
      }
      return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources };
    };
    switch (path) {
      case '/version':
        return {
          major: '1',
          minor: '32',
          gitVersion: 'v1.32.0-petrel-test-double',
          platform: 'linux/amd64',
        };
      case '/api':
        return {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.port}` }],
        };
      case '/apis':
        return {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: [
            {
              name: 'coordination.k8s.io',
              versions: [{ groupVersion: 'coordination.k8s.io/v1', version: 'v1' }],
              preferredVersion: { groupVersion: 'coordination.k8s.io/v1', version: 'v1' },
            },
          ],
        };
      case '/api/v1':
        return resourceList('', 'v1');
      case '/apis/coordination.k8s.io/v1':
        return resourceList('coordination.k8s.io', 'v1');
      default:
        return null;
    }
  }

  private route(path: string): Route {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    let rest: string[];
    let group: string;
    if (parts[0] === 'api' && parts[1] === 'v1') {
      group = '';
      rest = parts.slice(2);
    } else if (parts[0] === 'apis' && parts.length >= 3) {
      group = parts[1] as string;
      if (parts[2] !== 'v1') throw new ApiError(404, 'NotFound', `the server could not find the requested resource`);
      rest = parts.slice(3);
    } else throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const resource = rest[0] as ResourceName;
    const d = RESOURCES[resource];
    if (!d || d.group !== group || (namespace !== undefined && !d.namespaced))
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const name = rest[1];
    const subresource = rest[2];
    if (name !== undefined && d.namespaced && namespace === undefined)
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (subresource !== undefined && (subresource !== 'status' || !d.hasStatus || rest.length > 3))
      throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    return { resource, namespace, name, subresource };
  }

  private key(resource: ResourceName, namespace: string | undefined, name: string): string {
    return RESOURCES[resource].namespaced ? `${namespace ?? 'default'}/${name}` : name;
  }

  private mustGet(resource: ResourceName, namespace: string | undefined, name: string | undefined): KObj {
    const o = name ? this.store.get(resource)?.get(this.key(resource, namespace, name)) : undefined;
    if (!o) {
      const d = RESOURCES[resource];
      throw new ApiError(404, 'NotFound', `${resource}${d.group ? `.${d.group}` : ''} "${name}" not found`, {
        name,
        ...(d.group ? { group: d.group } : {}),
        kind: resource,
      });
    }
    return o;
  }

  private withKind(resource: ResourceName, o: KObj): KObj {
    const d = RESOURCES[resource];
    return { apiVersion: apiVersionOf(d), kind: d.kind, ...o };
  }

  /**
   * Lease times are MicroTime: RFC 3339 with exactly six fractional digits (apimachinery's
   * RFC3339Micro); the API server refuses to decode anything else (400).
   */
  private checkFormats(resource: ResourceName, o: KObj): void {
    if (resource !== 'leases') return;
    for (const f of ['acquireTime', 'renewTime']) {
      const v = o.spec?.[f];
      if (v === undefined || v === null) continue;
      if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/.test(v))
        throw new ApiError(
          400,
          'BadRequest',
          `Lease in version "v1" cannot be handled as a Lease: spec.${f}: ${JSON.stringify(v)} is not a MicroTime`,
        );
    }
  }

  private doCreate(resource: ResourceName, namespace: string | undefined, input: KObj): KObj {
    const d = RESOURCES[resource];
    this.checkFormats(resource, input);
    const name = input.metadata?.name;
    if (!name) throw new ApiError(422, 'Invalid', `${d.kind} "" is invalid: metadata.name: Required value`);
    const ns = d.namespaced ? (namespace ?? input.metadata?.namespace ?? 'default') : undefined;
    if (d.namespaced && input.metadata?.namespace && input.metadata.namespace !== ns)
      throw new ApiError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent');
    const k = this.key(resource, ns, name);
    if (this.store.get(resource)?.has(k)) {
      throw new ApiError(409, 'AlreadyExists', `${resource}${d.group ? `.${d.group}` : ''} "${name}" already exists`, {
        name,
        ...(d.group ? { group: d.group } : {}),
        kind: resource,
      });
    }
    const obj = this.withKind(resource, clone(input));
    obj.metadata = {
      ...obj.metadata,
      name,
      ...(ns ? { namespace: ns } : {}),
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    };
    delete obj.metadata.resourceVersion;
    return this.commit(resource, 'ADDED', obj, undefined);
  }

  /** Stores `next` (a new object or a change of `prev`): bumps the resourceVersion and notifies. */
  private commit(resource: ResourceName, type: 'ADDED' | 'MODIFIED', next: KObj, prev: KObj | undefined): KObj {
    if (prev) {
      const a = { ...next, metadata: { ...next.metadata, resourceVersion: undefined } };
      const b = { ...prev, metadata: { ...prev.metadata, resourceVersion: undefined } };
      if (JSON.stringify(a) === JSON.stringify(b)) return prev; // a no-op write keeps the resourceVersion
    }
    this.rv++;
    const stored = clone(next);
    stored.metadata.resourceVersion = String(this.rv);
    if (prev && (JSON.stringify(prev.spec) !== JSON.stringify(stored.spec) || resource === 'leases'))
      stored.metadata.generation = (prev.metadata.generation ?? 1) + (resource === 'leases' ? 0 : 1);
    else stored.metadata.generation = prev?.metadata.generation ?? 1;
    this.store.get(resource)?.set(this.key(resource, stored.metadata.namespace, stored.metadata.name), stored);
    this.notify(resource, type, stored);
    return stored;
  }

  private doDelete(resource: ResourceName, cur: KObj): KObj {
    this.rv++;
    this.store.get(resource)?.delete(this.key(resource, cur.metadata.namespace, cur.metadata.name));
    const gone = clone(cur);
    gone.metadata.resourceVersion = String(this.rv);
    this.notify(resource, 'DELETED', gone);
    return gone;
  }

  private notify(resource: ResourceName, type: string, obj: KObj): void {
    this.history.push({ rv: this.rv, type, resource, obj });
    for (const w of this.watchers) {
      if (w.resource !== resource) continue;
      if (w.namespace !== undefined && obj.metadata.namespace !== w.namespace) continue;
      if (!w.match(obj)) continue;
      this.send(w, { type, object: obj });
    }
  }

  private dispatch(method: string, r: Route, body: string, contentType: string): { code: number; body: KObj } {
    const d = RESOURCES[r.resource];
    const ns = d.namespaced ? r.namespace : undefined;
    if (method === 'GET') return { code: 200, body: this.mustGet(r.resource, ns, r.name) };
    if (method === 'POST') {
      if (r.name !== undefined) throw new ApiError(405, 'MethodNotAllowed', 'method not allowed');
      return { code: 201, body: this.doCreate(r.resource, ns, JSON.parse(body) as KObj) };
    }
    if (method === 'DELETE') {
      const cur = this.mustGet(r.resource, ns, r.name);
      const opts = body ? (JSON.parse(body) as KObj) : {};
      const pre = opts.preconditions?.resourceVersion;
      if (pre !== undefined && pre !== cur.metadata.resourceVersion)
        throw this.conflict(r, 'the ResourceVersion in the precondition does not match');
      return { code: 200, body: this.doDelete(r.resource, cur) };
    }
    if (method === 'PUT' || method === 'PATCH') {
      const cur = this.mustGet(r.resource, ns, r.name);
      let next: KObj;
      if (method === 'PUT') {
        next = JSON.parse(body) as KObj;
        if (next.metadata?.name !== r.name)
          throw new ApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
      } else {
        const ct = contentType.split(';')[0]?.trim();
        const patch = JSON.parse(body) as unknown;
        if (ct === 'application/merge-patch+json') next = mergePatch(cur, patch) as KObj;
        else if (ct === 'application/strategic-merge-patch+json') next = strategicMergePatch(cur, patch) as KObj;
        else if (ct === 'application/json-patch+json')
          next = jsonPatch(cur, patch as { op: string; path: string; value?: unknown }[]);
        else throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format: ${ct}`);
      }
      this.checkFormats(r.resource, next);
      // The resourceVersion precondition (optimistic concurrency): a stale write is a 409.
      const want = next.metadata?.resourceVersion;
      if (want !== undefined && want !== '' && want !== cur.metadata.resourceVersion)
        throw this.conflict(
          r,
          'the object has been modified; please apply your changes to the latest version and try again',
        );
      // Immutable metadata and the split between the resource and its status subresource.
      next.metadata = {
        ...next.metadata,
        name: cur.metadata.name,
        uid: cur.metadata.uid,
        creationTimestamp: cur.metadata.creationTimestamp,
        ...(cur.metadata.namespace ? { namespace: cur.metadata.namespace } : {}),
      };
      next.apiVersion = cur.apiVersion;
      next.kind = cur.kind;
      if (d.hasStatus) {
        if (r.subresource === 'status') next = { ...cur, status: next.status };
        else next = { ...next, ...(cur.status !== undefined ? { status: cur.status } : {}) };
        if (r.subresource !== 'status' && cur.status === undefined) delete next.status;
      }
      return { code: 200, body: this.commit(r.resource, 'MODIFIED', next, cur) };
    }
    throw new ApiError(405, 'MethodNotAllowed', 'method not allowed');
  }

  private conflict(r: Route, why: string): ApiError {
    const d = RESOURCES[r.resource];
    return new ApiError(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${r.resource}${d.group ? `.${d.group}` : ''} "${r.name}": ${why}`,
      { name: r.name, ...(d.group ? { group: d.group } : {}), kind: r.resource },
    );
  }

  private matching(r: Route, query: Record<string, string>): KObj[] {
    const byField = parseFieldSelector(query.fieldSelector);
    const byLabel = parseLabelSelector(query.labelSelector);
    return [...(this.store.get(r.resource)?.values() ?? [])]
      .filter((o) => r.namespace === undefined || o.metadata.namespace === r.namespace)
      .filter((o) => byField(o) && byLabel(o))
      .sort((a, b) =>
        this.key(r.resource, a.metadata.namespace, a.metadata.name).localeCompare(
          this.key(r.resource, b.metadata.namespace, b.metadata.name),
        ),
      );
  }

  private listReq(r: Route, query: Record<string, string>, res: ServerResponse): void {
    const d = RESOURCES[r.resource];
    let listRv = this.rv;
    let after: string | undefined;
    const mid = this.midList.get(r.resource);
    if (query.continue) {
      if (mid?.mode === 'page') {
        this.midListFired(r.resource);
        this.reply(res, 500, status(500, 'InternalError', 'injected fault: list failed after its first page'));
        return;
      }
      let tok: { rv: number; after: string };
      try {
        tok = JSON.parse(Buffer.from(query.continue, 'base64url').toString('utf8')) as { rv: number; after: string };
      } catch {
        throw new ApiError(400, 'BadRequest', 'invalid continue token');
      }
      if (tok.rv < this.compactedRv) {
        this.reply(
          res,
          410,
          status(
            410,
            'Expired',
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
          ),
        );
        return;
      }
      listRv = tok.rv;
      after = tok.after;
    } else if (query.resourceVersion && query.resourceVersionMatch === 'Exact') {
      if (Number(query.resourceVersion) < this.compactedRv) {
        this.reply(res, 410, status(410, 'Expired', 'too old resource version'));
        return;
      }
    }
    let items = this.matching(r, query);
    const keyOf = (o: KObj) => this.key(r.resource, o.metadata.namespace, o.metadata.name);
    if (after !== undefined) items = items.filter((o) => keyOf(o) > (after as string));
    let limit = query.limit ? Number(query.limit) : 0;
    if (this.opts.maxPageSize && (limit === 0 || limit > this.opts.maxPageSize)) limit = this.opts.maxPageSize;
    let cont: string | undefined;
    let remaining: number | undefined;
    if (limit > 0 && items.length > limit) {
      remaining = items.length - limit;
      items = items.slice(0, limit);
      const last = items[items.length - 1] as KObj;
      cont = Buffer.from(JSON.stringify({ rv: listRv, after: keyOf(last) })).toString('base64url');
    }
    const body = {
      kind: `${d.kind}List`,
      apiVersion: apiVersionOf(d),
      metadata: {
        resourceVersion: String(listRv),
        ...(cont ? { continue: cont, remainingItemCount: remaining } : {}),
      },
      items: items.map((o) => {
        const { apiVersion: _a, kind: _k, ...rest } = o;
        return rest;
      }),
    };
    if (mid && !query.continue && (mid.mode === 'cut' || !cont)) {
      // No second page to fail: cut the body off half way.
      this.midListFired(r.resource);
      const text = JSON.stringify(body);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      setTimeout(() => res.destroy(), 10);
      return;
    }
    this.reply(res, 200, body);
  }

  private send(w: Watcher, ev: KObj): void {
    if (w.closed) return;
    w.res.write(`${JSON.stringify(ev)}\n`);
  }

  private closeWatch(w: Watcher): void {
    if (w.closed) return;
    w.closed = true;
    for (const t of w.timers) clearTimeout(t);
    this.watchers.delete(w);
    w.res.end();
  }

  private watch(r: Route, query: Record<string, string>, res: ServerResponse): void {
    const d = RESOURCES[r.resource];
    const byField = parseFieldSelector(query.fieldSelector);
    const byLabel = parseLabelSelector(query.labelSelector);
    if (r.name !== undefined) throw new ApiError(400, 'BadRequest', 'watch a single object with fieldSelector');
    const w: Watcher = {
      resource: r.resource,
      namespace: r.namespace,
      match: (o) => byField(o) && byLabel(o),
      res,
      closed: false,
      timers: [],
    };
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    res.on('close', () => this.closeWatch(w));
    const from = query.resourceVersion;
    if (from && from !== '0' && Number(from) < this.compactedRv) {
      // API conventions: a watch from a compacted resourceVersion is answered with 200 and an
      // ERROR event whose Status is 410 Gone (reason Expired); the client must relist.
      res.write(
        `${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`) })}\n`,
      );
      res.end();
      return;
    }
    if (!from || from === '0') {
      for (const o of this.matching(r, query)) this.send(w, { type: 'ADDED', object: o });
    } else {
      for (const h of this.history) {
        if (h.rv <= Number(from) || h.resource !== r.resource) continue;
        if (r.namespace !== undefined && h.obj.metadata.namespace !== r.namespace) continue;
        if (w.match(h.obj)) this.send(w, { type: h.type, object: h.obj });
      }
    }
    this.watchers.add(w);
    if (query.allowWatchBookmarks === 'true') {
      const every = this.opts.bookmarkIntervalMs ?? 1000;
      const tick = () => {
        if (w.closed) return;
        this.send(w, {
          type: 'BOOKMARK',
          object: { kind: d.kind, apiVersion: apiVersionOf(d), metadata: { resourceVersion: String(this.rv) } },
        });
        w.timers.push(setTimeout(tick, every));
      };
      w.timers.push(setTimeout(tick, every));
    }
    if (query.timeoutSeconds) w.timers.push(setTimeout(() => this.closeWatch(w), Number(query.timeoutSeconds) * 1000));
  }
}
