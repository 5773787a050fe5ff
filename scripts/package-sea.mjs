#!/usr/bin/env node
// `npm run package`: the CNI plugins as single self-contained executables in dist-sea/, for
// hosts without any JavaScript runtime. Each is `bun build --compile` of the TypeScript entry:
// one file holding the Bun runtime (npm @oven/bun-linux-x64, a devDependency with no install
// script, pinned) and our bundle as minified CommonJS with its bytecode cache. Offline and
// reproducible from `npm ci`: nothing is downloaded (the runtime is the binary in node_modules).
// Why Bun and not Node's SEA (what this made before): a Node SEA answers VERSION in ~110 ms on
// this machine, Node's own start-up; a Bun executable in ~20 ms, so a plugin process costs about
// what a Go plugin costs. The executables ignore .env, bunfig.toml, tsconfig.json and
// package.json in the runtime's working directory (a plugin runs wherever containerd is).
// petrelctl is packaged the same way, from its esbuild bundle (scripts/bundle.mjs: etcd's protos
// are inlined there, so the executable needs no file beside it): a Node start (~110 ms) is more
// than 3x a whole `etcdctl put`, a Bun executable's ~20 ms is not.
// petrel-netlink (the agent's route writer, agent/routing/netlink/main.ts) is a Bun executable for
// Bun's FFI: it holds a NETLINK_ROUTE socket, which Node cannot open.
//   node scripts/package-sea.mjs [name...]
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const out = `${root}dist-sea`;
export const BUN = `${root}node_modules/@oven/bun-linux-x64/bin/bun`;
export const SEA_ENTRIES = {
  petrel: 'cni/main.ts',
  'petrel-ipam': 'cni/ipam-main.ts',
  petrelctl: 'bin/petrelctl',
  'petrel-netlink': 'agent/routing/netlink/main.ts',
};
/** Entries packaged from their esbuild bundle (made first) rather than from TypeScript. */
const FROM_BUNDLE = new Set(['petrelctl']);

if (!existsSync(BUN)) throw new Error(`${BUN} missing: run npm ci (devDependency @oven/bun-linux-x64)`);
mkdirSync(out, { recursive: true });
const only = process.argv.slice(2);
for (const [name, entry] of Object.entries(SEA_ENTRIES)) {
  if (only.length && !only.includes(name)) continue;
  const exe = `${out}/${name}`;
  const tmp = `${exe}.tmp`;
  rmSync(tmp, { force: true });
  let src = `${root}${entry}`;
  if (FROM_BUNDLE.has(name)) {
    const b = spawnSync(process.execPath, [`${root}scripts/bundle.mjs`, name], { stdio: 'inherit', cwd: root });
    if (b.status !== 0) throw new Error(`bundle ${name} failed (${b.status ?? b.signal})`);
    // bun build wants a file name that says CommonJS.
    mkdirSync(`${out}/.cache`, { recursive: true });
    src = `${out}/.cache/${name}.cjs`;
    copyFileSync(`${root}${entry}`, src);
  }
  const r = spawnSync(
    BUN,
    [
      'build',
      '--compile',
      '--minify',
      '--bytecode',
      '--format=cjs',
      '--no-compile-autoload-dotenv',
      '--no-compile-autoload-bunfig',
      '--no-compile-autoload-tsconfig',
      '--no-compile-autoload-package-json',
      `--compile-executable-path=${BUN}`,
      `--outfile=${tmp}`,
      src,
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
      cwd: root,
      env: { ...process.env, BUN_INSTALL_CACHE_DIR: `${out}/.cache` },
    },
  );
  if (r.status !== 0) throw new Error(`bun build ${entry} failed (${r.status ?? r.signal})`);
  chmodSync(tmp, 0o755);
  renameSync(tmp, exe); // atomic: a runtime never executes a half-written plugin
  console.log(`built ${exe}`);
}
