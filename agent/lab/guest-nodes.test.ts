import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { execScript, parseProbeOutput, probeScript, sq } from './guest-nodes.js';
import type { PodState } from './state.js';

const pod = (name: string): PodState => ({
  name,
  node: 'node-1',
  netns: `plab-x-${name}`,
  containerId: 'c',
  ip: '10.244.0.1',
  ip6: '',
  assignIpv4: true,
  assignIpv6: false,
});

test('sq quotes anything for sh, quotes included', () => {
  for (const v of ["it's", 'a b', '$(rm -rf /)', '', "'", 'x"y']) {
    assert.equal(execFileSync('sh', ['-c', `printf %s ${sq(v)}`], { encoding: 'utf8' }), v);
  }
});

test('execScript: exports the environment, runs argv as given (no word splitting), in the pod netns when asked', () => {
  const s = execScript(['printf', '%s|', 'a b', "c'd"], { X: "1 '2'" });
  assert.equal(execFileSync('sh', ['-c', s], { encoding: 'utf8' }), "a b|c'd|");
  assert.match(execScript(['true'], {}, 'plab-x-pod-1-1'), /exec ip netns exec 'plab-x-pod-1-1' 'true'/);
  assert.throws(() => execScript([], {}), /CMD/);
});

test('probeScript reports one @@POD line per source with targets; parseProbeOutput reads them back', () => {
  const s = probeScript('node', 'JS', 500, [
    { pod: pod('pod-1-1'), targets: ['10.244.0.2:7777'] },
    { pod: pod('pod-1-2'), targets: [] },
  ]);
  assert.match(
    s,
    /ip netns exec 'plab-x-pod-1-1' 'node' -e "\$\(cat \/tmp\/petrel-lab-connect.js\)" 500 '10.244.0.2:7777'/,
  );
  assert.doesNotMatch(s, /pod-1-2/, 'a source without targets runs nothing');
  const m = parseProbeOutput('noise\n@@pod-1-1 [{"t":"a","out":"pod-2-1"}]\n@@pod-1-3 []\n');
  assert.deepEqual([...m.keys()], ['pod-1-1', 'pod-1-3']);
  assert.equal(m.get('pod-1-1'), '[{"t":"a","out":"pod-2-1"}]');
});
