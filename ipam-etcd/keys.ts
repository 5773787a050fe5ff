/**
 * Petrel's etcd key layout (documented in README "IPAM key layout"). Every key is readable with
 * `etcdctl get --prefix /petrel/`; CIDRs appear with `/` replaced by `-`.
 */
import { cidrFromKey, cidrToKey } from './cidr.js';
import { IpamError } from './errors.js';

export const ROOT = '/petrel/';
export const IPAM = '/petrel/ipam/v1/';

export const keys = {
  pools: `${IPAM}pools/`,
  pool: (name: string) => `${IPAM}pools/${name}`,
  /** Bumped by every pool create/delete, so a pool add can be checked against all others atomically. */
  poolsEpoch: `${IPAM}meta/pools-epoch`,
  blocks: `${IPAM}blocks/`,
  block: (cidr: string) => `${IPAM}blocks/${cidrToKey(cidr)}`,
  affinities: `${IPAM}affinities/`,
  nodeAffinities: (node: string) => `${IPAM}affinities/${node}/`,
  affinity: (node: string, cidr: string) => `${IPAM}affinities/${node}/${cidrToKey(cidr)}`,
  handles: `${IPAM}handles/`,
  handle: (id: string) => `${IPAM}handles/${id}`,
  config: `${IPAM}config`,
  nodes: `${ROOT}nodes/`,
  node: (name: string) => `${ROOT}nodes/${name}`,
};

/** `/petrel/ipam/v1/blocks/10.244.0.64-26` → `10.244.0.64/26`. */
export function blockCidrFromKey(key: string): string {
  return cidrFromKey(key.slice(keys.blocks.length));
}

/** `/petrel/ipam/v1/affinities/<node>/<cidr-key>` → { node, cidr }. */
export function parseAffinityKey(key: string): { node: string; cidr: string } | null {
  const rest = key.slice(keys.affinities.length).split('/');
  if (rest.length !== 2 || !rest[0] || !rest[1]) return null;
  return { node: rest[0], cidr: cidrFromKey(rest[1]) };
}

/** Names used in keys: node names (DNS-1123 subdomains), pool names, handle IDs. No `/`. */
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._:-]{0,251}[A-Za-z0-9])?$/;

export function isValidName(s: string): boolean {
  return NAME_RE.test(s);
}

/** Throws IpamError('invalid') unless `v` is a valid name (handle, node) for use in a key. */
export function checkName(what: string, v: string): void {
  if (typeof v !== 'string' || !isValidName(v)) {
    throw new IpamError('invalid', `invalid ${what} ${JSON.stringify(v)}: letters, digits, '.', '-', '_', ':' only`);
  }
}
