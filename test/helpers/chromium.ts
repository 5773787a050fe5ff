/**
 * A real headless Chromium (Debian's /usr/bin/chromium) inside a network namespace, driven with
 * puppeteer-core over the DevTools protocol on a pipe (fds 3/4, `pipe: true`): no DevTools TCP
 * port anywhere, and the browser's own traffic stays in the namespace. The executable puppeteer
 * starts is a two-line wrapper that `ip netns exec`s chromium (exec in place: the PID is
 * chromium's, and the pipe fds are inherited). puppeteer starts it as a process-group leader
 * (detached), so close() ends the whole group (renderers, GPU and zygote processes included)
 * with SIGKILL after browser.close(), and removes the profile directory.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import puppeteer, { type Browser } from 'puppeteer-core';
import { ROOT } from './petrelctl.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Where UI tests write screenshots: $PETREL_TEST_ARTIFACTS or <repo>/test-artifacts. */
export const ARTIFACTS = process.env.PETREL_TEST_ARTIFACTS || join(ROOT, 'test-artifacts');

export function artifactPath(...parts: string[]): string {
  const p = join(ARTIFACTS, ...parts);
  mkdirSync(join(p, '..'), { recursive: true });
  return p;
}

export interface NetnsBrowser {
  readonly browser: Browser;
  readonly pid: number;
  close(): Promise<void>;
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function launchInNetns(netns: string): Promise<NetnsBrowser> {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-chromium-'));
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec '${netns}' ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  let browser: Browser;
  try {
    browser = await puppeteer.launch({
      executablePath: wrapper,
      pipe: true,
      headless: true,
      userDataDir: join(dir, 'profile'),
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
      defaultViewport: { width: 1400, height: 1000 },
      timeout: 60_000,
      protocolTimeout: 60_000,
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const pid = browser.process()?.pid;
  if (pid === undefined) throw new Error('chromium has no PID');
  let closed = false;
  return {
    browser,
    pid,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.race([browser.close().catch(() => {}), delay(5000)]);
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* group already gone */
      }
      for (let i = 0; i < 100 && groupAlive(pid); i++) await delay(50);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
