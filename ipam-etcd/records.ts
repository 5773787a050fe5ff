/**
 * Parsing and serialising the JSON values stored in etcd. A value that does not parse or does not
 * match its schema is IpamError('corrupt') naming the key: it is reported, never silently
 * overwritten, so an operator can inspect it with etcdctl.
 */
import { IpamError } from './errors.js';
import type { Affinity, Block, Handle, IpamConfig, NodeRecord, Pool } from './types.js';

function corrupt(key: string, why: string): IpamError {
  return new IpamError('corrupt', `corrupted value at ${key}: ${why}`);
}

function parseObject(key: string, value: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    throw corrupt(key, 'not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt(key, 'not a JSON object');
  return v as Record<string, unknown>;
}

const isStr = (v: unknown): v is string => typeof v === 'string';
const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

export function parseBlock(key: string, value: string): Block {
  const o = parseObject(key, value);
  if (!isStr(o.cidr)) throw corrupt(key, 'cidr missing');
  if (o.affinity !== null && !isStr(o.affinity)) throw corrupt(key, 'affinity must be a string or null');
  if (!Array.isArray(o.allocations) || !o.allocations.every((a) => a === null || isInt(a))) {
    throw corrupt(key, 'allocations must be an array of integers and nulls');
  }
  if (!Array.isArray(o.unallocated) || !o.unallocated.every(isInt)) throw corrupt(key, 'unallocated must be integers');
  if (!Array.isArray(o.attributes)) throw corrupt(key, 'attributes must be an array');
  for (const a of o.attributes as unknown[]) {
    const r = a as Record<string, unknown> | null;
    if (!r || !isStr(r.handle) || typeof r.owner !== 'object' || r.owner === null || !isInt(r.assignedAt)) {
      throw corrupt(key, 'attribute entries need handle, owner and assignedAt');
    }
  }
  if (!isInt(o.sequenceNumber)) throw corrupt(key, 'sequenceNumber missing');
  const sfa = o.sequenceNumberForAllocation ?? {};
  if (typeof sfa !== 'object' || sfa === null) throw corrupt(key, 'sequenceNumberForAllocation must be an object');
  return { ...(o as unknown as Block), sequenceNumberForAllocation: sfa as Record<string, number> };
}

export function parsePool(key: string, value: string): Pool {
  const o = parseObject(key, value);
  if (!isStr(o.name) || !isStr(o.cidr) || !isInt(o.blockSize)) throw corrupt(key, 'pool needs name, cidr, blockSize');
  return {
    name: o.name,
    cidr: o.cidr,
    blockSize: o.blockSize,
    ipipMode: (o.ipipMode as Pool['ipipMode']) ?? 'Never',
    vxlanMode: (o.vxlanMode as Pool['vxlanMode']) ?? 'Never',
    natOutgoing: o.natOutgoing === true,
    disabled: o.disabled === true,
    nodeSelector: isStr(o.nodeSelector) ? o.nodeSelector : 'all()',
  };
}

export function parseAffinity(key: string, value: string): Affinity {
  const o = parseObject(key, value);
  if (o.state !== 'pending' && o.state !== 'confirmed' && o.state !== 'pendingDeletion') {
    throw corrupt(key, 'state must be pending, confirmed or pendingDeletion');
  }
  return { state: o.state };
}

export function parseHandle(key: string, value: string): Handle {
  const o = parseObject(key, value);
  const b = o.blocks;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw corrupt(key, 'blocks must be an object');
  for (const n of Object.values(b)) if (!isInt(n) || n < 0) throw corrupt(key, 'block counts must be integers');
  return { blocks: b as Record<string, number> };
}

export const DEFAULT_CONFIG: IpamConfig = { strictAffinity: false, maxBlocksPerHost: 0 };

export function parseConfig(key: string, value: string): IpamConfig {
  const o = parseObject(key, value);
  return {
    strictAffinity: o.strictAffinity === true,
    maxBlocksPerHost: isInt(o.maxBlocksPerHost) ? o.maxBlocksPerHost : 0,
  };
}

export function parseNode(key: string, value: string): NodeRecord {
  const o = parseObject(key, value);
  if (!isStr(o.name)) throw corrupt(key, 'node needs a name');
  const labels = (o.labels ?? {}) as Record<string, unknown>;
  if (typeof labels !== 'object' || Object.values(labels).some((v) => !isStr(v))) {
    throw corrupt(key, 'labels must map strings to strings');
  }
  return { ...(o as Record<string, unknown>), name: o.name, labels: labels as Record<string, string> };
}

/** Blocks are written compactly (64+ slots); other records are small. */
export function serialize(v: unknown): string {
  return JSON.stringify(v);
}
