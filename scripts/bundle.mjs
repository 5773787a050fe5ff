#!/usr/bin/env node
// One esbuild bundle per executable, written to bin/ (STYLE §9). Each bundle is a CommonJS file
// with a node shebang and a linked source map beside it. The shebang does not turn source maps
// on: Node then parses the whole map at start (petrelctl's: +21 MB RSS for a long-running BGP
// speaker); run `node --enable-source-maps bin/NAME` for mapped stack traces. Entries whose
// source does not exist yet are skipped.
import { chmodSync, cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { build } from 'esbuild';

const root = new URL('..', import.meta.url).pathname;
export const ENTRIES = {
  petrelctl: 'agent/ctl/main.ts',
  'petrel-agent': 'agent/main.ts',
  petrel: 'cni/main.ts',
  'petrel-ipam': 'cni/ipam-main.ts',
  'petrel-install-cni': 'agent/install-cni/main.ts',
  'petrel-controllers': 'agent/controllers/main.ts',
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

// petrelctl (a short-lived CLI: start-up is its cost) does not parse .proto text at all. Its
// bundle holds etcd's protos as a protobufjs JSON descriptor (made here, at build time, with the
// options etcd3 loads them with), and a small loader makes the gRPC package definition from it:
// the same serializers and deserializers as @grpc/proto-loader (`Type.fromObject` + `encode`,
// `decode` + `toObject` with etcd3's options), without the per-message descriptor protos that
// proto-loader builds for gRPC server reflection (most of etcd3's load time; a client never
// reads them). Also makes the bundle independent of bin/etcd-proto (the Bun executable).
const ETCD_PROTO_LITE = 'petrel:etcd-proto-lite';
function etcdProtoLitePlugin() {
  const req = createRequire(`${root}node_modules/etcd3/lib/connection-pool.js`);
  const loaderDir = dirname(req.resolve('@grpc/proto-loader'));
  return {
    name: 'etcd3-proto-lite',
    setup(b) {
      b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
        const { readFile } = await import('node:fs/promises');
        const src = await readFile(args.path, 'utf8');
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal source text being replaced
        const call = '(0, proto_loader_1.loadSync)(`${__dirname}/../proto/rpc.proto`, {';
        if (!src.includes(call)) throw new Error('etcd3 proto loading not found: update scripts/bundle.mjs');
        const protobuf = createRequire(`${loaderDir}/index.js`)('protobufjs');
        const protoDir = `${root}node_modules/etcd3/proto`;
        const pbRoot = new protobuf.Root();
        pbRoot.resolvePath = (_origin, target) => (target.startsWith('/') ? target : `${protoDir}/${target}`);
        pbRoot.loadSync(`${protoDir}/rpc.proto`, { keepCase: true });
        const json = JSON.stringify(pbRoot.toJSON());
        const loader = 'const proto_loader_1 = require("@grpc/proto-loader");';
        if (!src.includes(loader)) throw new Error('etcd3 proto-loader import not found: update scripts/bundle.mjs');
        return {
          contents: src
            .replace(loader, '')
            .replace(call, `require(${JSON.stringify(ETCD_PROTO_LITE)}).fromJSON(${json}, {`),
          loader: 'js',
        };
      });
      b.onResolve({ filter: /^petrel:etcd-proto-lite$/ }, () => ({ path: ETCD_PROTO_LITE, namespace: 'petrel' }));
      b.onLoad({ filter: /.*/, namespace: 'petrel' }, () => ({
        resolveDir: loaderDir,
        loader: 'js',
        contents: `
const Protobuf = require('protobufjs');
const camelCase = require('lodash.camelcase');
const serializer = (cls) => (arg) => {
  if (Array.isArray(arg)) throw new Error('Failed to serialize message: expected object with ' + cls.name + ' structure, got array instead');
  return cls.encode(cls.fromObject(arg)).finish();
};
const deserializer = (cls, options) => (buf) => cls.toObject(cls.decode(buf), options);
const message = { format: 'Protocol Buffer 3 DescriptorProto', type: {}, fileDescriptorProtos: [] };
exports.fromJSON = function fromJSON(json, options) {
  const root = Protobuf.Root.fromJSON(json);
  root.resolveAll();
  const def = {};
  const walk = (ns, prefix) => {
    for (const obj of ns.nestedArray) {
      const name = prefix ? prefix + '.' + obj.name : obj.name;
      if (obj instanceof Protobuf.Service) {
        const svc = {};
        for (const m of obj.methodsArray) {
          const req = m.resolvedRequestType;
          const res = m.resolvedResponseType;
          svc[m.name] = {
            path: '/' + name + '/' + m.name,
            requestStream: !!m.requestStream,
            responseStream: !!m.responseStream,
            requestSerialize: serializer(req),
            requestDeserialize: deserializer(req, options),
            responseSerialize: serializer(res),
            responseDeserialize: deserializer(res, options),
            originalName: camelCase(m.name),
            requestType: message,
            responseType: message,
            options: {},
          };
        }
        def[name] = svc;
      } else if (obj instanceof Protobuf.Type) {
        def[name] = message;
      } else if (obj instanceof Protobuf.Enum) {
        def[name] = { format: 'Protocol Buffer 3 EnumDescriptorProto', type: {}, fileDescriptorProtos: [] };
      } else if (obj.nestedArray) {
        walk(obj, name);
      }
    }
  };
  walk(root, '');
  return def;
};
`,
      }));
    },
  };
}

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
    plugins: [name === 'petrelctl' ? etcdProtoLitePlugin() : etcdProtoPlugin],
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
}
