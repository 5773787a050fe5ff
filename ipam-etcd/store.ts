/**
 * The key-value boundary of IPAM. Only etcd-store.ts knows etcd; memory-store.ts has the same
 * semantics in memory (plus forced failures) for unit tests.
 *
 * Every write is one atomic transaction guarded by compare-on-mod-revision conditions: if any
 * condition fails, nothing is written and ConflictError is thrown (the caller re-reads and retries).
 */

export interface KV {
  key: string;
  value: string;
  /** etcd mod revision of the key (decimal string: etcd revisions are int64). */
  modRevision: string;
}

/** `modRevision: null` means "the key must not exist". */
export interface Cond {
  key: string;
  modRevision: string | null;
}

export type Write = { key: string; value: string } | { key: string; delete: true };

export interface IpamStore {
  get(key: string): Promise<KV | null>;
  /** All keys under a prefix, sorted by key. */
  list(prefix: string): Promise<KV[]>;
  /** Keys only (cheap: no values) under a prefix, sorted. */
  listKeys(prefix: string): Promise<string[]>;
  /**
   * Applies all writes iff all conditions hold; otherwise throws ConflictError and writes nothing.
   * Returns the store revision of the write (the new mod revision of every written key).
   */
  commit(conds: Cond[], writes: Write[]): Promise<string>;
  close(): Promise<void>;
}
