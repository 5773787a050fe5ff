/**
 * VM harness smoke test: three qemu guests on the stock Debian kernel boot in parallel on a
 * bridge in a private namespace; each has the ipip module (tunl0 appears on modprobe, which the
 * host kernel cannot do), node1 reaches node2 and node3 over the bridge, outputs and exit codes
 * come back per guest, a failing command's code is reported as such, and nothing is left after.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import { assertRigGone, type Rig, startGuests, TEST_GUEST_MEM_MB } from '../../helpers/vm.js';

let rig: Rig | undefined;
after(async () => {
  await rig?.destroy();
});

const COMMAND = `#!/bin/sh
. /vm/lib.sh
echo "node=$PETREL_VM_NODE ip=$PETREL_VM_CIDR kernel=$(uname -r)"
modprobe ipip && ip -d -o link show tunl0 | grep -o 'ipip any remote any' | sed 's/^/tunl0: /'
ip -o -4 addr show dev eth0 | awk '{print "eth0:", $4}'
vm_barrier up 120 || exit 10
if [ "$PETREL_VM_INDEX" = 1 ]; then
  for k in 2 3; do
    ip=$(vm_node_ip $k)
    if ping -c 2 -W 5 "$ip" >/tmp/ping 2>&1; then echo "reach node$k $ip: ok"; else echo "reach node$k $ip: FAILED"; cat /tmp/ping; fi
  done
fi
vm_barrier done 120 || exit 11
[ "$PETREL_VM_INDEX" = 3 ] && exit 3
exit 0
`;

test('3 qemu guests: ipip module, node1 reaches node2/node3 over the bridge, per-guest results, nothing left', {
  skip: needs('root', 'netns', 'qemu'),
  timeout: 300_000,
}, async () => {
  const t0 = performance.now();
  rig = await startGuests({ n: 3, bridgeCidr: '10.99.0.1/24', memMb: TEST_GUEST_MEM_MB, command: COMMAND });
  const bootMs = rig.bootMs;
  const results = await rig.wait(240_000);
  const total = performance.now() - t0;
  console.error(`vm smoke: slowest boot ${(bootMs / 1000).toFixed(1)} s, whole run ${(total / 1000).toFixed(1)} s`);
  const out = (k: number) => results[k - 1]!.output;
  for (const k of [1, 2, 3]) {
    assert.match(out(k), new RegExp(`node=node${k} ip=10\\.99\\.0\\.1${k}/24 kernel=6\\.`), out(k));
    assert.match(out(k), /tunl0: ipip any remote any/, `node${k} has no ipip tunl0:\n${out(k)}`);
    assert.match(out(k), new RegExp(`eth0: 10\\.99\\.0\\.1${k}/24`), out(k));
  }
  assert.match(out(1), /reach node2 10\.99\.0\.12: ok/, out(1));
  assert.match(out(1), /reach node3 10\.99\.0\.13: ok/, out(1));
  assert.deepEqual(
    results.map((r) => r.rc),
    [0, 0, 3],
    'node3 exits 3 on purpose: its code must come back as 3',
  );
  const done = rig;
  await done.destroy();
  assertRigGone(done, { netnsOwned: true });
});
