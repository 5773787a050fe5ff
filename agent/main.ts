/**
 * petrel-agent: the per-node daemon. Composition root only (STYLE §2): config, root logger,
 * wiring, signals, shutdown. Today it serves IPAM to the CNI plugins over a Unix socket; the
 * routing issue adds BGP and the route table next to the IPAM service here.
 */
import { openEtcdIpam } from '../ipam-etcd/index.js';
import { createLogger } from './common/log.js';
import { writeErr } from './common/output.js';
import { ConfigError, parseAgentConfig } from './config.js';
import { EtcdIpamBackend, IpamService, listenIpamSocket } from './ipam-service/index.js';

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
  try {
    const etcd = await openEtcdIpam({
      endpoints: cfg.etcdEndpoints,
      tls: cfg.etcdTls,
      timeoutMs: cfg.etcdTimeoutMs,
      log,
    });
    parts.push({ name: 'etcd', stop: () => etcd.close() });
    const service = new IpamService({ ipam: new EtcdIpamBackend(etcd.ipam), nodeName: cfg.nodeName, log });
    const server = await listenIpamSocket(cfg.socketPath, service, log);
    parts.push({ name: 'ipam-socket', stop: () => server.close() });
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    await stopAll();
    return 1;
  }
  log.info({ node: cfg.nodeName, socket: cfg.socketPath, etcd: cfg.etcdEndpoints }, 'petrel-agent started');
  return new Promise<number>((resolve) => {
    let stopping = false;
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
