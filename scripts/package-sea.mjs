#!/usr/bin/env node
// `npm run package`: the CNI plugins as Node single executable applications (SEA), for hosts
// without Node.js. For each plugin: esbuild one CommonJS file (no shebang: SEA runs the script
// itself), `node --experimental-sea-config` turns it into a blob (with V8 code cache, which cuts
// start-up), a copy of this node binary gets the blob injected with postject (npm package, no
// install scripts; a devDependency), giving dist-sea/<name>. Node 20 SEA docs:
// https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
const out = `${root}dist-sea`;
const work = `${out}/build`;
const POSTJECT = `${root}node_modules/.bin/postject`;
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
export const SEA_ENTRIES = { petrel: 'cni/main.ts', 'petrel-ipam': 'cni/ipam-main.ts' };

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status})`);
}

mkdirSync(work, { recursive: true });
const only = process.argv.slice(2);
for (const [name, entry] of Object.entries(SEA_ENTRIES)) {
  if (only.length && !only.includes(name)) continue;
  const script = `${work}/${name}.cjs`;
  await build({
    entryPoints: [`${root}${entry}`],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    outfile: script,
    logLevel: 'warning',
  });
  const blob = `${work}/${name}.blob`;
  const cfg = `${work}/${name}.sea.json`;
  writeFileSync(
    cfg,
    JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
  );
  run(process.execPath, ['--experimental-sea-config', cfg]);
  const exe = `${out}/${name}`;
  rmSync(exe, { force: true });
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  run(POSTJECT, [exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);
  console.log(`built ${exe}`);
}
