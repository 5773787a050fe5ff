/** Pure CIDR arithmetic the IPAM service needs: the first host address of a pool (its gateway). */

function v4ToBig(ip: string): bigint {
  return ip.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
}

function v6ToBig(ip: string): bigint {
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((a, g) => (a << 16n) | BigInt(Number.parseInt(g || '0', 16)), 0n);
}

function bigToV4(n: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((n >> s) & 255n)).join('.');
}

function bigToV6(n: bigint): string {
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((n >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** "10.244.0.0/16" -> "10.244.0.1"; "fd00:10::/64" -> "fd00:10::1". */
export function firstHost(cidr: string): string {
  const [base = '', lenS = ''] = cidr.split('/');
  const len = Number(lenS);
  if (base.includes(':')) {
    const mask = ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len)) - 1n);
    return bigToV6((v6ToBig(base) & mask) + 1n);
  }
  const mask = ((1n << 32n) - 1n) ^ ((1n << BigInt(32 - len)) - 1n);
  return bigToV4((v4ToBig(base) & mask) + 1n);
}
