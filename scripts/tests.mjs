#!/usr/bin/env node
// Test entry point: `node scripts/tests.mjs unit|it|all [filter...]`.
// Node 20's --test takes no globs, so this lists the compiled test files explicitly:
//   unit: dist/**/*.test.js that are not *.it.test.js (no root, no daemons, seconds)
//   it:   dist/**/*.it.test.js (real etcd, netns, routers; each test declares what it needs)
// `all` (what `npm test` and CI run) first installs missing system dependencies when root,
// then builds (tsc + bundles in bin/) and packages the plugins (dist-sea/), then runs both sets.
// `npm run test:unit` and `npm run test:it` compile first (tsc; test:it also bundles).
//
// tsc never deletes output, so dist/ keeps the compiled form of a deleted or renamed source. Before
// listing, every dist/**/*.js (and its .js.map / .d.ts) whose .ts source no longer exists is
// removed, and only test files whose source exists are run: a deleted test cannot keep running
// against stale code.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [mode = 'all', ...filters] = process.argv.slice(2);

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function walk(dir, suffix, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, suffix, out);
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

const dist = join(root, 'dist');
/** dist/a/b.js -> a/b.ts (tsc's rootDir is the repository root, outDir dist/). */
const sourceOf = (compiled) => join(root, relative(dist, compiled).replace(/\.js$/, '.ts'));

/** Removes compiled output whose TypeScript source is gone; returns what was removed. */
function cleanStale() {
  const removed = [];
  for (const js of walk(dist, '.js')) {
    if (existsSync(sourceOf(js))) continue;
    for (const f of [js, `${js}.map`, js.replace(/\.js$/, '.d.ts')]) rmSync(f, { force: true });
    removed.push(relative(root, js));
  }
  return removed;
}

if (mode === 'all') {
  if (process.getuid?.() === 0) run('bash', ['scripts/install-deps.sh', '--if-missing']);
  run('npm', ['run', '--silent', 'build']);
  // The CNI tests run the plugins as packaged single executables, as hosts without Node do.
  run('npm', ['run', '--silent', 'package']);
}

const stale = cleanStale();
if (stale.length > 0) console.error(`removed ${stale.length} stale compiled file(s): ${stale.join(', ')}`);

const files = walk(dist, '.test.js')
  .filter((f) => existsSync(sourceOf(f)))
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
