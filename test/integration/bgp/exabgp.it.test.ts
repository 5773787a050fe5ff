/**
 * RFC 7606 revised error handling against malformed UPDATEs injected with ExaBGP raw attributes
 * (the GoBGP scenario-test technique). Attribute errors whose RFC 7606 action is
 * treat-as-withdraw or attribute-discard must leave the session up; the good routes of the same
 * peer stay.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { needs } from '../../helpers/needs.js';
import { type Daemon, waitFor } from '../../helpers/process.js';
import { type Petrel, startPetrel, type Topo, tempConfig, twoNodes } from './lib.js';

// route -> [why, expected in our stream]
const ROUTES: [string, string, string, boolean][] = [
  ['10.66.1.0/24', '', 'well-formed', true],
  [
    '10.66.2.0/24',
    'attribute [ 0x08 0xc0 0x010203 ]',
    'COMMUNITIES length 3 -> treat-as-withdraw (RFC 7606 §7.8)',
    false,
  ],
  [
    '10.66.3.0/24',
    'attribute [ 0x04 0x80 0x0001 ]',
    'MULTI_EXIT_DISC length 2 -> treat-as-withdraw (RFC 7606 §7.4)',
    false,
  ],
  [
    '10.66.4.0/24',
    'attribute [ 0x06 0x40 0x00 ]',
    'ATOMIC_AGGREGATE length 1 -> attribute-discard (RFC 7606 §7.6)',
    true,
  ],
  [
    '10.66.5.0/24',
    'attribute [ 0xf0 0xc0 0xdeadbeef ]',
    'unknown optional transitive attribute -> kept (RFC 4271 §5)',
    true,
  ],
  [
    '10.66.6.0/24',
    'attribute [ 0x09 0x80 0x0a63 ]',
    'ORIGINATOR_ID length 2 from eBGP -> treat-as-withdraw (RFC 7606 §7.9)',
    false,
  ],
];

function exaConfig(): string {
  const routes = ROUTES.map(([p, extra]) => `    route ${p} next-hop 10.99.0.2 ${extra};`).join('\n');
  return `neighbor 10.99.0.1 {
  router-id 10.99.0.2;
  local-address 10.99.0.2;
  local-as 65002;
  peer-as 64512;
  hold-time 30;
  family { ipv4 unicast; }
  static {
${routes}
  }
}
`;
}

describe('ExaBGP: malformed UPDATE attributes get their RFC 7606 action', {
  skip: needs('root', 'netns', 'exabgp'),
}, () => {
  let topo: Topo;
  let exa: Daemon;
  let us: Petrel;
  let dir: string;
  before(async () => {
    topo = await twoNodes();
    us = await startPetrel(topo.ours, {
      asn: 64512,
      routerId: '10.99.0.1',
      listen: { address: '10.99.0.1', port: 179 },
      peers: [{ address: '10.99.0.2', asn: 65002, passive: true }],
    });
    const c = tempConfig('exabgp', 'exabgp.conf', exaConfig());
    dir = c.dir;
    exa = topo.theirs.spawn('exabgp', [c.file], {
      ...process.env,
      exabgp_daemon_user: 'root',
      exabgp_daemon_daemonize: 'false',
      exabgp_log_destination: 'stdout',
      exabgp_api_cli: 'false',
      exabgp_tcp_bind: '',
    });
  });
  after(async () => {
    if (process.env.PETREL_IT_DEBUG) process.stderr.write(`${exa?.output()}\n${us?.daemon.output()}`);
    await exa?.stop(3000);
    await us?.stop().catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
    await topo?.destroy();
  });

  test('session establishes and the well-formed routes arrive', async () => {
    await waitFor('Established', async () => (await us.status()).peers[0]?.state === 'Established', 30_000);
    for (const [p, , , present] of ROUTES) if (present) await us.waitRoute(p);
  });

  for (const [p, , why, present] of ROUTES.slice(1)) {
    test(`${p}: ${why}`, async () => {
      assert.equal(us.routes().has(p), present);
    });
  }

  test('the session stayed up: no NOTIFICATION either way, no flap', async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const st = (await us.status()).peers[0];
    assert.equal(st?.state, 'Established');
    assert.deepEqual(st?.notificationsOut, {});
    assert.deepEqual(st?.notificationsIn, {});
    assert.equal(st?.flaps, 0);
    assert.equal(st?.prefixesAccepted, ROUTES.filter((r) => r[3]).length);
  });
});
