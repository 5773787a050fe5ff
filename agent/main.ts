/**
 * petrel-agent: the per-node daemon (calico-node: Felix + BIRD + confd in one process).
 * Composition root only (STYLE §2): config, root logger, wiring, signals, shutdown.
 *
 *   IPAM socket    the CNI plugins' IPAM (answers code 11 while etcd is away)
 *   NodeAgent      node record + lease, cluster sync from etcd, BGP speaker
 *   Dataplane      kernel routes (rtnetlink via petrel-netlink, else `ip -batch`), tunnel
 *                  devices, natOutgoing, from the NodeAgent's snapshots
 *   status server  /healthz /readyz /metrics /status /routes
 *
 * SIGTERM/SIGINT: exit 0 within 10 s; kernel routes stay, BGP sessions close without a
 * NOTIFICATION so peers keep this node's routes for the graceful-restart time; the lease is
 * left to expire.
 */
import { openEtcdIpam } from '../ipam-etcd/index.js';
import { systemClock } from './common/clock.js';
import { createLogger } from './common/log.js';
import { writeErr } from './common/output.js';
import { ConfigError, parseAgentConfig } from './config.js';
import { Dataplane } from './dataplane.js';
import { EtcdIpamBackend, IpamService, listenIpamSocket, podAnnotationsFrom } from './ipam-service/index.js';
import { internalIpsOf } from './node/autodetect.js';
import { NodeAgent } from './node-agent.js';
import { findNetlinkHelper, NETLINK_HELPER } from './routing/kernel-netlink.js';
import { MAX_WATCHERS, startAgentStatusServer } from './status/index.js';
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
  const netlinkHelper = cfg.routeWriter === 'iproute2' ? undefined : findNetlinkHelper(process.argv[1]);
  if (cfg.routeWriter === 'netlink' && !netlinkHelper) {
    writeErr(`--route-writer netlink: ${NETLINK_HELPER} is not beside the agent, in ../dist-sea or on PATH\n`);
    return 2;
  }
  const log = createLogger({ level: cfg.logLevel, file: cfg.logFile, base: { component: 'petrel-agent' } });
  log.info({ routeWriter: netlinkHelper ? 'netlink' : 'iproute2', helper: netlinkHelper }, 'route writer');
  const parts: Stoppable[] = [];
  let agent: NodeAgent | undefined;
  let dataplane: Dataplane | undefined;
  let fatal: ((err: Error) => void) | undefined;
  let fatalErr: Error | undefined;
  // SIGTERM keeps BGP sessions for graceful restart; a fatal error closes them with a Cease.
  let stopGraceful = true;
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
    // The Kubernetes client (@kubernetes/client-node) is loaded only when the agent talks to an API
    // server: it costs ~75 MB of RSS, most of an agent's idle footprint without it.
    const k8s = cfg.kube ? await import('./k8s/index.js') : undefined;
    const kube = cfg.kube && k8s ? new k8s.KubeApi(k8s.loadKubeConfig({ kubeconfig: cfg.kube.kubeconfig })) : undefined;
    const service = new IpamService({
      ipam: new EtcdIpamBackend(etcd.ipam),
      nodeName: cfg.nodeName,
      log,
      onResult: (op, result) => agent?.metrics.ipamRequests.inc({ op, result }),
      podMtu: () => dataplane?.podMtu() ?? undefined,
      // Pod annotations (petrel.io/ipv4pools, ipv6pools, ipAddrs) steer a Kubernetes pod's addresses.
      ...(kube ? { podAnnotations: podAnnotationsFrom(kube) } : {}),
    });
    const server = await listenIpamSocket(cfg.socketPath, service, log);
    parts.push({ name: 'ipam-socket', stop: () => server.close() });

    const cluster = await ClusterEtcd.open({
      endpoints: cfg.etcdEndpoints,
      tls: cfg.etcdTls,
      timeoutMs: cfg.etcdTimeoutMs,
    });
    parts.push({ name: 'cluster-etcd', stop: () => cluster.close() });
    agent = new NodeAgent(cfg, cluster, etcd.ipam, {
      clock: systemClock,
      log: log.child({ component: 'node' }),
      // kubernetes-internal-ip: this node's Node object (null -> no address: the detection says so).
      ...(kube ? { internalIps: async () => internalIpsOf((await kube.readNode(cfg.nodeName)) ?? {}) } : {}),
    });
    const dp = new Dataplane({
      log,
      clock: systemClock,
      externalRoutes: cfg.importExternalRoutes,
      ...(netlinkHelper ? { netlinkHelper, netlinkFallback: cfg.routeWriter === 'auto' } : {}),
      onPass: (ms) => agent?.metrics.reconcileDuration.observe(ms / 1000),
    });
    dataplane = dp;
    const na = agent;
    na.hooks.routesProgrammed = () => dp.routesProgrammed();
    na.hooks.routesNotReady = () => dp.notReady();
    na.hooks.dataplane = () => dp.status();
    na.on('snapshot', (snap) => dp.update(snap, na.sourcesComplete()));
    na.on('learned', (changes) => dp.changeLearned(changes));
    na.on('learnedReplace', (all) => dp.replaceLearned(all));
    na.on('fatal', (err) => {
      log.fatal({ err: err.message }, 'not routing');
      fatalErr = err;
      fatal?.(err);
    });
    dp.start();
    parts.push({ name: 'dataplane', stop: () => dp.stop() });
    if (kube && k8s) {
      // Kubernetes: NetworkUnavailable=False once this node's routes are in place.
      const nc = new k8s.NetworkCondition(
        cfg.nodeName,
        kube,
        () => na.readiness().ready && dp.notReady() === undefined,
        systemClock,
        log.child({ component: 'k8s' }),
      );
      nc.start();
      parts.push({ name: 'network-condition', stop: async () => nc.stop() });
      if (!cfg.labels) {
        // The Node's labels are the node's labels (pool nodeSelectors), unless --labels sets them.
        const ls = new k8s.NodeLabelSync(
          cfg.nodeName,
          kube.nodes({ name: cfg.nodeName }),
          (labels) => na.setLabels(labels),
          systemClock,
          log.child({ component: 'k8s' }),
        );
        ls.start();
        parts.push({ name: 'node-labels', stop: async () => ls.stop() });
      }
    }
    parts.push({ name: 'node', stop: () => na.stop(stopGraceful) });
    if (cfg.statusListen) {
      // Each /routes/watch stream adds a 'route' and a 'routesReset' listener.
      na.setMaxListeners(MAX_WATCHERS + 10);
      const st = await startAgentStatusServer(
        {
          readiness: () => na.readiness(),
          status: () => na.status(),
          routes: () => na.routes(),
          registry: na.metrics.registry,
          watchRoutes: (onChange, onReset) => {
            na.on('route', onChange);
            na.on('routesReset', onReset);
            return () => {
              na.off('route', onChange);
              na.off('routesReset', onReset);
            };
          },
        },
        cfg.statusListen.host,
        cfg.statusListen.port,
      );
      parts.push({ name: 'status', stop: () => st.close() });
    }
    await na.start();
  } catch (err) {
    log.fatal({ err }, 'start-up failed');
    writeErr(`petrel-agent: ${(err as Error).message}\n`);
    await stopAll();
    return 1;
  }
  if (!fatalErr)
    log.info({ node: cfg.nodeName, socket: cfg.socketPath, etcd: cfg.etcdEndpoints }, 'petrel-agent started');
  return new Promise<number>((resolve) => {
    let stopping = false;
    fatal = (err) => {
      if (stopping) return;
      stopping = true;
      writeErr(`petrel-agent: ${err.message}\n`);
      stopGraceful = false;
      void stopAll().then(() => resolve(1));
    };
    if (fatalErr) fatal(fatalErr);
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
