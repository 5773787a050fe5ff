/**
 * Releases everything IPAM holds for a node that is gone (`petrelctl node rm`, Calico's node
 * deletion): every address attributed to the node (its pods', its tunnel and gateway addresses,
 * also those borrowed from other nodes' blocks), then its blocks and affinities. A block still
 * holding another node's borrowed addresses loses its affinity instead of being deleted (those
 * addresses stay). Idempotent; each step is one compare-and-swap write (ConflictError retried by
 * the caller running it again).
 */
import type { Ipam } from './allocator.js';
import { isEmpty } from './block.js';
import { keys, parseAffinityKey } from './keys.js';
import { parseBlock, serialize } from './records.js';

export interface ReleasedNode {
  /** Addresses released (all handles of the node). */
  addresses: string[];
  /** Blocks deleted. */
  blocks: string[];
  /** Blocks kept (they hold other nodes' addresses) with their affinity removed. */
  orphaned: string[];
  /** Affinity keys removed. */
  affinities: number;
}

export async function releaseNode(ipam: Ipam, node: string): Promise<ReleasedNode> {
  const store = ipam.store;
  const out: ReleasedNode = { addresses: [], blocks: [], orphaned: [], affinities: 0 };
  const handles = new Set<string>();
  for (const kv of await store.list(keys.blocks)) {
    const b = parseBlock(kv.key, kv.value);
    b.allocations.forEach((a) => {
      if (a === null) return;
      const attr = b.attributes[a];
      if (attr?.owner.node === node) handles.add(attr.handle);
    });
  }
  for (const h of [...handles].sort()) out.addresses.push(...(await ipam.releaseByHandle(h)));
  const affs = await store.list(keys.nodeAffinities(node));
  const host = `host:${node}`;
  for (const kv of await store.list(keys.blocks)) {
    const b = parseBlock(kv.key, kv.value);
    if (b.affinity !== host) continue;
    const affKey = keys.affinity(node, b.cidr);
    const aff = affs.find((x) => x.key === affKey);
    const conds = [
      { key: kv.key, modRevision: kv.modRevision },
      ...(aff ? [{ key: aff.key, modRevision: aff.modRevision }] : []),
    ];
    if (isEmpty(b)) {
      await store.commit(conds, [
        { key: kv.key, delete: true },
        ...(aff ? [{ key: aff.key, delete: true as const }] : []),
      ]);
      out.blocks.push(b.cidr);
    } else {
      await store.commit(conds, [
        { key: kv.key, value: serialize({ ...b, affinity: null, sequenceNumber: b.sequenceNumber + 1 }) },
        ...(aff ? [{ key: aff.key, delete: true as const }] : []),
      ]);
      out.orphaned.push(b.cidr);
    }
    if (aff) out.affinities++;
  }
  // Affinities without a block of the node (pending claims that never finished).
  for (const kv of await store.list(keys.nodeAffinities(node))) {
    if (!parseAffinityKey(kv.key)) continue;
    await store.commit([{ key: kv.key, modRevision: kv.modRevision }], [{ key: kv.key, delete: true }]);
    out.affinities++;
  }
  return out;
}
