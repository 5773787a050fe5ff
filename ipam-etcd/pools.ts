/**
 * Pure pool logic: validation of IP pools (bad input gets one clear IpamError('invalid') and changes
 * nothing), which pool holds a block, which pools a node may assign from.
 */
import { bitsOf, contains, formatCidr, overlaps, parseCidr } from './cidr.js';
import { IpamError } from './errors.js';
import { isValidName } from './keys.js';
import { parseSelector } from './selector.js';
import type { Assignment, EncapMode, IpFamily, Pool } from './types.js';

export interface PoolInput {
  name: string;
  cidr: string;
  blockSize?: number | undefined;
  ipipMode?: string | undefined;
  vxlanMode?: string | undefined;
  natOutgoing?: boolean | undefined;
  disabled?: boolean | undefined;
  nodeSelector?: string | undefined;
}

const MODES: readonly EncapMode[] = ['Always', 'CrossSubnet', 'Never'];

function mode(field: string, v: string | undefined): EncapMode {
  if (v === undefined) return 'Never';
  const m = MODES.find((x) => x.toLowerCase() === v.toLowerCase());
  if (!m) throw new IpamError('invalid', `${field} must be one of ${MODES.join(', ')}, not ${JSON.stringify(v)}`);
  return m;
}

/** Validates operator input and fills defaults (blockSize 26 for IPv4, 122 for IPv6). */
export function validatePool(input: PoolInput): Pool {
  if (!isValidName(input.name)) {
    throw new IpamError(
      'invalid',
      `invalid pool name ${JSON.stringify(input.name)}: use letters, digits, '.', '-', '_'`,
    );
  }
  const c = parseCidr(input.cidr);
  const bits = bitsOf(c.family);
  const blockSize = input.blockSize ?? (c.family === 4 ? 26 : 122);
  const [lo, hi] = c.family === 4 ? [20, 32] : [116, 128];
  if (!Number.isInteger(blockSize) || blockSize < lo || blockSize > hi) {
    throw new IpamError('invalid', `block size for IPv${c.family} must be ${lo}..${hi}, not ${blockSize}`);
  }
  if (c.len > blockSize) {
    throw new IpamError('invalid', `pool ${formatCidr(c)} is smaller than one /${blockSize} block`);
  }
  const linkLocal = parseCidr(c.family === 4 ? '169.254.0.0/16' : 'fe80::/10');
  if (overlaps(c, linkLocal)) throw new IpamError('invalid', `pool ${formatCidr(c)} overlaps link-local addresses`);
  if (c.len === 0 || bits - c.len > 64 + (c.family === 6 ? 64 : 0)) {
    throw new IpamError('invalid', `pool ${formatCidr(c)} is too large`);
  }
  const ipipMode = mode('ipipMode', input.ipipMode);
  const vxlanMode = mode('vxlanMode', input.vxlanMode);
  if (c.family === 6 && ipipMode !== 'Never') throw new IpamError('invalid', 'ipipMode applies to IPv4 pools only');
  if (ipipMode !== 'Never' && vxlanMode !== 'Never') {
    throw new IpamError('invalid', 'ipipMode and vxlanMode cannot both be enabled');
  }
  const nodeSelector = input.nodeSelector?.trim() || 'all()';
  parseSelector(nodeSelector);
  return {
    name: input.name,
    cidr: formatCidr(c),
    blockSize,
    ipipMode,
    vxlanMode,
    natOutgoing: input.natOutgoing ?? false,
    disabled: input.disabled ?? false,
    nodeSelector,
  };
}

/** Pairs of pools whose CIDRs overlap. */
export function overlappingPools(pools: Pool[]): [Pool, Pool][] {
  const out: [Pool, Pool][] = [];
  for (let i = 0; i < pools.length; i++) {
    for (let j = i + 1; j < pools.length; j++) {
      if (overlaps(parseCidr(pools[i]!.cidr), parseCidr(pools[j]!.cidr))) out.push([pools[i]!, pools[j]!]);
    }
  }
  return out;
}

/** The pool (of those given) that contains a block CIDR. */
export function poolOf(pools: Pool[], blockCidr: string): Pool | undefined {
  const b = parseCidr(blockCidr);
  return pools.find((p) => {
    const pc = parseCidr(p.cidr);
    return pc.family === b.family && b.len === p.blockSize && contains(pc, b.family, b.addr);
  });
}

/**
 * Pools a node may assign from for one family: the named ones (each must exist, be enabled and be
 * of the family), else every enabled pool whose nodeSelector matches the node's labels.
 */
export function usablePools(
  pools: Pool[],
  family: IpFamily,
  node: string,
  labels: Record<string, string>,
  requested?: string[],
): Pool[] {
  const ofFamily = (p: Pool) => parseCidr(p.cidr).family === family;
  if (requested && requested.length > 0) {
    const chosen: Pool[] = [];
    for (const name of requested) {
      const p = pools.find((x) => x.name === name);
      if (!p) throw new IpamError('not-found', `no pool named ${name}`);
      if (p.disabled) throw new IpamError('invalid', `pool ${name} is disabled`);
      if (ofFamily(p)) chosen.push(p);
    }
    if (chosen.length === 0) {
      throw new IpamError('invalid', `none of the requested pools [${requested.join(', ')}] is IPv${family}`);
    }
    return chosen;
  }
  const usable = pools.filter((p) => ofFamily(p) && !p.disabled && parseSelector(p.nodeSelector)({ ...labels }));
  if (usable.length === 0) throw new IpamError('not-found', `no enabled IPv${family} pool selects node ${node}`);
  return usable;
}

/** What a caller learns about one assigned address of `pool`'s block `block`. */
export function toAssignment(ip: string, block: string, pool: Pool): Assignment {
  return {
    ip,
    family: ip.includes(':') ? 6 : 4,
    block,
    pool: pool.name,
    ipipMode: pool.ipipMode,
    vxlanMode: pool.vxlanMode,
  };
}
