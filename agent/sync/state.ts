/**
 * PURE: etcd key-values -> ClusterState. Records that do not parse are skipped and reported (one
 * bad record never hides the rest). Parsed values are cached per key and value, so a watch event
 * re-parses only what changed.
 */
import {
  type Block,
  blockCidrFromKey,
  IPAM_PREFIX,
  keys as ipamKeys,
  ordinalToIp,
  type Pool,
  parseAffinity,
  parseAffinityKey,
  parseBlock,
  parsePool,
} from '../../ipam-etcd/index.js';
import {
  type BgpPeerRecord,
  DEFAULT_BGP_CONFIG,
  type NodeRecord,
  nodeKeys,
  parseBgpConfig,
  parseBgpPeer,
  parseNodeRecord,
} from '../node/record.js';
import type { ClusterState } from './types.js';

/** Prefixes the agent reads and watches. */
export const WATCH_PREFIX = '/petrel/';

export interface BuildResult {
  state: ClusterState;
  /** Keys whose value did not parse, with why. */
  problems: { key: string; error: string }[];
}

type Parsed =
  | { kind: 'node'; v: NodeRecord }
  | { kind: 'alive'; name: string }
  | { kind: 'pool'; v: Pool }
  | { kind: 'block'; v: Block }
  | { kind: 'affinity'; node: string; cidr: string; confirmed: boolean }
  | { kind: 'bgp-config'; v: typeof DEFAULT_BGP_CONFIG }
  | { kind: 'peer'; v: BgpPeerRecord }
  | { kind: 'other' };

export class StateBuilder {
  private readonly cache = new Map<string, { value: string; parsed: Parsed | { kind: 'bad'; error: string } }>();

  constructor(private readonly checkSelector: (s: string) => void) {}

  private parse(key: string, value: string): Parsed {
    if (key.startsWith(nodeKeys.nodes)) return { kind: 'node', v: parseNodeRecord(key, value) };
    if (key.startsWith(nodeKeys.alive)) return { kind: 'alive', name: key.slice(nodeKeys.alive.length) };
    if (key.startsWith(ipamKeys.pools)) return { kind: 'pool', v: parsePool(key, value) };
    if (key.startsWith(ipamKeys.blocks)) {
      const b = parseBlock(key, value);
      if (b.cidr !== blockCidrFromKey(key)) throw new Error(`block key and cidr ${b.cidr} differ`);
      return { kind: 'block', v: b };
    }
    if (key.startsWith(ipamKeys.affinities)) {
      const k = parseAffinityKey(key);
      if (!k) return { kind: 'other' };
      return { kind: 'affinity', ...k, confirmed: parseAffinity(key, value).state === 'confirmed' };
    }
    if (key === nodeKeys.bgpConfig) return { kind: 'bgp-config', v: parseBgpConfig(key, value) };
    if (key.startsWith(nodeKeys.bgpPeers)) return { kind: 'peer', v: parseBgpPeer(key, value, this.checkSelector) };
    return { kind: 'other' };
  }

  /** True when the key matters to the state (handles and address claims do not). */
  static relevant(key: string): boolean {
    return (
      key.startsWith(nodeKeys.nodes) ||
      key.startsWith(nodeKeys.alive) ||
      key.startsWith('/petrel/bgp/') ||
      (key.startsWith(IPAM_PREFIX) && !key.startsWith(ipamKeys.handles))
    );
  }

  build(kvs: ReadonlyMap<string, string>, revision: string): BuildResult {
    const problems: BuildResult['problems'] = [];
    const nodes: NodeRecord[] = [];
    const alive: string[] = [];
    const pools: Pool[] = [];
    const blockRecs: Block[] = [];
    const affinities = new Set<string>();
    let bgp = { ...DEFAULT_BGP_CONFIG };
    const peers: BgpPeerRecord[] = [];
    for (const key of [...this.cache.keys()]) if (!kvs.has(key)) this.cache.delete(key);
    for (const [key, value] of kvs) {
      let c = this.cache.get(key);
      if (!c || c.value !== value) {
        try {
          c = { value, parsed: this.parse(key, value) };
        } catch (err) {
          c = { value, parsed: { kind: 'bad', error: (err as Error).message } };
        }
        this.cache.set(key, c);
      }
      const p = c.parsed;
      switch (p.kind) {
        case 'bad':
          problems.push({ key, error: p.error });
          break;
        case 'node':
          nodes.push(p.v);
          break;
        case 'alive':
          alive.push(p.name);
          break;
        case 'pool':
          pools.push(p.v);
          break;
        case 'block':
          blockRecs.push(p.v);
          break;
        case 'affinity':
          if (p.confirmed) affinities.add(`${p.node}\n${p.cidr}`);
          break;
        case 'bgp-config':
          bgp = p.v;
          break;
        case 'peer':
          peers.push(p.v);
          break;
        case 'other':
          break;
      }
    }
    const blocks: ClusterState['blocks'] = [];
    const borrowed: Record<string, string[]> = {};
    for (const b of blockRecs) {
      const owner = b.affinity?.startsWith('host:') ? b.affinity.slice(5) : undefined;
      // Confirmed: the block names the node and the node's affinity is confirmed (two-phase claim).
      if (owner && affinities.has(`${owner}\n${b.cidr}`)) blocks.push({ cidr: b.cidr, node: owner });
      b.allocations.forEach((attr, ord) => {
        if (attr === null) return;
        const holder = b.attributes[attr]?.owner.node;
        if (!holder || holder === owner) return;
        const list = borrowed[holder] ?? [];
        list.push(ordinalToIp(b, ord));
        borrowed[holder] = list;
      });
    }
    const byName = <T extends { name: string }>(a: T, z: T) => (a.name < z.name ? -1 : a.name > z.name ? 1 : 0);
    return {
      state: {
        revision,
        nodes: nodes.sort(byName),
        alive: alive.sort(),
        pools: pools.sort(byName),
        blocks: blocks.sort((a, z) => (a.cidr < z.cidr ? -1 : 1)),
        borrowed,
        bgp,
        peers: peers.sort(byName),
      },
      problems,
    };
  }
}
