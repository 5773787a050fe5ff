import assert from 'node:assert/strict';
import { test } from 'node:test';
import { community, WellKnownCommunity } from '../codec/index.js';
import { AdjRibIn, importCheck } from './adj-rib-in.js';
import { type ExportPeer, exportRoute } from './adj-rib-out.js';
import {
  highestLocalPref,
  lowestMed,
  lowestOrigin,
  lowestPeerAddress,
  lowestRouterId,
  preferEbgp,
  preferLocal,
  selectBest,
  shortestAsPath,
  shortestClusterList,
} from './best-path.js';
import { compileFilter, FilterConfigError } from './filter.js';
import { announceUpdate, ribOpsFromUpdate, toPrefix, withdrawUpdate } from './from-update.js';
import { LocRib, nextHopsOf } from './loc-rib.js';
import { canonicalPrefix, parsePrefix, prefixKey } from './prefix.js';
import type { PeerInfo, Route, RouteAttrs } from './types.js';

const ME = { asn: 64512, routerId: '10.0.0.1', clusterId: '10.0.0.1' };
const ibgp = (address: string, bgpId = address, rrClient = false): PeerInfo => ({
  address,
  asn: 64512,
  bgpId,
  isIbgp: true,
  rrClient,
});
const ebgp = (address: string, asn: number, bgpId = address): PeerInfo => ({
  address,
  asn,
  bgpId,
  isIbgp: false,
  rrClient: false,
});
const attrs = (o: Partial<RouteAttrs> = {}): RouteAttrs => ({ origin: 'igp', asPath: [], nextHop: '10.0.0.9', ...o });
const route = (peer: PeerInfo | undefined, o: Partial<RouteAttrs> = {}, prefix = '10.244.1.0/26'): Route => {
  const r: Route = { prefix, family: prefix.includes(':') ? 'ipv6-unicast' : 'ipv4-unicast', attrs: attrs(o) };
  if (peer) r.peer = peer;
  return r;
};
const seq = (...asns: number[]) => [{ type: 'sequence' as const, asns }];

// ---------------------------------------------------------------- best path, one test per step

test('step: locally originated routes win', () => {
  const l = route(undefined, { nextHop: '' });
  assert.deepEqual(preferLocal.select([route(ibgp('10.0.0.2')), l]), [l]);
});
test('step a: highest LOCAL_PREF (missing = 100)', () => {
  const a = route(ibgp('10.0.0.2'), { localPref: 200 });
  const b = route(ibgp('10.0.0.3'));
  assert.deepEqual(highestLocalPref.select([b, a]), [a]);
});
test('step a: shortest AS_PATH, AS_SET counts 1', () => {
  const a = route(ebgp('10.1.0.1', 65001), {
    asPath: [
      { type: 'sequence', asns: [65001] },
      { type: 'set', asns: [1, 2, 3] },
    ],
  });
  const b = route(ebgp('10.1.0.2', 65002), { asPath: seq(65002, 65003, 65004) });
  assert.deepEqual(shortestAsPath.select([b, a]), [a]);
});
test('step b: lowest ORIGIN', () => {
  const a = route(ibgp('10.0.0.2'), { origin: 'egp' });
  const b = route(ibgp('10.0.0.3'), { origin: 'incomplete' });
  const c = route(ibgp('10.0.0.4'), { origin: 'igp' });
  assert.deepEqual(lowestOrigin.select([a, b, c]), [c]);
});
test('step c: MED compared only within the same neighbour AS (missing MED = 0)', () => {
  const a1 = route(ebgp('10.1.0.1', 65001), { asPath: seq(65001), med: 50 });
  const a2 = route(ebgp('10.1.0.2', 65001), { asPath: seq(65001), med: 10 });
  const b = route(ebgp('10.1.0.3', 65002), { asPath: seq(65002), med: 500 });
  const c = route(ebgp('10.1.0.4', 65003), { asPath: seq(65003) });
  assert.deepEqual(lowestMed.select([a1, a2, b, c]), [a2, b, c]);
});
test('step d: eBGP over iBGP', () => {
  const a = route(ibgp('10.0.0.2'));
  const b = route(ebgp('10.1.0.1', 65001), { asPath: seq(65001) });
  assert.deepEqual(preferEbgp.select([a, b]), [b]);
});
test('step f: lowest BGP identifier, ORIGINATOR_ID standing in for reflected routes', () => {
  const a = route(ibgp('10.0.0.2', '10.0.0.2'), { originatorId: '10.0.0.50' });
  const b = route(ibgp('10.0.0.3', '10.0.0.30'));
  assert.deepEqual(lowestRouterId.select([a, b]), [b]);
});
test('RFC 4456 §9: shorter CLUSTER_LIST', () => {
  const a = route(ibgp('10.0.0.2'), { clusterList: ['1.1.1.1', '2.2.2.2'] });
  const b = route(ibgp('10.0.0.3'), { clusterList: ['3.3.3.3'] });
  assert.deepEqual(shortestClusterList.select([a, b]), [b]);
});
test('step g: lowest peer address (numeric)', () => {
  const a = route(ibgp('10.0.0.10'));
  const b = route(ibgp('10.0.0.9'));
  assert.deepEqual(lowestPeerAddress.select([a, b]), [b]);
});
test('selectBest: full process and ECMP group of equal eBGP paths', () => {
  const a = route(ebgp('10.1.0.2', 65001, '2.2.2.2'), { asPath: seq(65001), nextHop: '10.1.0.2' });
  const b = route(ebgp('10.1.0.1', 65002, '1.1.1.1'), { asPath: seq(65002), nextHop: '10.1.0.1' });
  const c = route(ibgp('10.0.0.2'), { nextHop: '10.0.0.2', asPath: seq(65003) });
  const s = selectBest([a, b, c], true);
  assert.deepEqual(s, [b, a]);
  assert.deepEqual(nextHopsOf(s!), ['10.1.0.1', '10.1.0.2']);
  assert.equal(selectBest([a, b, c], false), b);
});

// ---------------------------------------------------------------- Loc-RIB

test('LocRib reports add, replace and remove of the selection', () => {
  const rib = new LocRib();
  const a = route(ibgp('10.0.0.2'), { nextHop: '10.0.0.2' });
  assert.equal(rib.upsert(a)?.kind, 'add');
  const better = route(ibgp('10.0.0.3'), { nextHop: '10.0.0.3', localPref: 300 });
  const ch = rib.upsert(better);
  assert.equal(ch?.kind, 'replace');
  assert.equal(ch?.selection, better);
  assert.equal(rib.remove('10.244.1.0/26', '10.0.0.2'), undefined, 'losing path removed: no change');
  assert.equal(rib.remove('10.244.1.0/26', '10.0.0.3')?.kind, 'remove');
  assert.equal(rib.size, 0);
});

// ---------------------------------------------------------------- Adj-RIB-In

test('import: eBGP AS loop, ORIGINATOR_ID and CLUSTER_LIST loops rejected (RFC 4456 §8)', () => {
  assert.equal(importCheck(attrs({ asPath: seq(65001, 64512) }), ebgp('10.1.0.1', 65001), ME), 'as-loop');
  assert.equal(importCheck(attrs({ originatorId: '10.0.0.1' }), ibgp('10.0.0.2'), ME), 'originator-id');
  assert.equal(importCheck(attrs({ clusterList: ['9.9.9.9', '10.0.0.1'] }), ibgp('10.0.0.2'), ME), 'cluster-loop');
  const fromEbgp = importCheck(attrs({ asPath: seq(65001), localPref: 500 }), ebgp('10.1.0.1', 65001), ME);
  assert.equal(typeof fromEbgp === 'object' && fromEbgp.localPref, undefined);
});

test('AdjRibIn counts received vs accepted, import filter, stale sweep', () => {
  const f = compileFilter({ rules: [{ action: 'reject', prefixes: [{ prefix: '10.99.0.0/16', le: 32 }] }] });
  const rin = new AdjRibIn(ibgp('10.0.0.2'), ME, f);
  assert.ok(rin.update('10.244.1.0/26', 'ipv4-unicast', attrs()).route);
  assert.equal(rin.update('10.99.1.0/24', 'ipv4-unicast', attrs()).reject, 'filtered');
  assert.deepEqual([rin.received, rin.accepted], [2, 1]);
  assert.deepEqual(rin.byFamily.get('ipv4-unicast'), { received: 2, accepted: 1 });
  rin.markStale();
  rin.update('10.244.2.0/26', 'ipv4-unicast', attrs());
  const swept = rin.sweepStale('ipv4-unicast');
  assert.deepEqual(
    swept.map((r) => r.prefix),
    ['10.244.1.0/26'],
  );
  assert.deepEqual([rin.received, rin.accepted], [2, 1]);
  assert.equal(rin.withdraw('10.244.2.0/26', 'ipv4-unicast')?.prefix, '10.244.2.0/26');
  assert.equal(rin.accepted, 0);
});

// ---------------------------------------------------------------- export

const filterAll = compileFilter(undefined);
const exportTo = (info: PeerInfo, o: Partial<ExportPeer> = {}): ExportPeer => ({
  info,
  localAs: 64512,
  families: ['ipv4-unicast', 'ipv6-unicast'],
  nextHopSelf: false,
  selfNextHop: { 'ipv4-unicast': '10.0.0.1', 'ipv6-unicast': 'fd99::1' },
  routeReflector: false,
  clusterId: '10.0.0.1',
  exportFilter: filterAll,
  ...o,
});

test('export: local route to iBGP gets our next hop and LOCAL_PREF 100', () => {
  const out = exportRoute(route(undefined, { nextHop: '' }), exportTo(ibgp('10.0.0.2')));
  assert.deepEqual(out, { origin: 'igp', asPath: [], nextHop: '10.0.0.1', localPref: 100 });
  const v6 = exportRoute(route(undefined, { nextHop: '' }, 'fd00:1::/64'), exportTo(ibgp('10.0.0.2')));
  assert.equal(v6?.nextHop, 'fd99::1');
});
test('export: eBGP prepends our AS, sets next hop self, drops LOCAL_PREF and foreign MED', () => {
  const r = route(ibgp('10.0.0.2'), { localPref: 300, med: 5, asPath: seq(65009) });
  const out = exportRoute(r, exportTo(ebgp('10.1.0.1', 65001)));
  assert.deepEqual(out, { origin: 'igp', asPath: seq(64512, 65009), nextHop: '10.0.0.1' });
});
test('export: iBGP split horizon without route reflection', () => {
  assert.equal(exportRoute(route(ibgp('10.0.0.2')), exportTo(ibgp('10.0.0.3'))), undefined);
  assert.ok(exportRoute(route(ebgp('10.1.0.1', 65001), { asPath: seq(65001) }), exportTo(ibgp('10.0.0.3'))));
});
test('export: never back to the source peer', () => {
  assert.equal(exportRoute(route(ebgp('10.1.0.1', 65001)), exportTo(ebgp('10.1.0.1', 65001))), undefined);
});
test('route reflector: client routes to everyone, non-client routes to clients only, ORIGINATOR_ID + CLUSTER_LIST', () => {
  const rr = { routeReflector: true };
  const fromClient = route(ibgp('10.0.0.2', '2.2.2.2', true), { clusterList: ['7.7.7.7'] });
  const toNonClient = exportRoute(fromClient, exportTo(ibgp('10.0.0.3'), rr));
  assert.equal(toNonClient?.originatorId, '2.2.2.2');
  assert.deepEqual(toNonClient?.clusterList, ['10.0.0.1', '7.7.7.7']);
  assert.equal(toNonClient?.nextHop, '10.0.0.9', 'reflection keeps the next hop');
  const fromNonClient = route(ibgp('10.0.0.3'));
  assert.equal(exportRoute(fromNonClient, exportTo(ibgp('10.0.0.4'), rr)), undefined);
  assert.ok(exportRoute(fromNonClient, exportTo(ibgp('10.0.0.4', '10.0.0.4', true), rr)));
  // not back to the originator
  assert.equal(exportRoute(fromClient, exportTo(ibgp('10.0.0.5', '2.2.2.2', true), rr)), undefined);
});
test('export: NO_EXPORT not to eBGP, NO_ADVERTISE to nobody', () => {
  const ne = route(ibgp('10.0.0.2', '10.0.0.2'), { communities: [WellKnownCommunity.NoExport] });
  assert.equal(exportRoute(ne, exportTo(ebgp('10.1.0.1', 65001))), undefined);
  const na = route(undefined, { nextHop: '', communities: [WellKnownCommunity.NoAdvertise] });
  assert.equal(exportRoute(na, exportTo(ibgp('10.0.0.2'))), undefined);
});
test('export: next-hop-self on iBGP, families limited to the negotiated ones', () => {
  const r = route(ebgp('10.1.0.1', 65001), { asPath: seq(65001), nextHop: '10.1.0.1' });
  assert.equal(exportRoute(r, exportTo(ibgp('10.0.0.2'), { nextHopSelf: true }))?.nextHop, '10.0.0.1');
  assert.equal(exportRoute(r, exportTo(ibgp('10.0.0.2'), { families: ['ipv6-unicast'] })), undefined);
});

// ---------------------------------------------------------------- filters, prefixes, UPDATE conversion

test('filter: exact prefix, ge/le ranges, communities, default action', () => {
  const f = compileFilter({
    rules: [
      { action: 'reject', communities: ['65000:666'] },
      { action: 'accept', prefixes: [{ prefix: '10.244.0.0/16', ge: 24, le: 28 }] },
      { action: 'accept', prefixes: [{ prefix: '192.168.0.0/16' }] },
    ],
    defaultAction: 'reject',
  });
  const p = (s: string) => parsePrefix(s)!;
  assert.equal(f(p('10.244.1.0/26'), attrs()), true);
  assert.equal(f(p('10.244.1.0/30'), attrs()), false);
  assert.equal(f(p('192.168.0.0/16'), attrs()), true);
  assert.equal(f(p('192.168.1.0/24'), attrs()), false);
  assert.equal(f(p('10.244.1.0/26'), attrs({ communities: [community(65000, 666)] })), false);
  assert.throws(
    () => compileFilter({ rules: [{ action: 'accept', prefixes: [{ prefix: 'nope' }] }] }),
    FilterConfigError,
  );
});

test('prefixes are canonicalised (host bits cleared, RFC 5952)', () => {
  assert.equal(canonicalPrefix('10.244.1.7/26'), '10.244.1.0/26');
  assert.equal(canonicalPrefix('FD00:0010:0244:0001:0:0:0:1/122'), 'fd00:10:244:1::/122');
  assert.equal(canonicalPrefix('10.1.1.1/33'), undefined);
});

test('UPDATE -> RIB ops: classic IPv4, MP IPv6, AS4_PATH merge, End-of-RIB', () => {
  const v4 = announceUpdate('ipv4-unicast', attrs({ asPath: seq(4200000001) }), ['10.0.1.0/24']);
  const ops = ribOpsFromUpdate(v4, true, ['ipv4-unicast']);
  assert.deepEqual(ops.announce, [{ family: 'ipv4-unicast', prefixes: ['10.0.1.0/24'] }]);
  assert.equal(ops.attrs['ipv4-unicast']?.nextHop, '10.0.0.9');
  const v6 = announceUpdate('ipv6-unicast', attrs({ nextHop: 'fd99::2' }), ['fd00:1::/64']);
  assert.equal(v6.attrs.mpReach?.nextHop, 'fd99::2');
  assert.deepEqual(ribOpsFromUpdate(v6, true, ['ipv4-unicast']).announce, [], 'family not negotiated');
  assert.deepEqual(ribOpsFromUpdate(withdrawUpdate('ipv6-unicast', ['fd00:1::/64']), true, ['ipv6-unicast']).withdraw, [
    { family: 'ipv6-unicast', prefixes: ['fd00:1::/64'] },
  ]);
  const twoOctet = { ...v4, attrs: { ...v4.attrs, asPath: seq(23456), as4Path: seq(4200000001) } };
  assert.deepEqual(ribOpsFromUpdate(twoOctet, false, ['ipv4-unicast']).attrs['ipv4-unicast']?.asPath, seq(4200000001));
  assert.equal(
    ribOpsFromUpdate({ type: 'update', withdrawn: [], attrs: {}, nlri: [] }, true, []).endOfRib,
    'ipv4-unicast',
  );
});

test('prefixKey: the canonical text of decoded prefixes, every length form', () => {
  assert.equal(prefixKey({ prefix: '10.244.1.0', len: 26 }), '10.244.1.0/26');
  assert.equal(prefixKey({ prefix: '0.0.0.0', len: 0 }), '0.0.0.0/0');
  assert.equal(prefixKey({ prefix: '255.255.255.255', len: 32 }), '255.255.255.255/32');
  assert.equal(prefixKey({ prefix: 'fd00:10:244:1::', len: 122 }), 'fd00:10:244:1::/122');
  assert.equal(prefixKey({ prefix: '2001:db8::', len: 100 }), '2001:db8::/100');
  const longest = '2001:db8:1234:5678:9abc:def0:1234:5678';
  assert.equal(prefixKey({ prefix: longest, len: 128 }), `${longest}/128`);
});

test('toPrefix: IPv4 carries its address as a number, IPv6 only text', () => {
  assert.deepEqual(toPrefix('10.244.1.0/26'), { prefix: '10.244.1.0', len: 26, addr4: 0x0af40100 });
  assert.deepEqual(toPrefix('255.255.255.255/32'), { prefix: '255.255.255.255', len: 32, addr4: 0xffffffff });
  assert.deepEqual(toPrefix('0.0.0.0/0'), { prefix: '0.0.0.0', len: 0, addr4: 0 });
  assert.deepEqual(toPrefix('fd00:10:244:1::/122'), { prefix: 'fd00:10:244:1::', len: 122 });
});
