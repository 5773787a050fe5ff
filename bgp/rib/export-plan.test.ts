/**
 * Table tests of planExport: each branch of the Adj-RIB-Out diff (announce, replace, unchanged,
 * withdraw, never-sent, prune), back-pressure holding and release, grouping of announcements
 * and the per-target export cache.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FamilyName, type Prefix, WellKnownCommunity } from '../codec/index.js';
import type { ExportPeer } from './adj-rib-out.js';
import { type ExportPlan, type ExportTarget, planExport } from './export-plan.js';
import { compileFilter } from './filter.js';
import { LocRib, type LocRibEntry } from './loc-rib.js';
import { EMPTY_SLOTS, hasSlot, slotsOf } from './slot-set.js';
import type { PeerInfo, Route, RouteAttrs } from './types.js';

const LOCAL_AS = 64512;
const ibgp = (address: string): PeerInfo => ({ address, asn: LOCAL_AS, bgpId: address, isIbgp: true, rrClient: false });
const ebgp = (address: string, asn: number): PeerInfo => ({
  address,
  asn,
  bgpId: address,
  isIbgp: false,
  rrClient: false,
});

/** An export peer (eBGP unless `info` says otherwise) with next hop self for both families. */
const exportPeer = (info: PeerInfo, o: Partial<ExportPeer> = {}): ExportPeer => ({
  info,
  localAs: LOCAL_AS,
  families: ['ipv4-unicast', 'ipv6-unicast'],
  nextHopSelf: false,
  selfNextHop: { 'ipv4-unicast': '192.0.2.1', 'ipv6-unicast': '2001:db8::1' },
  routeReflector: false,
  clusterId: '192.0.2.1',
  exportFilter: compileFilter(undefined),
  ...o,
});
const target = (slot: number, peer: ExportPeer, paused = false): ExportTarget => ({
  slot,
  peer,
  paused,
  held: new Map(),
});
const attrs = (o: Partial<RouteAttrs> = {}): RouteAttrs => ({ origin: 'igp', asPath: [], nextHop: '', ...o });
const familyOf = (p: string): FamilyName => (p.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast');
/** A locally originated route (next hop '' = this speaker). */
const local = (prefix: string, a: RouteAttrs = attrs()): Route => ({ prefix, family: familyOf(prefix), attrs: a });
const learned = (prefix: string, peer: PeerInfo, a: RouteAttrs): Route => ({
  prefix,
  family: familyOf(prefix),
  attrs: a,
  peer,
});

/** Prefix text of a codec prefix. */
const text = (p: Prefix): string => `${p.prefix}/${p.len}`;
const announced = (plan: ExportPlan, i: number): { family: FamilyName; prefixes: string[]; attrs: RouteAttrs }[] =>
  (plan.peers[i]?.announce ?? []).map((g) => ({ family: g.family, prefixes: g.prefixes.map(text), attrs: g.attrs }));
const withdrawn = (plan: ExportPlan, i: number): Record<string, string[]> =>
  Object.fromEntries(
    [...(plan.peers[i]?.withdraw ?? new Map<FamilyName, Prefix[]>())].map(([f, l]) => [f, l.map(text)]),
  );
const entry = (rib: LocRib, prefix: string): LocRibEntry => {
  const e = rib.get(prefix);
  assert.ok(e, `no entry for ${prefix}`);
  return e;
};

test('planExport: no entries, no targets -> empty plan', () => {
  assert.deepEqual(planExport([], []), { peers: [], prune: [] });
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  const plan = planExport([], [t]);
  assert.equal(plan.peers.length, 1);
  assert.deepEqual(announced(plan, 0), []);
  assert.deepEqual(withdrawn(plan, 0), {});
  assert.deepEqual(plan.peers[0]?.delta, { 'ipv4-unicast': 0, 'ipv6-unicast': 0 });
});

test('planExport: new best path -> announced with the exported attributes, slot set, sent moves, dirty cleared', () => {
  const rib = new LocRib();
  const r = local('10.244.1.0/26');
  rib.upsert(r);
  const e = entry(rib, '10.244.1.0/26');
  e.dirty = true;
  const t = target(3, exportPeer(ebgp('10.1.0.1', 65001)));
  const plan = planExport([e], [t]);
  assert.deepEqual(announced(plan, 0), [
    {
      family: 'ipv4-unicast',
      prefixes: ['10.244.1.0/26'],
      // RFC 4271 §5.1.2/§5.1.3: our AS prepended, next hop self.
      attrs: { origin: 'igp', asPath: [{ type: 'sequence', asns: [LOCAL_AS] }], nextHop: '192.0.2.1' },
    },
  ]);
  assert.deepEqual(plan.peers[0]?.delta, { 'ipv4-unicast': 1, 'ipv6-unicast': 0 });
  assert.deepEqual(slotsOf(e.out), [3]);
  assert.equal(e.sent, r);
  assert.equal(e.dirty, false);
  assert.deepEqual(plan.prune, []);
});

test('planExport: same best path planned again -> nothing sent (already in Adj-RIB-Out)', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  planExport([e], [t]);
  const again = planExport([e], [t]);
  assert.deepEqual(announced(again, 0), []);
  assert.deepEqual(withdrawn(again, 0), {});
  assert.deepEqual(again.peers[0]?.delta, { 'ipv4-unicast': 0, 'ipv6-unicast': 0 });
});

test('planExport: best path replaced with different exported attributes -> re-announced, count unchanged', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  planExport([e], [t]);
  const r2 = local('10.244.1.0/26', attrs({ med: 50 }));
  rib.upsert(r2);
  const plan = planExport([e], [t]);
  assert.equal(announced(plan, 0).length, 1);
  assert.equal(announced(plan, 0)[0]?.attrs.med, 50, 'a local MED goes to eBGP (RFC 4271 §5.1.4)');
  assert.deepEqual(plan.peers[0]?.delta, { 'ipv4-unicast': 0, 'ipv6-unicast': 0 });
  assert.equal(e.sent, r2);
});

test('planExport: best path replaced, exported attributes equal -> nothing sent', () => {
  // Two routes from different eBGP sources with the same AS path: exported to another eBGP
  // peer both become (our AS + path, next hop self, foreign MED dropped): the same contents.
  const rib = new LocRib();
  const a = ebgp('10.1.0.2', 65002);
  const r1 = learned('10.50.0.0/24', a, attrs({ asPath: [{ type: 'sequence', asns: [65002] }], nextHop: '10.1.0.2' }));
  rib.upsert(r1);
  const e = entry(rib, '10.50.0.0/24');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  assert.equal(announced(planExport([e], [t]), 0).length, 1);
  const r2 = learned(
    '10.50.0.0/24',
    a,
    attrs({ asPath: [{ type: 'sequence', asns: [65002] }], nextHop: '10.1.0.2', med: 7 }),
  );
  rib.upsert(r2);
  assert.equal(e.sent, r1);
  const plan = planExport([e], [t]);
  assert.deepEqual(announced(plan, 0), [], 'MED from another AS is not passed on: no change for the peer');
  assert.equal(e.sent, r2, 'sent still moves to the new best path');
});

test('planExport: last path gone -> withdrawn per family, slot cleared, entry returned for pruning', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  rib.upsert(local('2001:db8:1::/64'));
  const e4 = entry(rib, '10.244.1.0/26');
  const e6 = entry(rib, '2001:db8:1::/64');
  const t = target(1, exportPeer(ebgp('10.1.0.1', 65001)));
  planExport([e4, e6], [t]);
  rib.remove('10.244.1.0/26', undefined);
  rib.remove('2001:db8:1::/64', undefined);
  const plan = planExport([e4, e6], [t]);
  assert.deepEqual(withdrawn(plan, 0), { 'ipv4-unicast': ['10.244.1.0/26'], 'ipv6-unicast': ['2001:db8:1::/64'] });
  assert.deepEqual(plan.peers[0]?.delta, { 'ipv4-unicast': -1, 'ipv6-unicast': -1 });
  assert.equal(hasSlot(e4.out, 1), false);
  assert.deepEqual(plan.prune, [e4, e6]);
  assert.equal(e4.sent, undefined);
});

test('planExport: path gone from a prefix the peer never had -> no withdrawal, pruned', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26', attrs({ communities: [WellKnownCommunity.NoExport] })));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  assert.deepEqual(announced(planExport([e], [t]), 0), [], 'NO_EXPORT is not sent to eBGP (RFC 1997)');
  rib.remove('10.244.1.0/26', undefined);
  const plan = planExport([e], [t]);
  assert.deepEqual(withdrawn(plan, 0), {});
  assert.deepEqual(plan.peers[0]?.delta, { 'ipv4-unicast': 0, 'ipv6-unicast': 0 });
  assert.deepEqual(plan.prune, [e]);
});

test('planExport: new best path that may not be exported -> withdrawn where it was announced', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  planExport([e], [t]);
  rib.upsert(local('10.244.1.0/26', attrs({ communities: [WellKnownCommunity.NoAdvertise] })));
  const plan = planExport([e], [t]);
  assert.deepEqual(withdrawn(plan, 0), { 'ipv4-unicast': ['10.244.1.0/26'] });
  assert.deepEqual(announced(plan, 0), []);
  assert.deepEqual(plan.prune, [], 'the entry still has a path');
  assert.deepEqual(e.out, EMPTY_SLOTS);
});

test('planExport: an entry withdrawn from one peer but held by another is not pruned', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const a = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  const b = target(1, exportPeer(ebgp('10.1.0.2', 65002)));
  planExport([e], [a, b]);
  rib.remove('10.244.1.0/26', undefined);
  b.paused = true;
  const plan = planExport([e], [a, b]);
  assert.deepEqual(withdrawn(plan, 0), { 'ipv4-unicast': ['10.244.1.0/26'] });
  assert.deepEqual(withdrawn(plan, 1), {});
  assert.deepEqual(slotsOf(e.out), [1]);
  assert.deepEqual(plan.prune, []);
});

test('planExport: never back to the source peer; other targets still get it', () => {
  const rib = new LocRib();
  const src = ebgp('10.1.0.2', 65002);
  rib.upsert(
    learned('10.50.0.0/24', src, attrs({ asPath: [{ type: 'sequence', asns: [65002] }], nextHop: '10.1.0.2' })),
  );
  const e = entry(rib, '10.50.0.0/24');
  const back = target(0, exportPeer(src));
  const other = target(1, exportPeer(ebgp('10.1.0.3', 65003)));
  const plan = planExport([e], [back, other]);
  assert.deepEqual(announced(plan, 0), []);
  assert.deepEqual(announced(plan, 1)[0]?.prefixes, ['10.50.0.0/24']);
  assert.deepEqual(slotsOf(e.out), [1]);
});

test('planExport: one group per distinct attribute contents and family; equal contents from distinct objects merge', () => {
  const rib = new LocRib();
  const shared = attrs();
  rib.upsert(local('10.244.1.0/26', shared));
  rib.upsert(local('10.244.2.0/26', shared));
  rib.upsert(local('10.244.3.0/26', attrs())); // equal contents, another object
  rib.upsert(local('10.244.4.0/26', attrs({ med: 9 })));
  rib.upsert(local('2001:db8:1::/64', attrs()));
  const es = ['10.244.1.0/26', '10.244.2.0/26', '10.244.3.0/26', '10.244.4.0/26', '2001:db8:1::/64'].map((p) =>
    entry(rib, p),
  );
  const plan = planExport(es, [target(0, exportPeer(ebgp('10.1.0.1', 65001)))]);
  const groups = announced(plan, 0).map((g) => ({ family: g.family, prefixes: g.prefixes, med: g.attrs.med }));
  assert.deepEqual(groups, [
    { family: 'ipv4-unicast', prefixes: ['10.244.1.0/26', '10.244.2.0/26', '10.244.3.0/26'], med: undefined },
    { family: 'ipv4-unicast', prefixes: ['10.244.4.0/26'], med: 9 },
    { family: 'ipv6-unicast', prefixes: ['2001:db8:1::/64'], med: undefined },
  ]);
  assert.equal(groups.find((g) => g.family === 'ipv6-unicast') !== undefined, true);
  assert.deepEqual(plan.peers[0]?.delta, { 'ipv4-unicast': 4, 'ipv6-unicast': 1 });
  // IPv6 next hop self for the IPv6 group.
  assert.equal(announced(plan, 0)[2]?.attrs.nextHop, '2001:db8::1');
});

test('planExport: per-prefix export filter is applied to each prefix of a shared attribute set', () => {
  // The export cache per (attributes, source, family) may only be used while the filter does
  // not depend on the prefix; here it does, so the second prefix must be filtered on its own.
  const rib = new LocRib();
  const shared = attrs();
  rib.upsert(local('10.244.1.0/26', shared));
  rib.upsert(local('10.99.0.0/24', shared));
  rib.upsert(local('10.244.2.0/26', shared));
  const es = ['10.244.1.0/26', '10.99.0.0/24', '10.244.2.0/26'].map((p) => entry(rib, p));
  const filter = compileFilter({
    rules: [{ action: 'accept', prefixes: [{ prefix: '10.244.0.0/16', le: 32 }] }],
    defaultAction: 'reject',
  });
  const plan = planExport(es, [target(0, exportPeer(ebgp('10.1.0.1', 65001), { exportFilter: filter }))]);
  assert.deepEqual(
    announced(plan, 0).flatMap((g) => g.prefixes),
    ['10.244.1.0/26', '10.244.2.0/26'],
  );
  assert.equal(hasSlot(entry(rib, '10.99.0.0/24').out, 0), false);
});

test('planExport: a filter that rejects everything (always false) sends nothing', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const plan = planExport(
    [entry(rib, '10.244.1.0/26')],
    [
      target(
        0,
        exportPeer(ebgp('10.1.0.1', 65001), { exportFilter: compileFilter({ rules: [], defaultAction: 'reject' }) }),
      ),
    ],
  );
  assert.deepEqual(announced(plan, 0), []);
});

test('planExport: families not negotiated with a target are not sent to it', () => {
  const rib = new LocRib();
  rib.upsert(local('2001:db8:1::/64'));
  const v4only = target(0, exportPeer(ebgp('10.1.0.1', 65001), { families: ['ipv4-unicast'] }));
  const plan = planExport([entry(rib, '2001:db8:1::/64')], [v4only]);
  assert.deepEqual(announced(plan, 0), []);
});

test('planExport: iBGP target gets LOCAL_PREF and next hop self for a local route; peers in target order', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const plan = planExport(
    [e],
    [target(5, exportPeer(ibgp('10.0.0.2'))), target(2, exportPeer(ebgp('10.1.0.1', 65001)))],
  );
  assert.deepEqual(announced(plan, 0)[0]?.attrs, { origin: 'igp', asPath: [], nextHop: '192.0.2.1', localPref: 100 });
  assert.deepEqual(announced(plan, 1)[0]?.attrs.asPath, [{ type: 'sequence', asns: [LOCAL_AS] }]);
  assert.deepEqual(slotsOf(e.out), [2, 5]);
});

// ---------------------------------------------------------------- back-pressure (paused targets)

test('paused target: entry held with the route it holds, not planned; others proceed; unpaused -> diff against held', () => {
  const rib = new LocRib();
  const r1 = local('10.244.1.0/26');
  rib.upsert(r1);
  const e = entry(rib, '10.244.1.0/26');
  const slow = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  const fast = target(1, exportPeer(ebgp('10.1.0.2', 65002)));
  planExport([e], [slow, fast]);
  slow.paused = true;
  const r2 = local('10.244.1.0/26', attrs({ med: 1 }));
  rib.upsert(r2);
  const p1 = planExport([e], [slow, fast]);
  assert.deepEqual(announced(p1, 0), []);
  assert.equal(announced(p1, 1)[0]?.attrs.med, 1);
  assert.equal(slow.held.get(e), r1, 'held: what the slow peer actually has');
  assert.equal(e.sent, r2);
  // Changed again while still paused: the held route stays the one the peer has.
  const r3 = local('10.244.1.0/26', attrs({ med: 2 }));
  rib.upsert(r3);
  planExport([e], [slow, fast]);
  assert.equal(slow.held.get(e), r1);
  // Drained: the entry comes again; the slow peer gets r3 once, as a replacement (count kept).
  slow.paused = false;
  const p3 = planExport([e], [slow, fast]);
  assert.equal(announced(p3, 0)[0]?.attrs.med, 2);
  assert.deepEqual(p3.peers[0]?.delta, { 'ipv4-unicast': 0, 'ipv6-unicast': 0 });
  assert.deepEqual(announced(p3, 1), [], 'the fast peer already has r3');
  assert.equal(slow.held.size, 0);
});

test('paused target: changed and changed back while paused -> nothing sent after the drain', () => {
  const rib = new LocRib();
  const a1 = attrs();
  rib.upsert(local('10.244.1.0/26', a1));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  planExport([e], [t]);
  t.paused = true;
  rib.upsert(local('10.244.1.0/26', attrs({ med: 5 })));
  planExport([e], [t]);
  rib.upsert(local('10.244.1.0/26', attrs())); // back to equal contents
  planExport([e], [t]);
  t.paused = false;
  const plan = planExport([e], [t]);
  assert.deepEqual(announced(plan, 0), []);
  assert.deepEqual(withdrawn(plan, 0), {});
});

test('paused target: announced while paused -> announced after the drain (count +1)', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)), true);
  const p1 = planExport([e], [t]);
  assert.deepEqual(announced(p1, 0), []);
  assert.equal(t.held.has(e), true);
  assert.equal(t.held.get(e), undefined, 'the peer holds nothing for it');
  assert.deepEqual(p1.prune, []);
  t.paused = false;
  const p2 = planExport([e], [t]);
  assert.deepEqual(announced(p2, 0)[0]?.prefixes, ['10.244.1.0/26']);
  assert.deepEqual(p2.peers[0]?.delta, { 'ipv4-unicast': 1, 'ipv6-unicast': 0 });
});

test('paused target: withdrawn while paused -> withdrawal after the drain, then pruned', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)));
  planExport([e], [t]);
  t.paused = true;
  rib.remove('10.244.1.0/26', undefined);
  const p1 = planExport([e], [t]);
  assert.deepEqual(p1.prune, [], 'the paused peer still has the prefix');
  t.paused = false;
  const p2 = planExport([e], [t]);
  assert.deepEqual(withdrawn(p2, 0), { 'ipv4-unicast': ['10.244.1.0/26'] });
  assert.deepEqual(p2.prune, [e]);
});

test('paused target: announced and withdrawn while paused -> nothing at all after the drain', () => {
  const rib = new LocRib();
  rib.upsert(local('10.244.1.0/26'));
  const e = entry(rib, '10.244.1.0/26');
  const t = target(0, exportPeer(ebgp('10.1.0.1', 65001)), true);
  planExport([e], [t]);
  rib.remove('10.244.1.0/26', undefined);
  planExport([e], [t]);
  t.paused = false;
  const plan = planExport([e], [t]);
  assert.deepEqual(announced(plan, 0), []);
  assert.deepEqual(withdrawn(plan, 0), {});
  assert.deepEqual(plan.prune, [e]);
});
