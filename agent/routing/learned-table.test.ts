import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LearnedChange, LearnedTable } from './learned-table.js';
import { plan, planBase, routeKey } from './plan.js';
import type { EncapMode, LearnedRoute, PlanInput, PoolSpec, RouteSpec } from './types.js';

// This node (a) and b share 192.168.1.0/24; c is on another subnet.
const pool = (ipipMode: EncapMode): PoolSpec => ({
  cidr: '10.244.0.0/16',
  ipipMode,
  vxlanMode: 'Never',
  natOutgoing: false,
  disabled: false,
});
const base = (ipipMode: EncapMode, blocks: PlanInput['blocks'] = [{ cidr: '10.244.0.0/26', node: 'a' }]) => ({
  self: { name: 'a', ipv4: '192.168.1.1/24', uplink: 'eth0' },
  nodes: [
    { name: 'b', ipv4: '192.168.1.2/24' },
    { name: 'c', ipv4: '192.168.2.3/24' },
  ],
  pools: [pool(ipipMode)],
  blocks,
});

const show = (routes: RouteSpec[]) =>
  routes.map((r) => `${r.dst} ${r.type} ${r.gateway ?? '-'} ${r.dev ?? '-'}${r.onlink ? ' onlink' : ''}`).sort();

/** The table's desired routes, kept up to date from apply()'s answers only (as the reconciler is). */
function follow(t: LearnedTable, initial: RouteSpec[]) {
  const m = new Map(initial.map((r) => [routeKey(r), r]));
  return {
    apply(changes: LearnedChange[]) {
      for (const d of t.apply(changes)) {
        if (d.route) m.set(d.key, d.route);
        else m.delete(d.key);
      }
    },
    routes: () => [...m.values()],
  };
}

test('route by route, the table ends where plan() of the whole table ends (random changes, contended destinations)', () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const hops = ['192.168.1.2', '192.168.2.3', '192.168.1.1', 'fd00::1', 'nonsense'];
  // 10.244.N.0/26 and 10.244.N.1/26 (host bits set) want one destination; 198.51.100.N/32 is outside the pool.
  const prefixes = Array.from({ length: 12 }, (_, i) => [
    `10.244.${i}.0/26`,
    `10.244.${i}.1/26`,
    `198.51.100.${i}/32`,
  ]).flat();
  const input = base('CrossSubnet');
  const b = planBase(input);
  const t = new LearnedTable();
  t.setBase(b);
  const f = follow(t, []);
  const rib = new Map<string, string>();
  for (let step = 0; step < 2000; step++) {
    const batch: LearnedChange[] = [];
    for (let k = 1 + rnd(4); k > 0; k--) {
      const prefix = prefixes[rnd(prefixes.length)]!;
      if (rnd(3) === 0) {
        batch.push({ prefix });
        rib.delete(prefix);
      } else {
        const nextHop = hops[rnd(hops.length)]!;
        batch.push({ prefix, nextHop });
        rib.delete(prefix); // a changed prefix is the newest
        rib.set(prefix, nextHop);
      }
    }
    f.apply(batch);
    const learned: LearnedRoute[] = [...rib].map(([prefix, nextHop]) => ({ prefix, nextHop }));
    const whole = plan({ ...input, learned }).routes.filter((r) => r.type !== 'blackhole');
    assert.deepEqual(show(f.routes()), show(whole), `step ${step}`);
    assert.deepEqual(show(t.routes()), show(whole), `step ${step}: routes()`);
    assert.deepEqual(
      t.skipped().map((s) => s.what),
      plan({ ...input, learned })
        .skipped.map((s) => s.what)
        .filter((w) => w.startsWith('learned')),
    );
  }
});

test('a change names only its destination; a withdrawal of a prefix never seen names none', () => {
  const t = new LearnedTable();
  t.setBase(planBase(base('Never')));
  t.replace(Array.from({ length: 100 }, (_, i) => ({ prefix: `10.244.${i + 1}.0/26`, nextHop: '192.168.1.2' })));
  assert.equal(t.routes().length, 100);
  assert.deepEqual(t.apply([{ prefix: '10.244.5.0/26', nextHop: '192.168.2.3' }]), [
    {
      key: '4|10.244.5.0/26',
      route: { family: 4, dst: '10.244.5.0/26', type: 'unicast', gateway: '192.168.2.3', dev: 'eth0' },
    },
  ]);
  assert.deepEqual(t.apply([{ prefix: '10.244.6.0/26' }]), [{ key: '4|10.244.6.0/26' }]);
  assert.deepEqual(t.apply([{ prefix: '10.9.9.0/24' }]), []);
  assert.equal(t.routes().length, 99);
  // The own block (a blackhole in the base) is never a learned route's.
  assert.deepEqual(t.apply([{ prefix: '10.244.0.0/26', nextHop: '192.168.1.2' }]), []);
});

test('before a base plan changes wait in the table; a new base plans every route again', () => {
  const t = new LearnedTable();
  assert.deepEqual(t.apply([{ prefix: '10.244.2.0/26', nextHop: '192.168.2.3' }]), []);
  assert.equal(t.routes().length, 0);
  t.setBase(planBase(base('Never')));
  assert.deepEqual(show(t.routes()), ['10.244.2.0/26 unicast 192.168.2.3 eth0']);
  t.setBase(planBase(base('CrossSubnet')));
  assert.deepEqual(show(t.routes()), ['10.244.2.0/26 unicast 192.168.2.3 tunl0 onlink']);
  // The block becomes this node's: its blackhole wins, the learned route wants nothing.
  t.setBase(planBase(base('CrossSubnet', [{ cidr: '10.244.2.0/26', node: 'a' }])));
  assert.deepEqual(t.routes(), []);
});
