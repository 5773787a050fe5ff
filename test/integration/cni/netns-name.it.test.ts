/**
 * ipNetnsName (cni/netns.ts): the plugin runs `ip -n NAME` instead of starting `nsenter` only when
 * CNI_NETNS is the very namespace file iproute2 opens by that name. A same-named file elsewhere, a
 * /proc/PID/ns/net path or a missing path must fall back (undefined), or the plugin would configure
 * the wrong namespace.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ipNetnsName } from '../../../cni/netns.js';
import { needs } from '../../helpers/needs.js';
import { createNetns, type Netns } from '../../helpers/netns.js';

describe('ipNetnsName against real named namespaces', { skip: needs('root', 'netns') }, () => {
  let ns: Netns;
  let dir: string;
  before(async () => {
    ns = await createNetns('nsname');
    dir = mkdtempSync(join(tmpdir(), 'petrel-nsname-'));
  });
  after(async () => {
    await ns?.delete();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('/run/netns/NAME and /var/run/netns/NAME give NAME', () => {
    assert.equal(ipNetnsName(`/run/netns/${ns.name}`), ns.name);
    assert.equal(ipNetnsName(`/var/run/netns/${ns.name}`), ns.name);
  });

  test('a different file with the same name is not that namespace', () => {
    const impostor = join(dir, ns.name);
    writeFileSync(impostor, '');
    assert.equal(ipNetnsName(impostor), undefined);
  });

  test('/proc/PID/ns/net, a missing namespace and degenerate paths fall back to nsenter', () => {
    assert.equal(ipNetnsName('/proc/self/ns/net'), undefined);
    assert.equal(ipNetnsName(`/run/netns/${ns.name}-gone`), undefined);
    for (const p of ['', '/', '/run/netns/', '/run/netns/..']) assert.equal(ipNetnsName(p), undefined, p);
  });
});
