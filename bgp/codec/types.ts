/** Shared codec types: address families and prefixes. */

/** Address Family Identifiers (IANA). */
export const AFI = { Ipv4: 1, Ipv6: 2 } as const;
export type AFI = (typeof AFI)[keyof typeof AFI];
/** Subsequent AFIs (IANA). */
export const SAFI = { Unicast: 1, Multicast: 2 } as const;
export type SAFI = (typeof SAFI)[keyof typeof SAFI];

/** The families whose NLRI this codec understands (plain prefixes, RFC 4760 §5). */
export type FamilyName = 'ipv4-unicast' | 'ipv6-unicast' | 'ipv4-multicast' | 'ipv6-multicast';

export function familyName(afi: number, safi: number): FamilyName | undefined {
  if (safi !== 1 && safi !== 2) return undefined;
  if (afi === 1) return safi === 1 ? 'ipv4-unicast' : 'ipv4-multicast';
  if (afi === 2) return safi === 1 ? 'ipv6-unicast' : 'ipv6-multicast';
  return undefined;
}

/**
 * A route prefix. `prefix` is the canonical address text (dotted quad, or RFC 5952 IPv6) with host
 * bits cleared on decode; `len` is the prefix length in bits; `pathId` is the RFC 7911 path
 * identifier, present only when ADD-PATH is in use for the family and direction. Plain objects are
 * the hot-path representation; use `prefixToString` for `'10.244.1.0/26'`.
 */
export interface Prefix {
  prefix: string;
  len: number;
  pathId?: number;
  /**
   * IPv4 only, optional: the address of `prefix` as an unsigned 32-bit number, when the caller
   * has it (the encoder then skips parsing the text; a RIB sending one prefix to many peers
   * parses it once). Must agree with `prefix`.
   */
  addr4?: number;
}

export function prefixToString(p: Prefix): string {
  return `${p.prefix}/${p.len}`;
}
