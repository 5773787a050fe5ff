/**
 * petrel-controllers: the cluster-wide controllers (calico-kube-controllers), one active replica
 * by Lease leader election. Composition root only: config, root logger, wiring, signals, stop.
 *
 *   pod + node informers   list+watch of the Kubernetes API (agent/k8s)
 *   LeaderElector          Lease <namespace>/<lease-name>
 *   Controllers            IPAM GC against live pods; node controller (Node deleted -> release)
 *   status server          /healthz /readyz (synced views) /metrics /status
 *
 * SIGTERM/SIGINT: stop the rounds, release the Lease, exit 0.
 */
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { openEtcdIpam } from '../../ipam-etcd/index.js';
import { systemClock } from '../common/clock.js';
import { createLogger } from '../common/log.js';
import { writeErr } from '../common/output.js';
import { Informer, KubeApi, type KubeNode, type KubePod, loadKubeConfig } from '../k8s/index.js';
import { startAgentStatusServer } from '../status/index.js';
import { ConfigError, parseControllersConfig } from './config.js';
import { Controllers, createControllerMetrics } from './controllers.js';
import { LeaderElector } from './leader.js';

async function main(): Promise<number> {
  let cfg: ReturnType<typeof parseControllersConfig>;
  try {
    cfg = parseControllersConfig(process.argv.slice(2), process.env, hostname());
  } catch (err) {
    if (err instanceof ConfigError) {
      writeErr(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: cfg.logLevel, base: { component: 'petrel-controllers', identity: cfg.identity } });
  const clock = systemClock;
  const api = new KubeApi(loadKubeConfig({ kubeconfig: cfg.kubeconfig }));
  const { ipam, close } = await openEtcdIpam({
    endpoints: cfg.etcdEndpoints,
    tls: cfg.etcdTls.ca || cfg.etcdTls.cert ? cfg.etcdTls : undefined,
    log,
  });
  const registry = new Registry();
  const metrics = createControllerMetrics(registry);
  let controllers: Controllers | undefined;
  const informerOpts = { listTimeoutMs: cfg.apiTimeoutMs };
  const pods = new Informer<KubePod>('pods', api.pods(), clock, log.child({ component: 'informer' }), {}, informerOpts);
  const nodes = new Informer<KubeNode>(
    'nodes',
    api.nodes(),
    clock,
    log.child({ component: 'informer' }),
    { onDelete: () => controllers?.kick() },
    informerOpts,
  );
  const leader = new LeaderElector(
    {
      read: () => api.readLease(cfg.namespace, cfg.leaseName),
      create: (holder, dur, now) =>
        api.createLease(cfg.namespace, cfg.leaseName, {
          holderIdentity: holder,
          leaseDurationSeconds: dur,
          nowMs: now,
        }),
      update: (rec, times) =>
        api.updateLease(cfg.namespace, cfg.leaseName, { ...rec, acquireTime: rec.acquireTime }, times),
    },
    clock,
    log.child({ component: 'leader' }),
    {
      identity: cfg.identity,
      leaseDurationMs: cfg.leaseDurationMs,
      renewDeadlineMs: cfg.renewDeadlineMs,
      retryPeriodMs: cfg.retryPeriodMs,
      onStarted: () => controllers?.kick(),
    },
  );
  controllers = new Controllers(ipam, pods, nodes, leader, clock, log.child({ component: 'controllers' }), metrics, {
    leakGraceMs: cfg.leakGraceMs,
    intervalMs: cfg.intervalMs,
  });
  const c = controllers;
  pods.start();
  nodes.start();
  leader.start();
  c.start();
  const status = cfg.status
    ? await startAgentStatusServer(
        {
          registry,
          readiness: () => {
            const reasons = [
              ...(pods.isSynced() ? [] : ['pod view not synced']),
              ...(nodes.isSynced() ? [] : ['node view not synced']),
            ];
            return { ready: reasons.length === 0, reasons };
          },
          status: () => ({
            identity: cfg.identity,
            leader: leader.isLeader(),
            podsSynced: pods.isSynced(),
            nodesSynced: nodes.isSynced(),
            pods: pods.items().length,
            nodes: nodes.items().length,
            ...c.last,
          }),
          routes: () => [],
        },
        cfg.status.host,
        cfg.status.port,
      )
    : null;
  log.info(
    {
      namespace: cfg.namespace,
      lease: cfg.leaseName,
      leakGraceMs: cfg.leakGraceMs,
      intervalMs: cfg.intervalMs,
      statusPort: status?.port ?? null,
    },
    'petrel-controllers started',
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  log.info('stopping');
  await c.stop();
  await leader.stop();
  pods.stop();
  nodes.stop();
  await status?.close();
  await close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Open HTTP agents (keep-alive) of the API client must not hold the process.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    writeErr(`petrel-controllers: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 200).unref();
  },
);
