/**
 * `petrelctl ui [--listen 127.0.0.1:9180|unix:/path] [--status-port 9099] [--refresh-ms 2000] [--netns NS]`
 * and `petrelctl ui forward --listen 127.0.0.1:9180 --to unix:/path`.
 *
 * `ui` serves the picture (server.ts) drawn from etcd (the global --etcd-endpoints) and every
 * node's agent status endpoint (http://NODE-ADDRESS:STATUS-PORT). It runs until SIGINT/SIGTERM.
 * With `--netns NS` the UI itself runs inside network namespace NS (where etcd and the agents
 * are reachable), on a Unix socket in a private temp dir, and this process relays --listen
 * (in the namespace petrelctl was started in) to it: the two-process setup in one command.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { IpamError } from '../../ipam-etcd/index.js';
import { type CtlContext, etcdConnection } from '../ctl/common.js';
import { ListenError, parseListen } from './listen.js';

const invalid = (msg: string) => new IpamError('invalid', msg);

function intFlag(v: string, flag: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw invalid(`${flag} must be ${min}..${max}`);
  return Number(v);
}

function listenOf(s: string, flag = '--listen') {
  try {
    return parseListen(s, flag);
  } catch (err) {
    if (err instanceof ListenError) throw invalid(err.message);
    throw err;
  }
}

/** Resolves on SIGINT/SIGTERM. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/** How to run this same petrelctl again: [node, bundle] for the bundle, [exe] for a single executable. */
function selfCommand(): string[] {
  const script = process.argv[1];
  if (script && script !== process.execPath && !script.startsWith('/$bunfs') && existsSync(script))
    return [process.execPath, script];
  return [process.execPath];
}

interface UiOptions {
  listen: string;
  statusPort: string;
  refreshMs: string;
  netns?: string;
  allowHost: string;
}

export function registerUi(program: Command, ctx: CtlContext): void {
  const ui = program
    .command('ui')
    .description('web page of the cluster: nodes, BGP sessions, blocks, pods, route feed, "A → B" check')
    .option('--listen <addr>', 'HOST:PORT, [V6]:PORT or unix:/path', '127.0.0.1:9180')
    .option('--status-port <port>', "the agents' status port (on each node address)", '9099')
    .option('--refresh-ms <ms>', 'how often to read etcd and ask the agents', '2000')
    .option('--netns <name>', 'run the UI inside this network namespace and relay --listen to it')
    .option('--allow-host <names>', 'comma-separated Host names to serve besides IP literals and localhost', '')
    .action(async (o: UiOptions) => {
      const listen = listenOf(o.listen);
      const statusPort = intFlag(o.statusPort, '--status-port', 1, 65535);
      const refreshMs = intFlag(o.refreshMs, '--refresh-ms', 200, 600_000);
      if (o.netns) {
        if (listen.kind !== 'tcp') throw invalid('--netns relays a TCP --listen (HOST:PORT)');
        await runInNetns(o.netns, listen, statusPort, refreshMs, o.allowHost, ctx);
        return;
      }
      const [{ EtcdHttpStore }, { Collector }, { startUiServer }, { systemClock }] = await Promise.all([
        import('../ctl/etcd-http-store.js'),
        import('./collector.js'),
        import('./server.js'),
        import('../common/clock.js'),
      ]);
      const log = (await ctx.log()).child({ component: 'ui' });
      const store = new EtcdHttpStore(etcdConnection(ctx.options()));
      const collector = new Collector({
        store,
        statusPort,
        refreshMs,
        requestTimeoutMs: Math.min(1500, refreshMs),
        clock: systemClock,
        log,
      });
      const allow = o.allowHost
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      const srv = await startUiServer(collector, listen, log, allow);
      collector.start();
      ctx.out(`petrelctl ui: serving ${srv.address}`);
      await untilSignal();
      await srv.close();
      await collector.stop();
      await store.close();
    });

  ui.command('forward')
    .description('relay a TCP address (e.g. 127.0.0.1:9180) to a UI listening on a Unix socket')
    .requiredOption('--to <unix:path>', "the UI's socket (petrelctl ui --listen unix:/path)")
    .option('--listen <addr>', 'HOST:PORT to listen on', '127.0.0.1:9180')
    .action(async (o: { to: string; listen: string }) => {
      // commander gives an option both levels define to the parent (`ui --listen`) wherever it
      // appears on the command line: take it from there when it was given.
      const listen = listenOf(ui.getOptionValueSource('listen') === 'cli' ? (ui.opts() as UiOptions).listen : o.listen);
      const to = listenOf(o.to, '--to');
      if (listen.kind !== 'tcp') throw invalid('--listen must be HOST:PORT');
      if (to.kind !== 'unix') throw invalid('--to must be unix:/path');
      const { startForwarder } = await import('./forward.js');
      const log = (await ctx.log()).child({ component: 'ui-forward' });
      const f = await startForwarder(listen, to.path, log);
      ctx.out(`petrelctl ui forward: http://${listen.host}:${f.port} -> unix:${to.path}`);
      await untilSignal();
      await f.close();
    });
}

/** `ui --netns NS`: the UI in NS on a private Unix socket, relayed from `listen` here. */
async function runInNetns(
  netns: string,
  listen: { kind: 'tcp'; host: string; port: number },
  statusPort: number,
  refreshMs: number,
  allowHost: string,
  ctx: CtlContext,
): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/.test(netns))
    throw invalid(`--netns ${JSON.stringify(netns)} is not a name`);
  const dir = mkdtempSync(join(tmpdir(), 'petrel-ui-'));
  const sock = join(dir, 'ui.sock');
  const o = ctx.options();
  const globals = ['--etcd-endpoints', o.etcdEndpoints, '--etcd-timeout-ms', String(o.etcdTimeoutMs)];
  if (o.etcdCa) globals.push('--etcd-ca', o.etcdCa);
  if (o.etcdCert) globals.push('--etcd-cert', o.etcdCert);
  if (o.etcdKey) globals.push('--etcd-key', o.etcdKey);
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      netns,
      ...selfCommand(),
      ...globals,
      'ui',
      '--listen',
      `unix:${sock}`,
      '--status-port',
      String(statusPort),
      '--refresh-ms',
      String(refreshMs),
      ...(allowHost ? ['--allow-host', allowHost] : []),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code) => resolve(code ?? 1));
    child.on('error', () => resolve(127));
  });
  const { startForwarder } = await import('./forward.js');
  const log = (await ctx.log()).child({ component: 'ui-forward' });
  try {
    // The child makes the socket once it listens.
    const { systemClock, sleep } = await import('../common/clock.js');
    let done = false;
    void exited.then(() => {
      done = true;
    });
    for (let i = 0; i < 300 && !existsSync(sock) && !done; i++) await sleep(systemClock, 50);
    if (!existsSync(sock))
      throw new Error(
        `the UI in netns ${netns} did not start (exit ${await Promise.race([exited, Promise.resolve('?')])})`,
      );
    const f = await startForwarder(listen, sock, log);
    ctx.out(`petrelctl ui: serving http://${listen.host}:${f.port} (UI in netns ${netns} on unix:${sock})`);
    const why = await Promise.race([untilSignal(), exited.then((c) => `ui exited ${c}`)]);
    await f.close();
    if (typeof why === 'string' && why.startsWith('ui exited')) throw new Error(`the UI in netns ${netns}: ${why}`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}
