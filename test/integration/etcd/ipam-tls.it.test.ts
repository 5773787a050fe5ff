/** petrelctl against an etcd that requires mutual TLS: works with the client cert, fails clearly without. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { makePki, type TestPki } from '../../helpers/certs.js';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { needs } from '../../helpers/needs.js';
import { PETRELCTL, run } from '../../helpers/petrelctl.js';

describe('etcd with mTLS', { skip: needs('etcd', 'etcdctl', 'bundles') }, () => {
  let pki: TestPki;
  let etcd: EtcdHandle;
  before(async () => {
    pki = makePki();
    etcd = await startEtcd({ tls: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey } });
  });
  after(async () => {
    await etcd?.destroy();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  test('flags and environment both configure CA, client cert and key', async () => {
    const flags = [
      '--etcd-endpoints',
      etcd.endpoint,
      '--etcd-ca',
      pki.ca,
      '--etcd-cert',
      pki.clientCert,
      '--etcd-key',
      pki.clientKey,
    ];
    let r = await run(PETRELCTL, [...flags, 'ipam', 'pool', 'add', 'tls', '--cidr', '10.33.0.0/16']);
    assert.equal(r.code, 0, r.stderr);
    r = await run(PETRELCTL, ['ipam', 'assign', '--node', 'n1', '--handle', 'h'], {
      PETREL_ETCD_ENDPOINTS: etcd.endpoint,
      PETREL_ETCD_CA: pki.ca,
      PETREL_ETCD_CERT: pki.clientCert,
      PETREL_ETCD_KEY: pki.clientKey,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^10\.33\.\d+\.\d+$/m);
  });

  test('without a client certificate: one clear error within the timeout', async () => {
    const r = await run(PETRELCTL, [
      '--etcd-endpoints',
      etcd.endpoint,
      '--etcd-ca',
      pki.ca,
      '--etcd-timeout-ms',
      '2000',
      'ipam',
      'pool',
      'list',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^petrelctl: error: etcd at https:\/\/127\.0\.0\.1:\d+ (did not answer|failed)/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  test('unreadable TLS files are an invalid-config error', async () => {
    const r = await run(PETRELCTL, [
      '--etcd-endpoints',
      etcd.endpoint,
      '--etcd-ca',
      '/nonexistent/ca.crt',
      'ipam',
      'pool',
      'list',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^petrelctl: error: cannot read etcd TLS files: .*\/nonexistent\/ca\.crt/);
  });
});
