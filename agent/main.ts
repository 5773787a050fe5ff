/**
 * petrel-agent: the per-node daemon. Composition root only (STYLE §2): config, root logger,
 * wiring, signals, shutdown. It serves IPAM to the CNI plugins over a Unix socket, registers the
 * node in etcd, runs the BGP speaker (agent/node-agent.ts) and the status endpoint. The kernel
 * route reconciler (agent/routing) takes NodeAgent's `snapshot` events.
 */
import { openEtcdIpam } from '../ipam-etcd/index.js';
import { systemClock } from './common/clock.js';
import { createLogger } from './common/log.js';
import { writeErr } from './common/output.js';
import { ConfigError, parseAgentConfig } from './config.js';
import { EtcdIpamBackend, IpamService, listenIpamSocket } from './ipam-service/index.js';
import { NodeAgent } from './node-agent.js';
import { startAgentStatusServer } from './status/index.js';
import { ClusterEtcd } from './sync/etcd.js';

/** A running part of the agent that stops on shutdown, last started first stopped. */
interface Stoppable {
  name: string;
  stop(): Promise<void>;
}

async function main(): Promise<number> {
  let cfg: ReturnType<typeof parseAgentConfig>;
  try {
    cfg = parseAgentConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      writeErr(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: cfg.logLevel, file: cfg.logFile, base: { component: 'petrel-agent' } });
  const parts: Stoppable[] = [];
  const stopAll = async () => {
    for (const p of parts.reverse()) {
      try {
        await p.stop();
      } catch (err) {
        log.warn({ err, part: p.name }, 'stop failed');
      }
    }
  };
  let fatal: ((err: Error) => void) | undefined;
  let pendingFatal: Error | undefined;
  try {
    const etcd = await openEtcdIpam({
      endpoints: cfg.etcdEndpoints,
      tls: cfg.etcdTls,
      timeoutMs: cfg.etcdTimeoutMs,
      log,
    });
    parts.push({ name: 'etcd', stop: () => etcd.close() });
    const cluster = await ClusterEtcd.open({
      endpoints: cfg.etcdEndpoints,
      tls: cfg.etcdTls,
      timeoutMs: cfg.etcdTimeoutMs,
    });
    parts.push({ name: 'cluster-etcd', stop: () => cluster.close() });
    const node = new NodeAgent(cfg, cluster, etcd.ipam, { clock: systemClock, log });
    const service = new IpamService({ ipam: new EtcdIpamBackend(etcd.ipam), nodeName: cfg.nodeName, log });
    const handle = service.handle.bind(service);
    service.handle = async (req) => {
      const res = await handle(req);
      node.metrics.ipamRequests.inc({ op: req.op, result: res.ok ? 'ok' : (res.error?.kind ?? 'error') });
      return res;
    };
    const server = await listenIpamSocket(cfg.socketPath, service, log);
    parts.push({ name: 'ipam-socket', stop: () => server.close() });
    if (cfg.statusListen) {
      const st = await startAgentStatusServer(
        {
          readiness: () => node.readiness(),
          status: () => node.status(),
          routes: () => node.routes(),
          registry: node.metrics.registry,
        },
        cfg.statusListen.host,
        cfg.statusListen.port,
      );
      parts.push({ name: 'status', stop: () => st.close() });
      log.info({ listen: `${cfg.statusListen.host}:${st.port}` }, 'status endpoint listening');
    }
    parts.push({ name: 'node', stop: () => node.stop(true) });
    node.on('fatal', (err) => {
      if (fatal) fatal(err);
      else pendingFatal = err;
    });
    await node.start();
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    process.stderr.write(`petrel-agent: ${(err as Error).message}\n`);
    await stopAll();
    return 1;
  }

  log.info({ node: cfg.nodeName, socket: cfg.socketPath, etcd: cfg.etcdEndpoints }, 'petrel-agent started');
  return new Promise<number>((resolve) => {
    let stopping = false;
    fatal = (err) => {
      if (stopping) return;
      stopping = true;
      log.fatal({ err: err.message }, 'cannot run');
      process.stderr.write(`petrel-agent: ${err.message}\n`);
      void stopAll().then(() => resolve(1));
    };
    if (pendingFatal) fatal(pendingFatal);
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig }, 'shutting down');
      // A stuck shutdown must not hang the node's drain: give up after 10 s.
      const force = setTimeout(() => resolve(1), 10_000);
      force.unref();
      void stopAll().then(() => {
        clearTimeout(force);
        log.info('stopped');
        resolve(0);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

main().then(
  (code) => {
    process.exitCode = code;
    // Handles (etcd channels) may linger after close; the agent is done.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    writeErr(`petrel-agent: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
