import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newBlock } from './block.js';
import { IpamError } from './errors.js';
import { parseAffinity, parseBlock, parseConfig, parseHandle, parsePool, serialize } from './records.js';

const corrupt = (e: unknown) => e instanceof IpamError && e.kind === 'corrupt' && e.message.includes('/k');

test('stored records round-trip', () => {
  const b = newBlock('10.0.0.0/30', 'host:n1', 7);
  assert.deepEqual(parseBlock('/k', serialize(b)), b);
  assert.deepEqual(parseHandle('/k', '{"blocks":{"10.0.0.0/26":2}}'), { blocks: { '10.0.0.0/26': 2 } });
  assert.deepEqual(parseAffinity('/k', '{"state":"pending"}'), { state: 'pending' });
  assert.deepEqual(parseConfig('/k', '{}'), { strictAffinity: false, maxBlocksPerHost: 0 });
  assert.equal(parsePool('/k', '{"name":"p","cidr":"10.0.0.0/16","blockSize":26}').nodeSelector, 'all()');
});

test('corrupted values are IpamError corrupt naming the key', () => {
  const bad: [string, (v: string) => unknown][] = [
    ['not json', (v) => parseBlock('/k', v)],
    ['[1,2]', (v) => parseBlock('/k', v)],
    [
      '{"cidr":"10.0.0.0/30","affinity":null,"allocations":"x","unallocated":[],"attributes":[],"sequenceNumber":1}',
      (v) => parseBlock('/k', v),
    ],
    [
      '{"cidr":"10.0.0.0/30","affinity":null,"allocations":[null],"unallocated":[0],"attributes":[{}],"sequenceNumber":1}',
      (v) => parseBlock('/k', v),
    ],
    ['{"blocks":{"x":-1}}', (v) => parseHandle('/k', v)],
    ['{"state":"maybe"}', (v) => parseAffinity('/k', v)],
    ['{"cidr":"10.0.0.0/16"}', (v) => parsePool('/k', v)],
  ];
  for (const [v, fn] of bad) assert.throws(() => fn(v), corrupt, v);
});
