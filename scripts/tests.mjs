#!/usr/bin/env node
// Test entry point: `node scripts/tests.mjs unit|it|all [filter...]`.
// Node 20's --test takes no globs, so this lists the compiled test files explicitly:
//   unit: dist/**/*.test.js that are not *.it.test.js (no root, no daemons, seconds)
//   it:   dist/**/*.it.test.js (real etcd, netns, routers; each test declares what it needs)
// `all` (what `npm test` and CI run) first installs missing system dependencies when root,
// then builds (tsc + bundles in bin/) and packages the plugins (dist-sea/), then runs both sets.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [mode = 'all', ...filters] = process.argv.slice(2);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function walk(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

if (mode === 'all') {
  if (process.getuid?.() === 0) run('bash', ['scripts/install-deps.sh', '--if-missing']);
  run('npm', ['run', '--silent', 'build']);
  // The CNI tests run the plugins as packaged single executables, as hosts without Node do.
  run('npm', ['run', '--silent', 'package']);
}

const files = walk(join(root, 'dist'))
  .filter((f) => !f.includes('/node_modules/'))
  .filter((f) => {
    const isIt = f.endsWith('.it.test.js');
    return mode === 'all' || (mode === 'it' ? isIt : !isIt);
  })
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .map((f) => relative(root, f))
  .sort();

if (files.length === 0) {
  console.error(`no test files for mode ${mode}`);
  process.exit(1);
}
// Integration tests start daemons and namespaces: run those files one at a time.
const concurrency = mode === 'unit' ? [] : ['--test-concurrency=1'];
run(process.execPath, ['--enable-source-maps', '--test', ...concurrency, ...files]);
