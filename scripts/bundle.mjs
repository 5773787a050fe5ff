#!/usr/bin/env node
// One esbuild bundle per executable, written to bin/ (STYLE §9). Each bundle is a CommonJS file
// with a node shebang and a linked source map beside it. The shebang does not turn source maps
// on: Node then parses the whole map at start (petrelctl's: +21 MB RSS for a long-running BGP
// speaker); run `node --enable-source-maps bin/NAME` for mapped stack traces. Entries whose
// source does not exist yet are skipped.
import { chmodSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
export const ENTRIES = {
  petrelctl: 'agent/ctl/main.ts',
  'petrel-agent': 'agent/main.ts',
  petrel: 'cni/main.ts',
  'petrel-ipam': 'cni/ipam-main.ts',
};

// etcd3 loads its .proto files from `${__dirname}/../proto` at run time. In a bundle __dirname is
// bin/, so the protos are copied to bin/etcd-proto and the path is rewritten.
const etcdProtoPlugin = {
  name: 'etcd3-proto-path',
  setup(b) {
    b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const { readFile } = await import('node:fs/promises');
      const src = await readFile(args.path, 'utf8');
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal source text being replaced
      const out = src.replace('`${__dirname}/../proto/rpc.proto`', '`${__dirname}/etcd-proto/rpc.proto`');
      if (out === src) throw new Error('etcd3 proto path not found: update scripts/bundle.mjs');
      return { contents: out, loader: 'js' };
    });
  },
};

mkdirSync(`${root}bin`, { recursive: true });
// The bundles are CommonJS files without an extension: mark bin/ as CommonJS, or Node would
// treat them as ES modules under the top-level "type": "module".
writeFileSync(`${root}bin/package.json`, '{ "type": "commonjs" }\n');
cpSync(`${root}node_modules/etcd3/proto`, `${root}bin/etcd-proto`, { recursive: true });
const only = process.argv.slice(2);
for (const [name, entry] of Object.entries(ENTRIES)) {
  if (only.length && !only.includes(name)) continue;
  if (!existsSync(`${root}${entry}`)) continue;
  const outfile = `${root}bin/${name}`;
  await build({
    entryPoints: [`${root}${entry}`],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: 'linked',
    minify: false,
    legalComments: 'none',
    banner: { js: '#!/usr/bin/env -S node' },
    outfile,
    plugins: [etcdProtoPlugin],
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
}
