import assert from 'node:assert/strict';
import { test } from 'node:test';
import { birdConfigText, parseBirdProtocols } from './external.js';

test('BIRD config: one eBGP session per node and family, learned routes to the kernel, nothing exported', () => {
  const text = birdConfigText({
    routerId: '10.99.1.250',
    localIp: '10.99.1.250',
    localIp6: 'fd99:1::fa',
    localAs: 65000,
    clusterAs: 64512,
    nodes: [
      { name: 'node-1', ip: '10.99.1.11', ip6: 'fd99:1::11' },
      { name: 'node-2', ip: '10.99.1.12' },
    ],
  });
  assert.match(text, /^router id 10\.99\.1\.250;/);
  assert.match(text, /protocol kernel k4 \{ ipv4 \{ export all; \}; \}/);
  assert.match(
    text,
    /protocol bgp node_1 \{\n {2}local 10\.99\.1\.250 as 65000;\n {2}neighbor 10\.99\.1\.11 as 64512;/,
  );
  assert.match(text, /protocol bgp node_1_v6 \{\n {2}local fd99:1::fa as 65000;\n {2}neighbor fd99:1::11 as 64512;/);
  assert.doesNotMatch(text, /node_2_v6/, 'a node without IPv6 gets no IPv6 session');
  assert.equal((text.match(/export none;/g) ?? []).length, 3);
});

test('birdc show protocols: BGP rows only, Established or the state word', () => {
  const out = `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     10:00:00.000
k4         Kernel     master4    up     10:00:00.000
node_1     BGP        ---        up     10:00:01.000  Established
node_2     BGP        ---        start  10:00:00.000  Active        Socket: Connection refused
`;
  assert.deepEqual(parseBirdProtocols(out), [
    { name: 'node_1', state: 'Established' },
    { name: 'node_2', state: 'Active' },
  ]);
});
