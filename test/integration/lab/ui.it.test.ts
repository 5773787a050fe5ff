/**
 * `lab up --ui` as a user runs it, looked at from the root namespace's loopback in a real headless
 * Chromium: the UI (inside the lab's fabric netns, on a Unix socket in the lab's directory,
 * relayed by `ui forward`) draws the lab's 3 nodes with every mesh session Established and its
 * pods; after `lab kill-agent node-3` node-3 is unreachable and its links are drawn down; a
 * screenshot of that goes to test-artifacts/ui/lab-agent-killed.png; `lab down` ends both UI
 * processes and the port stops answering.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { Page } from 'puppeteer-core';
import { pidAlive } from '../../../agent/lab/sh.js';
import type { LabState } from '../../../agent/lab/state.js';
import { artifactPath, launchInNetns, type NetnsBrowser } from '../../helpers/chromium.js';
import { CLUSTER_BINS } from '../../helpers/cluster.js';
import { needs } from '../../helpers/needs.js';
import { labFailure, PETRELCTL, run } from '../../helpers/petrelctl.js';
import { freePort } from '../../helpers/ports.js';

const skip = needs('root', 'netns', 'etcd', 'cni-plugins', 'chromium', CLUSTER_BINS);
const NAME = `ui${process.pid}`;
const lab = (...args: string[]) => run(PETRELCTL, ['lab', ...args, '--name', NAME], {}, 240_000);

describe('lab up --ui: the picture of a running lab in headless Chromium', { skip }, () => {
  let chrome: NetnsBrowser | undefined;
  let page: Page;
  let url = '';
  after(async () => {
    await chrome?.close();
    await lab('down');
  });

  const waitDom = async (what: string, fn: string, timeoutMs = 60_000) => {
    try {
      await page.waitForFunction(fn, { timeout: timeoutMs, polling: 250 });
    } catch (err) {
      const text = await page.evaluate('document.body.innerText').catch(() => '');
      throw new Error(`${what}: ${(err as Error).message}\n--- page text\n${String(text).slice(0, 3000)}`);
    }
  };

  test('lab up --ui prints the UI address; the page shows 3 nodes, 6 sessions Established and the pods', async () => {
    const port = await freePort();
    const up = await lab('up', '--nodes', '3', '--mode', 'vxlan', '--pods-per-node', '1', '--ui', `127.0.0.1:${port}`);
    assert.equal(up.code, 0, labFailure(up));
    url = /^UI: (http:\/\/\S+)$/m.exec(up.stdout)?.[1] ?? '';
    assert.equal(url, `http://127.0.0.1:${port}`);
    chrome = await launchInNetns(undefined);
    page = await chrome.browser.newPage();
    await page.goto(`${url}/`, { waitUntil: 'domcontentloaded' });
    await waitDom(
      'nodes, sessions, links, pods',
      `document.querySelectorAll('article[data-node]').length === 3 &&
       document.querySelectorAll('tr[data-session][data-state="Established"]').length === 6 &&
       document.querySelectorAll('line[data-link][data-health="up"]').length === 3 &&
       document.querySelectorAll('[data-pod] .pod-ip').length >= 3`,
    );
  });

  test('lab kill-agent node-3: node-3 unreachable, its links down, the others up; screenshot', async () => {
    assert.ok(page, 'the page from the first test');
    const k = await lab('kill-agent', 'node-3');
    assert.equal(k.code, 0, k.stderr);
    await waitDom(
      'node-3 down in the picture',
      `document.querySelector('article[data-node="node-3"]')?.dataset.agent === 'unreachable' &&
       ['node-1|node-3', 'node-2|node-3'].every((l) => document.querySelector('line[data-link="' + l + '"]')?.dataset.health === 'down') &&
       document.querySelector('line[data-link="node-1|node-2"]')?.dataset.health === 'up'`,
    );
    const shot = artifactPath('ui', 'lab-agent-killed.png');
    await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, `screenshot ${shot}`);
  });

  test('lab down ends the UI and its relay; the port no longer answers', async () => {
    const s = JSON.parse(readFileSync(`/run/petrel-lab/${NAME}/state.json`, 'utf8')) as LabState;
    const uiPids = s.procs.filter((p) => p.what === 'ui' || p.what === 'ui-forward').map((p) => p.pid);
    assert.equal(uiPids.length, 2, JSON.stringify(s.procs));
    await chrome?.close();
    chrome = undefined;
    const d = await lab('down');
    assert.equal(d.code, 0, d.stderr);
    for (const pid of uiPids) assert.ok(!pidAlive(pid), `UI process ${pid} ended`);
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      () => 'answered',
      () => 'refused',
    );
    assert.equal(r, 'refused');
  });
});
