/** Small, pure address helpers (no node:net in the core, STYLE §2): the shared parser in agent/common/ip.ts. */
import { parseIpv4Into, parseIpv6Into } from '../agent/common/ip.js';

const scratch = new Uint8Array(16);

export function isIPv4(s: string): boolean {
  return parseIpv4Into(s, scratch, 0);
}

/** RFC 4291 text form (hex groups, at most one "::", optional trailing dotted quad). */
export function isIPv6(s: string): boolean {
  return parseIpv6Into(s, scratch, 0);
}

export function ipFamily(s: string): 4 | 6 | undefined {
  if (isIPv4(s)) return 4;
  if (isIPv6(s)) return 6;
  return undefined;
}

/** "10.0.0.5/32" -> "10.0.0.5"; a bare address is returned as is. */
export function stripPrefix(cidr: string): string {
  const i = cidr.indexOf('/');
  return i < 0 ? cidr : cidr.slice(0, i);
}
