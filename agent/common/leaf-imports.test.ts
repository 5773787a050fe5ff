/**
 * The cores' module graphs, as the bundler sees them: importing a core (or the shared leaves)
 * must not load pino, etcd3, sockets or child processes (issue 13: the silent logger pulled pino
 * into every core). The lint rules catch a direct import; this catches one through another file.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** Every module (files and externals) reachable from `entry` by static or dynamic import. */
async function graph(entry: string): Promise<string[]> {
  const r = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
  });
  const seen = new Set<string>(Object.keys(r.metafile.inputs));
  for (const input of Object.values(r.metafile.inputs)) for (const i of input.imports) seen.add(i.path);
  return [...seen];
}

const ALL = [
  /node_modules\/pino\//,
  /node_modules\/etcd3\//,
  /^(node:)?net$/,
  /^(node:)?child_process$/,
  /common\/log\.ts$/,
];
const PINO = [/node_modules\/pino\//, /common\/log\.ts$/];

const cases: { entry: string; forbidden: RegExp[] }[] = [
  { entry: 'agent/common/logger.ts', forbidden: ALL },
  { entry: 'agent/common/ip.ts', forbidden: ALL },
  { entry: 'agent/common/clock.ts', forbidden: ALL },
  { entry: 'bgp/codec/index.ts', forbidden: ALL },
  { entry: 'bgp/fsm/index.ts', forbidden: ALL },
  { entry: 'bgp/rib/index.ts', forbidden: ALL },
  { entry: 'ipam-etcd/allocator.ts', forbidden: ALL },
  { entry: 'ipam-etcd/inspect.ts', forbidden: ALL },
  { entry: 'ipam-etcd/cidr.ts', forbidden: ALL },
  { entry: 'cni/netconf.ts', forbidden: ALL },
  // Shells: sockets and processes are theirs, but a logger type must not cost them pino.
  { entry: 'bgp/speaker/session.ts', forbidden: PINO },
  { entry: 'bgp/speaker/speaker.ts', forbidden: PINO },
  { entry: 'cni/dispatch.ts', forbidden: PINO },
];

for (const c of cases) {
  test(`${c.entry} loads none of ${c.forbidden.length === ALL.length ? 'pino, etcd3, net, child_process' : 'pino'}`, async () => {
    const mods = await graph(c.entry);
    assert.ok(mods.length > 0, 'the bundler found the entry');
    const bad = mods.filter((m) => c.forbidden.some((re) => re.test(m)));
    assert.deepEqual(bad, []);
  });
}

test('the check sees a violation: agent/common/log.ts itself loads pino', async () => {
  const mods = await graph('agent/common/log.ts');
  assert.ok(mods.some((m) => /node_modules\/pino\//.test(m)));
  const etcd = await graph('ipam-etcd/etcd-store.ts');
  assert.ok(etcd.some((m) => /node_modules\/etcd3\//.test(m)));
});
