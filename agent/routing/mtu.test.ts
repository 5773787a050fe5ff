import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Encap, planMtu } from './mtu.js';

const rows: { uplink: number; encaps: Encap[]; ipip: number; vxlan: number; vxlan6: number; pod: number }[] = [
  { uplink: 1500, encaps: [], ipip: 1480, vxlan: 1450, vxlan6: 1430, pod: 1500 },
  { uplink: 1500, encaps: ['ipip'], ipip: 1480, vxlan: 1450, vxlan6: 1430, pod: 1480 },
  { uplink: 1500, encaps: ['vxlan4'], ipip: 1480, vxlan: 1450, vxlan6: 1430, pod: 1450 },
  { uplink: 1500, encaps: ['vxlan6'], ipip: 1480, vxlan: 1450, vxlan6: 1430, pod: 1430 },
  { uplink: 1500, encaps: ['ipip', 'vxlan6'], ipip: 1480, vxlan: 1450, vxlan6: 1430, pod: 1430 },
  { uplink: 1460, encaps: ['ipip'], ipip: 1440, vxlan: 1410, vxlan6: 1390, pod: 1440 }, // GCE
  { uplink: 9001, encaps: ['ipip'], ipip: 8981, vxlan: 8951, vxlan6: 8931, pod: 8981 }, // AWS jumbo
  { uplink: 1450, encaps: ['ipip', 'vxlan4'], ipip: 1430, vxlan: 1400, vxlan6: 1380, pod: 1400 }, // OpenStack
];
for (const r of rows) {
  test(`uplink ${r.uplink} with [${r.encaps.join(',')}] -> pod ${r.pod}`, () => {
    const m = planMtu(r.uplink, r.encaps);
    assert.deepEqual(m, {
      uplinkMtu: r.uplink,
      ipipMtu: r.ipip,
      vxlanMtu: r.vxlan,
      vxlan6Mtu: r.vxlan6,
      podMtu: r.pod,
    });
  });
}
test('an uplink MTU too small for any tunnel or not an integer is refused', () => {
  assert.throws(() => planMtu(100, ['ipip']), RangeError);
  assert.throws(() => planMtu(1500.5, []), RangeError);
  assert.throws(() => planMtu(70000, []), RangeError);
});
