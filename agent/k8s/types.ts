/**
 * The parts of Kubernetes objects Petrel reads, and the list/watch contract the informer runs
 * on (implemented on @kubernetes/client-node in client.ts, and by a fake in the unit tests).
 */

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Any Kubernetes object (only metadata is relied on by the informer). */
export interface KubeObject {
  metadata?: ObjectMeta;
}

export interface KubeNode extends KubeObject {
  status?: {
    addresses?: { type: string; address: string }[];
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export interface KubePod extends KubeObject {
  spec?: { nodeName?: string };
  status?: { phase?: string; podIP?: string; podIPs?: { ip: string }[] };
}

/** One page of a list. */
export interface ListPage<T> {
  items: T[];
  /** The list's resourceVersion (a watch continues from it). */
  resourceVersion: string;
  /** Continue token when more pages follow. */
  continue?: string | undefined;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchHandle {
  stop(): void;
}

/** A list+watch endpoint for one resource (e.g. all pods, or the nodes). */
export interface ListWatchSource<T extends KubeObject> {
  /** One page (`limit` items at most), from the start or from a continue token. */
  list(opts: { limit: number; continue?: string | undefined }): Promise<ListPage<T>>;
  /**
   * Watches from `resourceVersion` (with bookmarks). Resolves once the server accepted the watch
   * (or rejects); `onEvent` gets each event; `onDone` once when the stream ends (err null when the
   * server closed it normally).
   */
  watch(
    resourceVersion: string,
    onEvent: (type: WatchEventType, obj: T) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle>;
}

/** A Kubernetes API error with its HTTP status code (410 Gone, 409 Conflict, 404 Not Found...). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly code: number,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The HTTP status of an error from client-node (ApiException.code, Watch error.statusCode). */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof KubeApiError) return err.code;
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  if (e && typeof e.code === 'number') return e.code;
  if (e && typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** `namespace/name` for namespaced objects, `name` otherwise. */
export function keyOf(o: KubeObject): string {
  const m = o.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name ?? ''}` : (m.name ?? '');
}
