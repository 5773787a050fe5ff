import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KernelError } from './kernel.js';
import { classifyError, parseMonitorLine, renderChange, routeFromJson } from './kernel-iproute2.js';

test('changes render as ip/bridge batch lines with proto 80', () => {
  const r = (route: object, op: 'add' | 'replace' | 'delete' = 'add') =>
    renderChange({ op, obj: { type: 'route', route: route as never } });
  assert.deepEqual(
    r({ family: 4, dst: '10.0.1.0/26', type: 'unicast', gateway: '10.0.0.2', dev: 'tunl0', onlink: true }),
    {
      tool: 'ip',
      line: 'route add 10.0.1.0/26 via 10.0.0.2 dev tunl0 onlink proto 80',
    },
  );
  assert.equal(
    r({ family: 6, dst: 'fd00::/122', type: 'blackhole' }, 'replace').line,
    'route replace blackhole fd00::/122 proto 80',
  );
  assert.equal(
    r({ family: 4, dst: '10.0.1.0/26', type: 'unicast', gateway: '10.0.0.2', dev: 'eth0' }, 'delete').line,
    'route del 10.0.1.0/26 proto 80',
  );
  assert.equal(
    renderChange({
      op: 'add',
      obj: { type: 'neigh', neigh: { dev: 'petrel.vxlan', ip: '10.0.9.1', mac: '66:00:00:00:00:01' } },
    }).line,
    'neigh replace 10.0.9.1 lladdr 66:00:00:00:00:01 dev petrel.vxlan nud permanent',
  );
  assert.deepEqual(
    renderChange({
      op: 'delete',
      obj: { type: 'fdb', fdb: { dev: 'petrel.vxlan', mac: '66:00:00:00:00:01', dst: '192.168.1.2' } },
    }),
    { tool: 'bridge', line: 'fdb del 66:00:00:00:00:01 dev petrel.vxlan dst 192.168.1.2 self permanent' },
  );
});

test('a value that could inject a second batch command is refused', () => {
  assert.throws(
    () =>
      renderChange({
        op: 'add',
        obj: { type: 'route', route: { family: 4, dst: '10.0.0.0/24\nroute flush all', type: 'blackhole' } },
      }),
    (e: unknown) => e instanceof KernelError && e.kind === 'other',
  );
  assert.throws(
    () =>
      renderChange({
        op: 'add',
        obj: { type: 'route', route: { family: 4, dst: '10.0.0.0/24', type: 'unicast', dev: 'eth0 proto 12' } },
      }),
    KernelError,
  );
});

test('kernel messages are classified once', () => {
  assert.equal(classifyError('RTNETLINK answers: No such process'), 'not-found');
  assert.equal(classifyError('RTNETLINK answers: File exists'), 'exists');
  assert.equal(classifyError('Cannot find device "tunl0"'), 'iface-down');
  assert.equal(classifyError('Error: Nexthop has invalid gateway.'), 'iface-down');
  assert.equal(classifyError('RTNETLINK answers: Network is down'), 'iface-down');
  assert.equal(classifyError('RTNETLINK answers: No buffer space available'), 'transient');
  assert.equal(classifyError('Error: inet prefix is expected rather than "x".'), 'other');
});

test('ip -json routes are canonicalised: /32 added, blackhole without dev, onlink flag', () => {
  assert.deepEqual(routeFromJson(4, { dst: '10.4.0.5', dev: 'd0', flags: ['linkdown'] }), {
    family: 4,
    dst: '10.4.0.5/32',
    type: 'unicast',
    dev: 'd0',
  });
  assert.deepEqual(routeFromJson(6, { type: 'blackhole', dst: 'fd00:2::/122', dev: 'lo', flags: [] }), {
    family: 6,
    dst: 'fd00:2::/122',
    type: 'blackhole',
  });
  assert.deepEqual(
    routeFromJson(4, { dst: '10.1.0.0/26', gateway: '10.9.0.2', dev: 'd0', flags: ['onlink', 'linkdown'] }),
    {
      family: 4,
      dst: '10.1.0.0/26',
      type: 'unicast',
      gateway: '10.9.0.2',
      dev: 'd0',
      onlink: true,
    },
  );
});

test('ip monitor route lines become route events (real lines from iproute2 6.1)', () => {
  assert.deepEqual(parseMonitorLine('Deleted blackhole 10.2.0.0/26 proto 80 '), {
    type: 'route',
    deleted: true,
    ours: true,
    route: { family: 4, dst: '10.2.0.0/26', type: 'blackhole' },
  });
  assert.deepEqual(parseMonitorLine('10.1.0.0/26 via 10.9.0.3 dev d0 proto 80 onlink linkdown '), {
    type: 'route',
    deleted: false,
    ours: true,
    route: { family: 4, dst: '10.1.0.0/26', type: 'unicast', gateway: '10.9.0.3', dev: 'd0', onlink: true },
  });
  assert.deepEqual(parseMonitorLine('Deleted blackhole fd00:2::/122 dev lo proto 80 metric 1024 pref medium')?.route, {
    family: 6,
    dst: 'fd00:2::/122',
    type: 'blackhole',
  });
  assert.equal(parseMonitorLine('10.7.0.0/24 dev d0 proto boot scope link')?.ours, false);
  assert.equal(parseMonitorLine('local fe80::1 dev petrel.vxlan6 table local proto kernel metric 0 pref medium'), null);
  assert.equal(parseMonitorLine('broadcast 10.9.0.255 dev d0 table local proto kernel scope link src 10.9.0.1'), null);
  assert.equal(parseMonitorLine('\tnexthop via 10.0.0.1 dev eth0 weight 1'), null);
});
