/**
 * petrelctl bgp run --config FILE   run the BGP speaker alone (route reflector, debugging, tests):
 *                                   one JSON line per best-route change on stdout, logs on stderr,
 *                                   SIGHUP -> reload peers and announcements from FILE,
 *                                   SIGTERM/SIGINT -> Cease to every peer and a clean exit.
 * petrelctl bgp status [--json] [--endpoint HOST:PORT]   peers of a running speaker, like
 *                                   `birdc show protocols`; Prometheus metrics at /metrics there.
 * petrelctl bgp refresh|reset|shutdown|enable PEER [--message TEXT]   per-peer admin actions.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import {
  ADMIN_HEADER,
  BgpConfigError,
  createBgpMetrics,
  type PeerStatus,
  parseBgpConfigText,
  Speaker,
  type SpeakerStatus,
  startStatusServer,
} from '../../bgp/index.js';
import { sleep, systemClock } from '../common/clock.js';
import { createLogger, type LogLevel } from '../common/log.js';
import { type CtlContext, printJson, table } from './common.js';

/** Route-event lines per stdout write at most. */
const BATCH_LINES = 4096;

export function registerBgp(program: Command, ctx: CtlContext): void {
  const bgp = program.command('bgp').description('run or inspect the standalone BGP speaker');

  bgp
    .command('run')
    .description('run the BGP speaker from a JSON config; best-route changes as JSON lines on stdout')
    .requiredOption('--config <file>', 'JSON config file')
    .action(async (opts: { config: string }) => {
      let text: string;
      try {
        text = readFileSync(opts.config, 'utf8');
      } catch (err) {
        throw new BgpConfigError(opts.config, `cannot read: ${(err as Error).message}`);
      }
      const cfg = parseBgpConfigText(text);
      const levelSource = program.getOptionValueSource('logLevel');
      const level = (levelSource === 'default' ? 'info' : program.opts().logLevel) as LogLevel;
      const log = createLogger({ level, base: { component: 'petrelctl-bgp' } });
      const speaker = new Speaker(cfg.speaker, { log });
      // One write per burst, not per route: a received UPDATE can change hundreds of routes, and
      // a write per line (synchronous when stdout is a file) costs more than the RIB work. At most
      // BATCH_LINES per write, so a peer dropping a full table does not build a 100 MB string.
      let batch: string[] = [];
      let last: {
        hops?: readonly string[];
        path?: readonly number[] | undefined;
        peer?: string | undefined;
        event?: string;
        family?: string;
        head: string;
        tail: string;
      } = { head: '', tail: '' };
      // Back-pressure: when stdout does not keep up (a slow reader of the pipe), the speaker stops
      // reading from its peers (and pauses withdrawal sweeps) until stdout drains, so no more
      // than about one turn's worth of lines is ever buffered here.
      const flushBatch = () => {
        const lines = batch;
        batch = [];
        lines.push('');
        if (!process.stdout.write(lines.join('\n')) && !speaker.inputIsPaused) {
          speaker.pauseInput();
          process.stdout.once('drain', () => speaker.resumeInput());
        }
      };
      speaker.on('route', (e) => {
        if (batch.length === 0) queueMicrotask(() => batch.length > 0 && flushBatch());
        // stdout contract: {"event":"add"|"withdraw","prefix","nextHops"} (+ detail fields).
        // Built by hand (same text as JSON.stringify of the object in this key order): one line
        // per route, so no intermediate objects. Every string in it is an address, a prefix or
        // a family name as the speaker writes them (no quotes or backslashes to escape).
        // The text after the prefix is the same for every route of one received UPDATE (the
        // speaker shares nextHops/asPath arrays between their events): built once.
        if (
          e.nextHops !== last.hops ||
          e.asPath !== last.path ||
          e.peer !== last.peer ||
          e.event !== last.event ||
          e.family !== last.family
        ) {
          const hops = e.nextHops.length === 0 ? '[]' : `["${e.nextHops.join('","')}"]`;
          last = {
            hops: e.nextHops,
            path: e.asPath,
            peer: e.peer,
            event: e.event,
            family: e.family,
            head: `{"event":${e.event === 'withdraw' ? '"withdraw"' : '"add"'},"prefix":"`,
            tail: `","nextHops":${hops}${e.event === 'replace' ? ',"replace":true' : ''},"family":"${e.family}"${e.peer ? `,"peer":"${e.peer}"` : ''}${e.asPath ? `,"asPath":[${e.asPath.join(',')}]` : ''}}`,
          };
        }
        const n = batch.push(last.head + e.prefix + last.tail);
        if (n >= BATCH_LINES) flushBatch();
      });
      for (const p of cfg.peers) speaker.addPeer(p);
      for (const a of cfg.announce) speaker.announce(a.prefix, a.options);
      const registry = createBgpMetrics(speaker);
      const status = await startStatusServer(speaker, registry, cfg.status.address, cfg.status.port, { log });
      await speaker.start();
      log.info(
        { status: `${cfg.status.address}:${status.port}`, peers: cfg.peers.length, announce: cfg.announce.length },
        'bgp speaker running',
      );
      // SIGHUP: re-read the file and apply the difference (declare, then apply: Speaker.applyConfig
      // over the pure diff of bgp/speaker/config-diff.ts). Peers added/removed/changed and
      // announcements; unchanged sessions stay up. Speaker-wide settings and the status endpoint
      // need a restart: logged, not applied. An unreadable or invalid file changes nothing.
      let current = cfg;
      const onHup = () => {
        try {
          const next = parseBgpConfigText(readFileSync(opts.config, 'utf8'));
          const diff = speaker.applyConfig(next);
          if (next.status.address !== current.status.address || next.status.port !== current.status.port)
            log.warn({ status: next.status }, 'status endpoint changed: not applied until restart');
          current = next;
          log.info(
            {
              peers: next.peers.length,
              announce: next.announce.length,
              added: diff.addPeers.length,
              removed: diff.removePeers.length,
              changed: diff.changePeers.length,
              unchanged: diff.unchangedPeers.length,
            },
            'config reloaded',
          );
        } catch (err) {
          log.error({ err }, 'config reload failed; keeping the running config');
        }
      };
      process.on('SIGHUP', onHup);
      await new Promise<void>((resolve) => {
        const onSignal = (sig: NodeJS.Signals) => {
          process.off('SIGHUP', onHup);
          log.info({ signal: sig }, 'stopping: Cease to all peers');
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
          resolve();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
      });
      await speaker.stop('petrelctl bgp run stopping');
      await status.close();
      // Give the kernel a moment to put the NOTIFICATIONs on the wire before exit.
      await sleep(systemClock, 200);
    });

  bgp
    .command('status')
    .description('show the peers of a running `petrelctl bgp run`')
    .option('--json', 'print the raw status JSON')
    .option('--endpoint <host:port>', 'status endpoint of the speaker', '127.0.0.1:9179')
    .action(async (opts: { json?: boolean; endpoint: string }) => {
      const url = `http://${opts.endpoint}/status`;
      let st: SpeakerStatus;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        st = (await res.json()) as SpeakerStatus;
      } catch (err) {
        throw new Error(`cannot reach the speaker at ${url}: ${(err as Error).message}`, { cause: err });
      }
      if (opts.json) {
        printJson(st);
        return;
      }
      ctx.out(
        `BGP speaker AS ${st.asn}, router ID ${st.routerId}${st.routeReflector ? `, route reflector (cluster ${st.clusterId})` : ''}, ${st.locRibPrefixes} prefixes in Loc-RIB`,
      );
      const rows = [['PEER', 'AS', 'STATE', 'UPTIME', 'RECEIVED', 'ACCEPTED', 'ADVERTISED', 'LAST ERROR']];
      for (const p of st.peers) rows.push(peerRow(p));
      ctx.out(table(rows));
    });

  registerAdmin(bgp, ctx);
}

function registerAdmin(bgp: Command, ctx: CtlContext): void {
  const admin = (name: string, description: string, action: string, withMessage: boolean) => {
    const c = bgp
      .command(`${name} <peer>`)
      .description(description)
      .option('--endpoint <host:port>', 'status endpoint of the speaker', '127.0.0.1:9179');
    if (withMessage) c.option('--message <text>', 'shutdown communication sent to the peer (RFC 9003)');
    c.action(async (peer: string, opts: { endpoint: string; message?: string }) => {
      const q = opts.message ? `?message=${encodeURIComponent(opts.message)}` : '';
      const url = `http://${opts.endpoint}/peers/${encodeURIComponent(peer)}/${action}${q}`;
      // The admin header keeps browsers from posting this cross-site (status-server.ts).
      const res = await fetch(url, {
        method: 'POST',
        headers: { [ADMIN_HEADER]: '1' },
        signal: AbortSignal.timeout(5000),
      });
      const body = await res.text();
      if (!res.ok) throw new Error(`${action} ${peer}: ${body.trim()}`);
      ctx.out(`${action} ${peer}: ok`);
    });
  };
  admin('refresh', 'soft reset: ask the peer to re-send its routes (ROUTE-REFRESH) and re-send ours', 'refresh', false);
  admin('reset', 'hard reset: Cease 6/4 and reconnect', 'reset', true);
  admin('shutdown', 'administratively shut the session down (Cease 6/2)', 'shutdown', true);
  admin('enable', 'bring an administratively shut session back', 'enable', false);
}

function peerRow(p: PeerStatus): string[] {
  return [
    p.address,
    String(p.asn),
    p.adminShutdown ? `${p.state} (admin down)` : p.state,
    p.state === 'Established' ? formatUptime(p.uptimeSec) : '-',
    String(p.prefixesReceived),
    String(p.prefixesAccepted),
    String(p.prefixesAdvertised),
    p.lastError ?? '',
  ];
}

function formatUptime(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h > 0 ? `${h}h` : ''}${m}m${s % 60}s`;
}
