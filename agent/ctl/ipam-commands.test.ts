import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IpamError } from '../../ipam-etcd/index.js';
import { table } from './common.js';
import { parseLiveOwners, renderUsage } from './ipam-commands.js';

test('live owners: JSON with pods and nodes, or one namespace/pod per line', () => {
  const j = parseLiveOwners('{"pods": ["a/b"], "nodes": ["n1"]}', 'f');
  assert.deepEqual([...j.pods], ['a/b']);
  assert.deepEqual([...(j.nodes ?? [])], ['n1']);
  const t = parseLiveOwners('# live pods\nns1/p1\n\nns2/p2\n', 'f');
  assert.deepEqual([...t.pods], ['ns1/p1', 'ns2/p2']);
  assert.equal(t.nodes, undefined, 'no node list: nodes are not judged');
});

test('live owners: malformed input is one invalid error naming the file and line', () => {
  for (const [text, re] of [
    ['{"pods": "x"}', /f: "pods" must be an array/],
    ['{"pods": [', /f: not valid JSON/],
    ['ns/p\njust-a-name', /f:2: expected namespace\/pod/],
  ] as const) {
    assert.throws(
      () => parseLiveOwners(text, 'f'),
      (e: unknown) => e instanceof IpamError && e.kind === 'invalid' && re.test(e.message),
    );
  }
});

test('table aligns columns; usage rendering lists pools, blocks and allocations', () => {
  assert.equal(
    table([
      ['A', 'BB'],
      ['ccc', 'd'],
    ]),
    'A    BB\nccc  d',
  );
  const out = renderUsage({
    pools: [
      {
        name: 'p',
        cidr: '10.0.0.0/24',
        blockSize: 26,
        disabled: false,
        ipipMode: 'Never',
        vxlanMode: 'Never',
        natOutgoing: false,
        nodeSelector: 'all()',
        size: '256',
        inUse: 1,
        blocks: [
          {
            cidr: '10.0.0.0/26',
            node: 'n1',
            size: 64,
            inUse: 1,
            free: 63,
            allocations: [{ ip: '10.0.0.0', handle: 'h', owner: { node: 'n1', pod: 'web', namespace: 'ns' } }],
          },
        ],
      },
    ],
    orphanBlocks: [],
  });
  assert.match(out, /^POOL\s+CIDR\s+SIZE\s+IN USE\s+UTIL/m);
  assert.match(out, /^p\s+10\.0\.0\.0\/24\s+256\s+1\s+0\.4%/m);
  assert.match(out, /^10\.0\.0\.0\/26\s+p\s+n1\s+1\s+63\s+1\.6%/m);
  assert.match(out, /^10\.0\.0\.0\s+10\.0\.0\.0\/26\s+h\s+n1\s+ns\s+web$/m);
});
