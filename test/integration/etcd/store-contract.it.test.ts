/**
 * The IPAM store contract, on the three implementations: etcd over gRPC (ipam-etcd's etcd3
 * store, the agent's), etcd over its HTTP/JSON gateway (petrelctl's EtcdHttpStore) and the
 * in-memory store (unit tests). The same scripted sequence runs on each; results must agree, and the
 * two etcd stores must read each other's writes with identical mod revisions (one etcd, two clients).
 * Covers: create-if-absent, compare on mod revision (a stale revision writes nothing), multi-key
 * transactions, deletes, prefix lists sorted by key (and not leaking past the prefix), keys-only lists,
 * values with any UTF-8, a 2,000-key list, and errors on an unreachable etcd.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EtcdHttpStore } from '../../../agent/ctl/etcd-http-store.js';
import { ConflictError } from '../../../ipam-etcd/errors.js';
import { type IpamStore, MemoryStore, openEtcdStore } from '../../../ipam-etcd/index.js';
import { type EtcdHandle, startEtcd } from '../../helpers/etcd.js';
import { needs } from '../../helpers/needs.js';

const skip = needs('etcd');

/** Runs the script on a store under `p` (a fresh prefix), returning what it observed (revisions as "same as write N"). */
async function script(s: IpamStore, p: string): Promise<unknown[]> {
  const seen: unknown[] = [];
  const revs: string[] = [];
  const rel = (r: string) => `w${revs.indexOf(r)}`;
  const kv = (x: { key: string; value: string; modRevision: string } | null) =>
    x ? { key: x.key.slice(p.length), value: x.value, rev: rel(x.modRevision) } : null;
  revs.push(await s.commit([{ key: `${p}a`, modRevision: null }], [{ key: `${p}a`, value: '{"n":1}' }]));
  seen.push(kv(await s.get(`${p}a`)));
  // create-if-absent on an existing key: conflict, nothing written.
  await assert.rejects(s.commit([{ key: `${p}a`, modRevision: null }], [{ key: `${p}b`, value: 'x' }]), ConflictError);
  seen.push(await s.get(`${p}b`));
  // compare on the current revision: ok; on a stale one: conflict.
  const a = await s.get(`${p}a`);
  revs.push(
    await s.commit(
      [{ key: `${p}a`, modRevision: a?.modRevision ?? '' }],
      [
        { key: `${p}a`, value: '{"n":2}' },
        { key: `${p}b`, value: 'zwölf ✓ 🐦' },
        { key: `${p}c/1`, value: '' },
      ],
    ),
  );
  await assert.rejects(
    s.commit([{ key: `${p}a`, modRevision: a?.modRevision ?? '' }], [{ key: `${p}a`, value: 'stale' }]),
    ConflictError,
  );
  seen.push((await s.list(p)).map(kv));
  seen.push((await s.listKeys(`${p}c/`)).map((k) => k.slice(p.length)));
  // A key just past the prefix does not show in the prefix list.
  revs.push(await s.commit([], [{ key: `${p.slice(0, -1)}~`, value: 'outside' }]));
  seen.push((await s.list(p)).length);
  // delete + condition on a key that must not exist.
  const b = await s.get(`${p}b`);
  revs.push(
    await s.commit(
      [
        { key: `${p}b`, modRevision: b?.modRevision ?? '' },
        { key: `${p}zz`, modRevision: null },
      ],
      [{ key: `${p}b`, delete: true }],
    ),
  );
  seen.push(await s.get(`${p}b`));
  seen.push((await s.listKeys(p)).map((k) => k.slice(p.length)));
  // Many keys in one list.
  for (let i = 0; i < 2000; i += 100) {
    const writes = Array.from({ length: 100 }, (_, j) => ({
      key: `${p}many/${String(i + j).padStart(5, '0')}`,
      value: String(i + j),
    }));
    await s.commit([], writes);
  }
  const many = await s.list(`${p}many/`);
  seen.push(
    many.length,
    many[0]?.value,
    many[1999]?.value,
    many.every((x, i) => i === 0 || many[i - 1]!.key < x.key),
  );
  seen.push((await s.listKeys(`${p}many/`)).length);
  return seen;
}

describe('IPAM store contract: etcd gRPC, etcd HTTP gateway, memory', { skip }, () => {
  let etcd: EtcdHandle;
  let grpc: IpamStore;
  let http: IpamStore;
  before(async () => {
    etcd = await startEtcd();
    grpc = await openEtcdStore({ endpoints: [etcd.endpoint], timeoutMs: 5000 });
    http = new EtcdHttpStore({ endpoints: [etcd.endpoint], timeoutMs: 5000 });
  });
  after(async () => {
    await grpc?.close();
    await http?.close();
    await etcd?.destroy();
  });

  test('the same script gives the same observations on all three stores', async () => {
    const mem = await script(new MemoryStore(), '/petrel/contract/mem/');
    const viaGrpc = await script(grpc, '/petrel/contract/grpc/');
    const viaHttp = await script(http, '/petrel/contract/http/');
    assert.deepEqual(viaGrpc, mem);
    assert.deepEqual(viaHttp, mem);
  });

  test('one etcd, two clients: each reads the other writes with the same mod revisions', async () => {
    const r1 = await grpc.commit([{ key: '/petrel/x/k1', modRevision: null }], [{ key: '/petrel/x/k1', value: 'g' }]);
    const seenByHttp = await http.get('/petrel/x/k1');
    assert.deepEqual(seenByHttp, { key: '/petrel/x/k1', value: 'g', modRevision: r1 });
    const r2 = await http.commit([{ key: '/petrel/x/k1', modRevision: r1 }], [{ key: '/petrel/x/k1', value: 'h' }]);
    assert.ok(BigInt(r2) > BigInt(r1));
    assert.deepEqual(await grpc.get('/petrel/x/k1'), { key: '/petrel/x/k1', value: 'h', modRevision: r2 });
    // The stale revision is refused through either client.
    await assert.rejects(
      http.commit([{ key: '/petrel/x/k1', modRevision: r1 }], [{ key: '/petrel/x/k1', value: 'no' }]),
      ConflictError,
    );
    await assert.rejects(
      grpc.commit([{ key: '/petrel/x/k1', modRevision: r1 }], [{ key: '/petrel/x/k1', value: 'no' }]),
      ConflictError,
    );
    assert.deepEqual(await http.list('/petrel/x/'), await grpc.list('/petrel/x/'));
  });

  test('an unreachable etcd: a clear error within the timeout, not a hang or a ConflictError', async () => {
    const dead = new EtcdHttpStore({ endpoints: ['http://127.0.0.1:9'], timeoutMs: 1000 });
    try {
      const err = await dead.get('/petrel/x/k1').then(
        () => null,
        (e: unknown) => e as Error,
      );
      assert.ok(err, 'rejected');
      assert.ok(!(err instanceof ConflictError));
      assert.match(err.message, /127\.0\.0\.1:9/);
    } finally {
      await dead.close();
    }
  });
});
