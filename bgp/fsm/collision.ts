/** Connection collision resolution (RFC 4271 §6.8). */
import type { ConnRef } from './states.js';

/** BGP identifier as an unsigned 32-bit number (RFC 4271 §6.8 compares them as integers). */
export function bgpIdToNumber(id: string): number {
  const p = id.split('.');
  let n = 0;
  for (const x of p) n = n * 256 + (Number(x) & 0xff);
  return n >>> 0;
}

/**
 * Given two connections to the same peer, returns the one to close.
 * RFC 4271 §6.8: "If the value of the local BGP Identifier is less than the remote one, the
 * local system closes the BGP connection that already exists (the one that is already in the
 * OpenConfirm state), and accepts the BGP connection initiated by the remote system" -- i.e. the
 * connection initiated by the higher identifier survives. Two connections in the same direction
 * (a peer that reconnected) keep the newer one (`b`).
 */
export function collisionLoser(localBgpId: string, remoteBgpId: string, a: ConnRef, b: ConnRef): ConnRef {
  if (a.dir === b.dir) return a;
  const localWins = bgpIdToNumber(localBgpId) > bgpIdToNumber(remoteBgpId);
  const keepDir = localWins ? 'out' : 'in';
  return a.dir === keepDir ? b : a;
}
