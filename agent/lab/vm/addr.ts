/**
 * Pure: IPv4 addressing of a rig. The bridge in the rig namespace has `bridgeCidr` (e.g.
 * 10.99.0.1/24); guest K (1-based) gets the host address `network + 10 + K` in the same prefix,
 * the bridge address as gateway, and MAC 52:54:00:76:II:KK (II = rig id, so two rigs on one
 * bridge never clash).
 */

export interface Ipv4Cidr {
  /** the address as written (not masked) */
  addr: number;
  prefixLen: number;
}

export class RigConfigError extends Error {
  override readonly name = 'RigConfigError';
  constructor(
    readonly field: string,
    readonly value: string,
    message: string,
  ) {
    super(`${field} ${JSON.stringify(value)}: ${message}`);
  }
}

export function parseIpv4(s: string, field = 'address'): number {
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new RigConfigError(field, s, 'not an IPv4 address');
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseIpv4Cidr(s: string, field = 'cidr'): Ipv4Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m) throw new RigConfigError(field, s, 'expected A.B.C.D/LEN');
  const prefixLen = Number(m[2]);
  if (prefixLen < 8 || prefixLen > 30) throw new RigConfigError(field, s, 'prefix length must be 8..30');
  let addr: number;
  try {
    addr = parseIpv4(m[1]!, field);
  } catch {
    throw new RigConfigError(field, s, 'not an IPv4 address');
  }
  return { addr, prefixLen };
}

export function networkOf(c: Ipv4Cidr): number {
  const mask = c.prefixLen === 0 ? 0 : (0xffffffff << (32 - c.prefixLen)) >>> 0;
  return (c.addr & mask) >>> 0;
}

export function formatCidr(addr: number, prefixLen: number): string {
  return `${formatIpv4(addr)}/${prefixLen}`;
}

/** Guest K's address in the bridge subnet (K from 1). Throws when it falls outside the subnet. */
export function guestAddress(bridge: Ipv4Cidr, k: number): string {
  const net = networkOf(bridge);
  const addr = net + 10 + k;
  const size = 2 ** (32 - bridge.prefixLen);
  if (10 + k >= size - 1) {
    throw new RigConfigError('bridgeCidr', formatCidr(bridge.addr, bridge.prefixLen), `no room for guest ${k}`);
  }
  if (addr === bridge.addr)
    throw new RigConfigError(
      'bridgeCidr',
      formatCidr(bridge.addr, bridge.prefixLen),
      `bridge address collides with guest ${k}`,
    );
  return formatCidr(addr, bridge.prefixLen);
}

export function guestMac(rigId: number, k: number): string {
  const h = (n: number) => (n & 255).toString(16).padStart(2, '0');
  return `52:54:00:76:${h(rigId)}:${h(k)}`;
}
