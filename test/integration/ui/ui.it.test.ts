/**
 * `petrelctl ui` on a real 3-node cluster (test/helpers/cluster.ts), looked at in a real headless
 * Chromium: the UI runs in the fabric namespace (where etcd and every node's status endpoint, on
 * 0.0.0.0:9099 inside each node, are reachable), and so does the browser (helpers/chromium.ts:
 * DevTools over a pipe, no TCP between namespaces). Asserted in the DOM:
 *  - every node, its blocks with utilisation, its BGP sessions Established, the pods with addresses;
 *  - the live route feed: the block a new node's first pod brings shows up as an `add` on the others;
 *  - the "A → B" panel: every check passes for two pods on different nodes;
 *  - after SIGKILL of node-3's agent: node-3 unreachable, the sessions to it not Established, the
 *    link drawn down, the feed says its stream was lost, and "A → C" fails at the agent and session.
 *  - node-3 back as a route reflector with the mesh off: drawn as one, the sessions to it up,
 *    none between the clients, and "A → B" passes through the reflector.
 * Screenshots: test-artifacts/ui/{cluster,agent-killed,route-reflector}.png (or under
 * $PETREL_TEST_ARTIFACTS/ui/). Also: the Unix-socket UI reached through `petrelctl ui forward` and
 * `petrelctl ui --netns` from the root namespace (loopback only there), and the API's bad requests.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'puppeteer-core';
import { artifactPath, launchInNetns, type NetnsBrowser } from '../../helpers/chromium.js';
import { BIN_DIR, CLUSTER_BINS, type Cluster, type Pod, startCluster } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { freePort } from '../../helpers/ports.js';
import { type Daemon, startDaemon, waitFor } from '../../helpers/process.js';
import { waitReady } from '../cluster/lib.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', 'chromium', CLUSTER_BINS);
const POOL = '10.244.0.0/16';
const UI_PORT = 9180;

interface ViewJson {
  nodes: { name: string; ipv4?: string; blocks: { cidr: string }[] }[];
  pods: { id: string; name: string; node: string; ips: string[]; blocks: string[] }[];
}

describe('petrelctl ui in headless Chromium on a 3-node cluster', { skip }, () => {
  let c: Cluster;
  let ui: ReturnType<Cluster['spawn']>;
  let chrome: NetnsBrowser | undefined;
  let page: Page;
  let a: Pod;
  let b: Pod;
  let pc: Pod;
  const rootDaemons: Daemon[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'petrel-ui-test-'));

  const api = async <T>(path: string): Promise<T> => {
    const r = await c.fabric.exec('curl', ['-sf', '--max-time', '5', `http://127.0.0.1:${UI_PORT}${path}`]);
    if (r.code !== 0) throw new Error(`curl ${path} -> ${r.code}`);
    return JSON.parse(r.stdout) as T;
  };
  const count = (sel: string) => page.$$eval(sel, (els) => els.length);
  const waitDom = async (what: string, fn: string, timeoutMs = 30_000) => {
    try {
      await page.waitForFunction(fn, { timeout: timeoutMs, polling: 200 });
    } catch (err) {
      const text = await page.evaluate('document.body.innerText').catch(() => '');
      throw new Error(`${what}: ${(err as Error).message}\n--- page text\n${String(text).slice(0, 4000)}`);
    }
  };

  before(async () => {
    c = await startCluster({
      nodes: 3,
      pools: [{ name: 'default', cidr: POOL, blockSize: 26 }],
      // The UI asks each agent on its node address (the last --status-listen wins).
      agentArgs: () => ['--status-listen', '0.0.0.0:9099'],
    });
    for (const n of c.nodes) await waitReady(c, n, 60_000);
    a = await c.addPod(1, 'pod-a');
    b = await c.addPod(2, 'pod-b');
    ui = c.spawn(c.fabric, process.execPath, [
      join(BIN_DIR, 'petrelctl'),
      '--etcd-endpoints',
      c.etcdUrl,
      'ui',
      '--listen',
      `127.0.0.1:${UI_PORT}`,
      '--refresh-ms',
      '500',
    ]);
    await waitFor('UI answers', () => api<ViewJson>('/api/cluster'), 30_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}: ${ui.output()}`);
    });
    chrome = await launchInNetns(c.fabric.name);
    page = await chrome.browser.newPage();
    await page.goto(`http://127.0.0.1:${UI_PORT}/`, { waitUntil: 'domcontentloaded' });
  });

  after(async () => {
    await chrome?.close();
    for (const d of rootDaemons) {
      await d.stop(3000);
      try {
        process.kill(-d.pid, 'SIGKILL'); // its whole group (ui --netns's child UI)
      } catch {
        /* gone */
      }
    }
    await c?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('nodes, their blocks, sessions Established and pods with addresses are drawn', async () => {
    await waitDom('3 nodes', `document.querySelectorAll('article[data-node]').length === 3`);
    // Full mesh: 3 nodes × 2 peers, all Established, and 3 links drawn up.
    await waitDom(
      'all sessions Established',
      `document.querySelectorAll('tr[data-session][data-state="Established"]').length === 6 &&
       document.querySelectorAll('line[data-link][data-health="up"]').length === 3`,
    );
    const view = await api<ViewJson>('/api/cluster');
    for (const [pod, node] of [
      [a, 'node-1'],
      [b, 'node-2'],
    ] as const) {
      const pv = view.pods.find((p) => p.ips.includes(pod.ip));
      assert.ok(pv, `pod ${pod.name} ${pod.ip} in the view`);
      assert.equal(pv.node, node);
      const block = pv.blocks[0] as string;
      await waitDom(
        `${pod.name} and its block on ${node}`,
        `(() => { const n = document.querySelector('article[data-node="${node}"]');
          return !!n && !!n.querySelector('[data-block="${block}"]') &&
            [...n.querySelectorAll('[data-pod] .pod-ip')].some((e) => e.textContent.trim() === '${pod.ip}'); })()`,
      );
      const used = await page.$eval(`article[data-node="${node}"] [data-block="${block}"]`, (e) =>
        e.getAttribute('data-in-use'),
      );
      assert.equal(used, '1', `${block}: one address in use`);
    }
    // node-2 learned node-1's block, from node-1's address.
    const blockA = view.pods.find((p) => p.ips.includes(a.ip))?.blocks[0] as string;
    await waitDom(
      'node-2 learned the block of pod-a',
      `!!document.querySelector('article[data-node="node-2"] [data-route="${blockA}"]')`,
    );
    assert.match(
      await page.$eval(`article[data-node="node-2"] [data-route="${blockA}"]`, (e) => e.textContent ?? ''),
      /via 10\.99\.0\.11 \(node-1\)/,
    );
    assert.equal(await count('#problems li.none'), 1, 'no problems listed');
  });

  test('the route feed shows the block a new pod brings, as an add on the other nodes', async () => {
    pc = await c.addPod(3, 'pod-c');
    const view = (await waitFor(
      'pod-c in the view',
      async () => {
        const v = await api<ViewJson>('/api/cluster');
        return v.pods.some((p) => p.ips.includes(pc.ip)) ? v : undefined;
      },
      20_000,
      200,
    )) as ViewJson;
    const block = view.pods.find((p) => p.ips.includes(pc.ip))?.blocks[0] as string;
    for (const n of ['node-1', 'node-2']) {
      await waitDom(
        `feed: ${n} adds ${block}`,
        `[...document.querySelectorAll('#feed li[data-kind="add"][data-node="${n}"]')].some((e) => e.dataset.prefix === '${block}' && e.textContent.includes('node-3'))`,
      );
    }
  });

  test('A → B panel: pods on different nodes, every check passes', async () => {
    const view = await api<ViewJson>('/api/cluster');
    const id = (p: Pod) => view.pods.find((x) => x.ips.includes(p.ip))?.id as string;
    await page.select('#path-from', id(a));
    await page.select('#path-to', id(b));
    await page.click('#path-check');
    await waitDom('verdict ok', `document.querySelector('#path-verdict')?.dataset.ok === 'true'`);
    for (const check of [
      'node-a',
      'node-b',
      'block-a',
      'block-b',
      'agent-a',
      'agent-b',
      'session',
      'route-ab',
      'route-ba',
    ])
      assert.equal(
        await page.$eval(`#path-result [data-check="${check}"]`, (e) => e.getAttribute('data-ok')),
        'true',
        check,
      );
    assert.match(await page.$eval('#path-result', (e) => e.textContent ?? ''), /node-1 ↔ node-2/);
    const shot = artifactPath('ui', 'cluster.png');
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, `screenshot ${shot} written`);
  });

  test('agent of node-3 killed (SIGKILL): unreachable, sessions to it down, A → C broken at the session', async () => {
    await c.node(3).killAgent();
    await waitDom(
      'node-3 unreachable and its sessions not Established',
      `document.querySelector('article[data-node="node-3"]')?.dataset.agent === 'unreachable' &&
       ['node-1>10.99.0.13', 'node-2>10.99.0.13'].every((k) => {
         const r = document.querySelector('tr[data-session="' + k + '"]');
         return r && r.dataset.state !== 'Established';
       }) &&
       ['node-1|node-3', 'node-2|node-3'].every((k) => document.querySelector('line[data-link="' + k + '"]')?.dataset.health === 'down') &&
       document.querySelector('line[data-link="node-1|node-2"]')?.dataset.health === 'up'`,
      60_000,
    );
    await waitDom(
      'feed: node-3 stream lost',
      `!!document.querySelector('#feed li[data-kind="stream-lost"][data-node="node-3"]')`,
    );
    const view = await api<ViewJson>('/api/cluster');
    const id = (p: Pod) => view.pods.find((x) => x.ips.includes(p.ip))?.id as string;
    await page.select('#path-from', id(a));
    await page.select('#path-to', id(pc));
    await page.click('#path-check');
    await waitDom(
      'A → C verdict broken',
      `document.querySelector('#path-verdict')?.dataset.ok === 'false' &&
       document.querySelector('#path-result [data-check="session"]')?.dataset.ok === 'false'`,
    );
    assert.equal(await page.$eval('[data-check="agent-b"]', (e) => e.getAttribute('data-ok')), 'false');
    assert.equal(await page.$eval('[data-check="agent-a"]', (e) => e.getAttribute('data-ok')), 'true');
    assert.match(await page.$eval('#path-verdict', (e) => e.textContent ?? ''), /broken: .*node-3/);
    assert.ok((await count('#problems li:not(.none)')) >= 2, 'problems listed');
    const shot = artifactPath('ui', 'agent-killed.png');
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
    assert.ok(statSync(shot).size > 10_000);
  });

  test('node-3 back as a route reflector, mesh off: drawn as one, its sessions up, A → B through it', async () => {
    await c.node(3).startAgent(['--labels', 'rr=true', '--route-reflector-cluster-id', '224.0.0.1']);
    await c.petrelctlOk('bgp', 'peer', 'add', 'to-rr', '--node-selector', 'all()', '--peer-selector', "rr == 'true'");
    await c.petrelctlOk('bgp', 'config', 'set', '--node-mesh', 'off');
    await waitDom(
      'node-3 a reflector, sessions to it up, no node-1 ↔ node-2 session',
      `document.querySelector('article[data-node="node-3"]')?.dataset.agent === 'up' &&
       !!document.querySelector('article[data-node="node-3"] [data-rr="224.0.0.1"]') &&
       !!document.querySelector('g[data-topo-node="node-3"] circle.rr-ring') &&
       ['node-1|node-3', 'node-2|node-3'].every((k) => document.querySelector('line[data-link="' + k + '"]')?.dataset.health === 'up') &&
       !document.querySelector('line[data-link="node-1|node-2"]') &&
       document.querySelectorAll('tr[data-session][data-state="Established"]').length === 4`,
      60_000,
    );
    await waitDom(
      'feed: node-3 stream back',
      `!!document.querySelector('#feed li[data-kind="stream-up"][data-node="node-3"]')`,
    );
    const view = await api<ViewJson>('/api/cluster');
    const id = (p: Pod) => view.pods.find((x) => x.ips.includes(p.ip))?.id as string;
    await page.select('#path-from', id(a));
    await page.select('#path-to', id(b));
    await page.click('#path-check');
    await waitDom(
      'A → B through the reflector',
      `document.querySelector('#path-verdict')?.dataset.ok === 'true' &&
       /through route reflector node-3/.test(document.querySelector('#path-result [data-check="session"]')?.textContent ?? '')`,
    );
    const shot = artifactPath('ui', 'route-reflector.png');
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
  });

  test('UI on a Unix socket in the fabric netns, reached from the root netns through `ui forward` and `ui --netns`', async () => {
    const sock = join(tmp, 'ui.sock');
    c.spawn(c.fabric, process.execPath, [
      join(BIN_DIR, 'petrelctl'),
      '--etcd-endpoints',
      c.etcdUrl,
      'ui',
      '--listen',
      `unix:${sock}`,
    ]);
    await waitFor('UI socket', () => existsSync(sock), 20_000);
    const port = await freePort();
    const fwd = startDaemon(
      process.execPath,
      [join(BIN_DIR, 'petrelctl'), 'ui', 'forward', '--listen', `127.0.0.1:${port}`, '--to', `unix:${sock}`],
      { detached: true },
    );
    rootDaemons.push(fwd);
    const get = async (p: number, path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${p}${path}`, init);
    const view = (await waitFor(
      'forwarded /api/cluster',
      async () => {
        const r = await get(port, '/api/cluster');
        return r.ok ? ((await r.json()) as ViewJson) : undefined;
      },
      20_000,
      200,
    )) as ViewJson;
    assert.deepEqual(
      view.nodes.map((n) => n.name),
      ['node-1', 'node-2', 'node-3'],
    );
    const page2 = await get(port, '/');
    assert.equal(page2.status, 200);
    assert.match(await page2.text(), /<title>Petrel cluster<\/title>/);
    // Bad requests.
    assert.equal((await get(port, '/api/cluster', { method: 'POST', body: 'x' })).status, 405);
    assert.equal((await get(port, '/api/path')).status, 400);
    assert.equal((await get(port, '/api/cluster?x=1')).status, 400);
    assert.equal((await get(port, '/api/feed?after=abc')).status, 400);
    assert.equal((await get(port, '/api/path?from=nope&to=nope')).status, 404);
    assert.equal((await get(port, '/nope')).status, 404);

    // One command: the UI inside the namespace, relayed here.
    const port2 = await freePort();
    const one = startDaemon(
      process.execPath,
      [
        join(BIN_DIR, 'petrelctl'),
        '--etcd-endpoints',
        c.etcdUrl,
        'ui',
        '--netns',
        c.fabric.name,
        '--listen',
        `127.0.0.1:${port2}`,
      ],
      { detached: true },
    );
    rootDaemons.push(one);
    const v2 = (await waitFor(
      'ui --netns /api/cluster',
      async () => {
        const r = await get(port2, '/api/cluster');
        return r.ok ? ((await r.json()) as ViewJson) : undefined;
      },
      20_000,
      200,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${one.output()}`);
    })) as ViewJson;
    assert.equal(v2.nodes.length, 3);
    await one.stop(5000);
    // SIGTERM ended the UI inside the namespace too (its socket dir is removed).
    assert.match(one.output(), /serving http:\/\/127\.0\.0\.1:\d+ \(UI in netns .* on unix:(\S+)\)/);
    const inner = /on unix:(\S+)\)/.exec(one.output())?.[1] as string;
    await waitFor('inner UI socket removed', () => !existsSync(inner), 10_000);
  });
});
