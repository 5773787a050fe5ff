/**
 * petrel-controllers configuration: flags, each also settable from the environment (the
 * Deployment sets them from the ConfigMap and the downward API). Pure: argv + env -> Config.
 */
import type { LogLevel } from '../common/logger.js';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const FLAGS = {
  kubeconfig: 'KUBECONFIG',
  namespace: 'POD_NAMESPACE',
  identity: 'POD_NAME',
  'lease-name': 'PETREL_LEADER_LEASE',
  'etcd-endpoints': 'PETREL_ETCD_ENDPOINTS',
  'etcd-ca': 'PETREL_ETCD_CA',
  'etcd-cert': 'PETREL_ETCD_CERT',
  'etcd-key': 'PETREL_ETCD_KEY',
  'leak-grace-period-sec': 'PETREL_LEAK_GRACE_PERIOD_SEC',
  'interval-sec': 'PETREL_CONTROLLERS_INTERVAL_SEC',
  'lease-duration-sec': 'PETREL_LEASE_DURATION_SEC',
  'renew-deadline-sec': 'PETREL_RENEW_DEADLINE_SEC',
  'retry-period-sec': 'PETREL_RETRY_PERIOD_SEC',
  'api-timeout-sec': 'PETREL_API_TIMEOUT_SEC',
  'status-listen': 'PETREL_STATUS_LISTEN',
  'log-level': 'PETREL_LOG_LEVEL',
} as const;
type Flag = keyof typeof FLAGS;

export const USAGE = `usage: petrel-controllers --etcd-endpoints URLS [--kubeconfig FILE] [--namespace NS] [--identity NAME]
  [--lease-name NAME] [--etcd-ca FILE --etcd-cert FILE --etcd-key FILE]
  [--leak-grace-period-sec S (default 900; 0 disables the IPAM GC)] [--interval-sec S (default grace/2, at most 300)]
  [--lease-duration-sec S (15)] [--renew-deadline-sec S (10)] [--retry-period-sec S (2)]
  [--api-timeout-sec S (30; a list page not answered by then is retried)]
  [--status-listen HOST:PORT|none (0.0.0.0:9094)] [--log-level LEVEL]
without --kubeconfig the in-cluster configuration is used (service account, KUBERNETES_SERVICE_HOST)
every flag can also be set from the environment: ${Object.values(FLAGS).join(', ')}`;

export interface ControllersConfig {
  kubeconfig?: string;
  namespace: string;
  identity: string;
  leaseName: string;
  etcdEndpoints: string[];
  etcdTls: { ca?: string; cert?: string; key?: string };
  leakGraceMs: number;
  intervalMs: number;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  apiTimeoutMs: number;
  status: { host: string; port: number } | null;
  logLevel: LogLevel;
}

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function parseControllersConfig(
  argv: string[],
  env: Readonly<Record<string, string | undefined>>,
  hostname: string,
): ControllersConfig {
  const given = new Map<Flag, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') throw new ConfigError(USAGE);
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument ${a}\n${USAGE}`);
    const eq = a.indexOf('=');
    const name = (eq > 0 ? a.slice(2, eq) : a.slice(2)) as Flag;
    if (!(name in FLAGS)) throw new ConfigError(`unknown flag --${name}\n${USAGE}`);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    given.set(name, value.trim());
  }
  const get = (f: Flag): string | undefined => {
    const v = given.get(f) ?? env[FLAGS[f]];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const secs = (f: Flag, dflt: number, min: number): number => {
    const raw = get(f);
    const n = raw === undefined ? dflt : Number(raw);
    if (!Number.isFinite(n) || n < min) throw new ConfigError(`--${f} must be a number >= ${min}, got ${raw}`);
    return Math.round(n * 1000);
  };
  const endpoints = (get('etcd-endpoints') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (endpoints.length === 0)
    throw new ConfigError(`--etcd-endpoints (or PETREL_ETCD_ENDPOINTS) is required\n${USAGE}`);
  for (const e of endpoints)
    if (!/^https?:\/\/[^/\s]+\/?$/.test(e)) throw new ConfigError(`--etcd-endpoints: ${e} is not http(s)://host:port`);
  const tls: ControllersConfig['etcdTls'] = {};
  const [ca, cert, key] = [get('etcd-ca'), get('etcd-cert'), get('etcd-key')];
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError('--etcd-cert and --etcd-key go together');
  const leakGraceMs = secs('leak-grace-period-sec', 900, 0);
  const intervalMs = secs('interval-sec', Math.min(300, Math.max(1, leakGraceMs / 2000)), 0.05);
  const leaseDurationMs = secs('lease-duration-sec', 15, 1);
  const renewDeadlineMs = secs('renew-deadline-sec', 10, 0.5);
  const retryPeriodMs = secs('retry-period-sec', 2, 0.05);
  if (renewDeadlineMs >= leaseDurationMs)
    throw new ConfigError('--renew-deadline-sec must be shorter than --lease-duration-sec');
  if (retryPeriodMs >= renewDeadlineMs)
    throw new ConfigError('--retry-period-sec must be shorter than --renew-deadline-sec');
  const level = get('log-level') ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level))
    throw new ConfigError(`--log-level must be one of ${LEVELS.join(', ')}`);
  const listen = get('status-listen') ?? '0.0.0.0:9094';
  let status: ControllersConfig['status'] = null;
  if (listen !== 'none') {
    const m = /^(.+):(\d+)$/.exec(listen);
    if (!m || Number(m[2]) > 65535) throw new ConfigError(`--status-listen ${listen} is not HOST:PORT or none`);
    status = { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
  }
  const cfg: ControllersConfig = {
    namespace: get('namespace') ?? 'petrel-system',
    identity: get('identity') ?? hostname,
    leaseName: get('lease-name') ?? 'petrel-controllers',
    etcdEndpoints: endpoints,
    etcdTls: tls,
    leakGraceMs,
    intervalMs,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    apiTimeoutMs: secs('api-timeout-sec', 30, 0.1),
    status,
    logLevel: level as LogLevel,
  };
  const kc = get('kubeconfig');
  if (kc) cfg.kubeconfig = kc;
  return cfg;
}
