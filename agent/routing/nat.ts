/**
 * natOutgoing (Calico `cali-nat-outgoing`, calico.md §3.5) in Petrel's own nftables tables
 * `table ip petrel` and `table ip6 petrel`: a set of every pool's CIDR, a set of the natOutgoing
 * pools' CIDRs, and in a srcnat postrouting chain
 *     ip saddr @nat_pools ip daddr != @all_pools masquerade
 * so traffic from those pods to anything outside every pool leaves with the node's address, and
 * pod ↔ pod traffic keeps its source.
 *
 * natScript() is pure: pools → one `nft -f` script. Each family's table is declared (empty),
 * deleted and, when a pool wants it, defined again, in ONE transaction: nft applies a file
 * atomically, so the rules are never half-updated and no packet sees an empty set; when no pool
 * wants NAT any more the table is removed cleanly. NatTable runs it (in a namespace if given).
 */
import type { Logger } from '../common/log.js';
import { execIn } from './kernel-iproute2.js';
import { canonicalPrefix } from './plan.js';
import type { PoolSpec } from './types.js';

export const NAT_TABLE = 'petrel';

function familyTable(fam: 'ip' | 'ip6', all: string[], nat: string[]): string {
  const type = fam === 'ip' ? 'ipv4_addr' : 'ipv6_addr';
  const lines = [`table ${fam} ${NAT_TABLE} {}`, `delete table ${fam} ${NAT_TABLE}`];
  if (nat.length === 0) return lines.join('\n');
  const set = (name: string, elems: string[]) =>
    `  set ${name} {\n    type ${type}\n    flags interval\n    auto-merge\n    elements = { ${elems.join(', ')} }\n  }`;
  lines.push(
    `table ${fam} ${NAT_TABLE} {`,
    set('all_pools', all),
    set('nat_pools', nat),
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ${fam} saddr @nat_pools ${fam} daddr != @all_pools masquerade`,
    '  }',
    '}',
  );
  return lines.join('\n');
}

/** The nft script that makes Petrel's NAT tables match `pools` (pure). Invalid CIDRs are left out. */
export function natScript(pools: readonly PoolSpec[]): string {
  const all4: string[] = [];
  const all6: string[] = [];
  const nat4: string[] = [];
  const nat6: string[] = [];
  for (const p of pools) {
    const c = canonicalPrefix(p.cidr);
    if (!c) continue;
    const v6 = c.includes(':');
    (v6 ? all6 : all4).push(c);
    if (p.natOutgoing) (v6 ? nat6 : nat4).push(c);
  }
  return `${familyTable('ip', all4, nat4)}\n${familyTable('ip6', all6, nat6)}\n`;
}

export class NatError extends Error {
  override readonly name = 'NatError';
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

export class NatTable {
  private last: string | null = null;
  private readonly log: Logger;
  constructor(private readonly opts: { log: Logger; netnsPath?: string }) {
    this.log = opts.log.child({ component: 'nat' });
  }

  /** Makes the tables match `pools`; a no-op when nothing changed since the last success. */
  async apply(pools: readonly PoolSpec[]): Promise<void> {
    const script = natScript(pools);
    if (script === this.last) return;
    const r = await execIn(this.opts.netnsPath, 'nft', ['-f', '-'], script);
    if (r.code !== 0) {
      this.last = null;
      throw new NatError(`nft -f failed: ${r.stderr.trim()}`, r.stderr);
    }
    this.last = script;
    this.log.info({ pools: pools.length }, 'nat tables updated');
  }

  /** Removes Petrel's NAT tables (both families). */
  async remove(): Promise<void> {
    await this.apply([]);
  }
}
