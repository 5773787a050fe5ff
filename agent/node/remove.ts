/**
 * Removing a gone node from the datastore, shared by `petrelctl node rm` and the node controller
 * of petrel-controllers (Kubernetes Node deleted): its IPAM state (every address attributed to
 * it, tunnel addresses included, then its blocks and affinities: ipam-etcd releaseNode), its
 * address claims and its node record. Refused while the node's agent holds its liveness lease,
 * unless `force` (then the lease is revoked first).
 */
import { type Ipam, IpamError, type ReleasedNode, releaseNode } from '../../ipam-etcd/index.js';
import { nodeKeys, parseAliveRecord } from './record.js';

export interface RemovedNode extends ReleasedNode {
  /** Whether a node record was deleted. */
  record: boolean;
  /** Address claims (/petrel/addresses/...) deleted. */
  claims: number;
}

export interface RemoveNodeOptions {
  /** Also while the node's agent is alive: its lease is revoked with `revokeLease`. */
  force?: boolean;
  revokeLease?: (leaseId: string) => Promise<void>;
}

/** The node's agent holds its liveness lease (IpamError kind 'invalid'). */
export class NodeAliveError extends IpamError {
  constructor(readonly node: string) {
    super('invalid', `node ${node} is alive (its agent holds a lease): stop it first, or use --force`);
  }
}

/** Removes `name`; null when the datastore knows nothing of it. */
export async function removeNode(ipam: Ipam, name: string, opts: RemoveNodeOptions = {}): Promise<RemovedNode | null> {
  const store = ipam.store;
  const rec = await store.get(nodeKeys.node(name));
  const aliveKv = await store.get(nodeKeys.aliveOf(name));
  const affs = await store.listKeys(`/petrel/ipam/v1/affinities/${name}/`);
  if (!rec && !aliveKv && affs.length === 0) return null;
  if (aliveKv) {
    if (!opts.force || !opts.revokeLease) throw new NodeAliveError(name);
    const a = parseAliveRecord(aliveKv.key, aliveKv.value);
    await opts.revokeLease(a.lease);
  }
  const r = await releaseNode(ipam, name);
  const claims = (await store.list(nodeKeys.addresses)).filter((kv) => kv.value === name);
  const writes = [
    ...claims.map((kv) => ({ key: kv.key, delete: true as const })),
    ...(rec ? [{ key: rec.key, delete: true as const }] : []),
  ];
  if (writes.length)
    await store.commit(
      [...claims, ...(rec ? [rec] : [])].map((kv) => ({ key: kv.key, modRevision: kv.modRevision })),
      writes,
    );
  return { ...r, record: rec !== null && rec !== undefined, claims: claims.length };
}
