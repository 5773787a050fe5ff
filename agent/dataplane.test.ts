import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from './common/clock.js';
import { silentLogger } from './common/logger.js';
import { Dataplane } from './dataplane.js';
import { type DeviceResult, FakeKernel, type PoolSpec, type TunnelDeviceSpec } from './routing/index.js';
import type { RoutingSnapshot } from './sync/types.js';

/** Device and NAT edges that record calls and can fail on purpose (no kernel touched). */
class FakeDevices {
  calls: TunnelDeviceSpec[][] = [];
  forwarding = 0;
  failNext = false;
  async enableForwarding(): Promise<void> {
    this.forwarding++;
  }
  async apply(specs: readonly TunnelDeviceSpec[]): Promise<DeviceResult[]> {
    this.calls.push([...specs]);
    const fail = this.failNext;
    this.failNext = false;
    return specs.map((s) => ({ device: s.name, ok: !fail, action: fail ? 'failed' : 'created' }));
  }
}
class FakeNat {
  calls: PoolSpec[][] = [];
  async apply(pools: readonly PoolSpec[]): Promise<void> {
    this.calls.push([...pools]);
  }
}

const pool = (over: Partial<PoolSpec> = {}): PoolSpec => ({
  cidr: '10.244.0.0/16',
  ipipMode: 'Never',
  vxlanMode: 'Never',
  natOutgoing: false,
  disabled: false,
  ...over,
});

function snap(over: Partial<RoutingSnapshot> = {}): RoutingSnapshot {
  return {
    self: {
      name: 'a',
      ipv4: '10.99.0.11/24',
      uplink: 'eth0',
      vxlanTunnelAddr: '10.244.0.1',
      vxlanMac: '66:00:00:00:00:0a',
    },
    nodes: [{ name: 'b', ipv4: '10.99.0.12/24', vxlanTunnelAddr: '10.244.1.1', vxlanMac: '66:00:00:00:00:0b' }],
    pools: [pool()],
    blocks: [
      { cidr: '10.244.0.0/26', node: 'a' },
      { cidr: '10.244.1.0/26', node: 'b' },
    ],
    learned: [{ prefix: '10.244.1.0/26', nextHop: '10.99.0.12' }],
    ...over,
  };
}

const clock = new ManualClock();

/** Lets the async update and the reconciler's passes (timers on the manual clock) run to the end. */
async function settle(dp: Dataplane): Promise<void> {
  let done = false;
  const idle = dp.idle().then(() => {
    done = true;
  });
  for (let i = 0; i < 5000 && !done; i++) {
    clock.advance(0);
    await new Promise((r) => setTimeout(r, 1));
  }
  await idle;
}

const readMtu = async () => 1500;

function setup() {
  const kernel = new FakeKernel();
  const devices = new FakeDevices();
  const nat = new FakeNat();
  const dp = new Dataplane({ log: silentLogger, clock, kernel, devices, nat, readMtu });
  return { kernel, devices, nat, dp };
}

test('a snapshot becomes kernel routes: own block blackholed, learned block direct; forwarding once', async () => {
  const { kernel, devices, nat, dp } = setup();
  dp.start();
  assert.equal(dp.notReady(), 'no routing snapshot applied yet');
  dp.update(snap(), true);
  await settle(dp);
  assert.deepEqual(
    [...kernel.routes.values()].map((r) => `${r.type} ${r.dst} ${r.gateway ?? ''} ${r.dev ?? ''}`).sort(),
    ['blackhole 10.244.0.0/26  ', 'unicast 10.244.1.0/26 10.99.0.12 eth0'],
  );
  assert.equal(dp.routesProgrammed(), 2);
  assert.equal(dp.notReady(), undefined);
  assert.equal(devices.forwarding, 1);
  assert.equal(nat.calls.length, 1);
  dp.update(snap(), true);
  await settle(dp);
  assert.equal(devices.forwarding, 1, 'forwarding is set once');
  assert.equal(devices.calls.length, 1, 'unchanged devices are not re-applied');
  await dp.stop();
  assert.equal(kernel.routes.size, 2, 'stop leaves routes in place');
});

test('VXLAN pool: the device is set up before the routes, re-applied after a failure, then ready', async () => {
  const { kernel, devices, dp } = setup();
  dp.start();
  devices.failNext = true;
  dp.update(snap({ pools: [pool({ vxlanMode: 'Always' })] }), true);
  await settle(dp);
  assert.equal(devices.calls.length, 1);
  assert.equal(devices.calls[0]?.[0]?.name, 'petrel.vxlan');
  assert.equal(devices.calls[0]?.[0]?.mtu, 1450);
  assert.match(dp.notReady() ?? '', /tunnel device petrel.vxlan failed/);
  dp.update(snap({ pools: [pool({ vxlanMode: 'Always' })] }), true);
  await settle(dp);
  assert.equal(devices.calls.length, 2, 'a failed device is tried again');
  assert.equal(dp.notReady(), undefined);
  const r = [...kernel.routes.values()].find((x) => x.dst === '10.244.1.0/26');
  assert.deepEqual(r, {
    family: 4,
    dst: '10.244.1.0/26',
    type: 'unicast',
    gateway: '10.244.1.1',
    dev: 'petrel.vxlan',
    onlink: true,
  });
  assert.equal(kernel.neighbours.size, 1);
  assert.equal(kernel.fdb.size, 1);
  assert.equal(dp.status().podMtu, 1450);
  assert.equal(dp.podMtu(), 1450);
  await dp.stop();
});

test('a tunnel device recreated (its routes, neighbours and FDB flushed silently): all back without waiting for the resync', async () => {
  const { kernel, devices, dp } = setup();
  dp.start();
  const vx = snap({ pools: [pool({ vxlanMode: 'Always' })] });
  dp.update(vx, true);
  await settle(dp);
  assert.equal(kernel.routes.size, 2);
  // The device is made again (new parameters: another local address); the kernel drops what was on it.
  for (const [k, r] of kernel.routes) if (r.dev === 'petrel.vxlan') kernel.routes.delete(k);
  kernel.neighbours.clear();
  kernel.fdb.clear();
  dp.update({ ...vx, self: { ...vx.self, ipv4: '10.99.0.21/24' } }, true);
  await settle(dp);
  assert.equal(devices.calls.length, 2, 'the changed device was applied');
  assert.ok(
    [...kernel.routes.values()].some((r) => r.dev === 'petrel.vxlan' && r.dst === '10.244.1.0/26'),
    'the route via the device is back',
  );
  assert.equal(kernel.neighbours.size, 1);
  assert.equal(kernel.fdb.size, 1);
  await dp.stop();
});

test('an incomplete snapshot keeps routes it lacks; a complete one removes them', async () => {
  const { kernel, dp } = setup();
  dp.start();
  dp.update(snap(), true);
  await settle(dp);
  const without = snap({ blocks: [{ cidr: '10.244.0.0/26', node: 'a' }], learned: [] });
  // A second agent process adopting the same kernel with an incomplete view.
  const kernel2 = kernel;
  const dp2 = new Dataplane({
    log: silentLogger,
    clock,
    kernel: kernel2,
    devices: new FakeDevices(),
    nat: new FakeNat(),
    readMtu,
  });
  await dp.stop();
  dp2.start();
  dp2.update(without, false);
  await settle(dp2);
  assert.equal(kernel.routes.size, 2, 'not re-learned yet: kept');
  dp2.update(without, true);
  await settle(dp2);
  assert.deepEqual([...kernel.routes.keys()], ['4|10.244.0.0/26']);
  await dp2.stop();
});

test('a burst of snapshots applies the newest; the kernel ends in its state', async () => {
  const { kernel, devices, dp } = setup();
  dp.start();
  for (let i = 1; i <= 20; i++) {
    dp.update(
      snap({
        blocks: [
          { cidr: '10.244.0.0/26', node: 'a' },
          { cidr: `10.244.${i}.0/26`, node: 'b' },
        ],
        learned: [{ prefix: `10.244.${i}.0/26`, nextHop: '10.99.0.12' }],
      }),
      true,
    );
  }
  await settle(dp);
  assert.deepEqual([...kernel.routes.keys()].sort(), ['4|10.244.0.0/26', '4|10.244.20.0/26']);
  assert.ok(devices.forwarding === 1);
  await dp.stop();
});

test('Loc-RIB changes go to the kernel route by route; one that arrives during device set-up is kept by the new plan', async () => {
  const { kernel, devices, dp } = setup();
  dp.start();
  const noLearned = snap({ learned: [] });
  delete noLearned.learned; // the agent's snapshots carry no Loc-RIB: changeLearned does
  dp.changeLearned([{ prefix: '10.244.1.0/26', nextHop: '10.99.0.12' }]); // before any plan: waits
  dp.update(noLearned, true);
  await settle(dp);
  assert.deepEqual([...kernel.routes.keys()].sort(), ['4|10.244.0.0/26', '4|10.244.1.0/26']);
  const passes = dp.status().routes.passes;
  dp.changeLearned([{ prefix: '10.244.2.0/26', nextHop: '10.99.0.12' }, { prefix: '10.244.1.0/26' }]);
  await settle(dp);
  assert.deepEqual([...kernel.routes.keys()].sort(), ['4|10.244.0.0/26', '4|10.244.2.0/26']);
  assert.equal(dp.status().routes.passes, passes + 1, 'one pass for the batch');
  // A VXLAN pool: devices are set up (slowly) before the routes; a change in between must survive.
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const apply = devices.apply.bind(devices);
  devices.apply = async (specs) => {
    await gate;
    return apply(specs);
  };
  dp.update({ ...noLearned, pools: [pool({ vxlanMode: 'Always' })] }, true);
  for (let i = 0; i < 20; i++) {
    clock.advance(0);
    await new Promise((r) => setTimeout(r, 1));
  }
  dp.changeLearned([{ prefix: '10.244.3.0/26', nextHop: '10.99.0.12' }]);
  release();
  await settle(dp);
  assert.deepEqual([...kernel.routes.values()].map((r) => `${r.dst} ${r.gateway ?? ''} ${r.dev ?? ''}`).sort(), [
    '10.244.0.0/26  ',
    '10.244.1.0/26 10.244.1.1 petrel.vxlan', // b's block from IPAM
    '10.244.2.0/26 10.244.1.1 petrel.vxlan',
    '10.244.3.0/26 10.244.1.1 petrel.vxlan',
  ]);
  await dp.stop();
});

test("replaceLearned re-plans with the new table, not the last snapshot's own learned routes", async () => {
  const { kernel, dp } = setup();
  dp.start();
  dp.update(snap(), true); // learned: 10.244.1.0/26
  await settle(dp);
  dp.replaceLearned([{ prefix: '10.244.7.0/26', nextHop: '10.99.0.12' }]);
  await settle(dp);
  assert.deepEqual([...kernel.routes.keys()].sort(), ['4|10.244.0.0/26', '4|10.244.7.0/26']);
  await dp.stop();
});
