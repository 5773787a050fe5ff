/**
 * petrel-agent configuration: flags, each with an environment fallback, validated up front (fail
 * fast with a message naming the flag). Pure: takes argv and env, returns a Config or throws
 * ConfigError. Flag > environment > default.
 *
 *   --node-name NAME          PETREL_NODE_NAME       required; this node's name in IPAM
 *   --etcd-endpoints URLS     PETREL_ETCD_ENDPOINTS  required; comma-separated client URLs
 *   --socket PATH             PETREL_AGENT_SOCKET    default /var/run/petrel/agent.sock
 *   --etcd-ca FILE            PETREL_ETCD_CA         CA bundle for etcd TLS
 *   --etcd-cert FILE          PETREL_ETCD_CERT       client certificate (mTLS)
 *   --etcd-key FILE           PETREL_ETCD_KEY        client key (mTLS)
 *   --etcd-timeout-ms MS      PETREL_ETCD_TIMEOUT_MS default 5000; per etcd request
 *   --log-level LEVEL         PETREL_LOG_LEVEL       default info
 *   --log-file FILE           PETREL_LOG_FILE        default: stderr
 */
import type { LogLevel } from './common/logger.js';

export const DEFAULT_SOCKET = '/var/run/petrel/agent.sock';

export interface AgentConfig {
  nodeName: string;
  etcdEndpoints: string[];
  socketPath: string;
  etcdTls: { ca?: string; cert?: string; key?: string };
  etcdTimeoutMs: number;
  logLevel: LogLevel;
  logFile?: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const FLAGS = {
  'node-name': 'PETREL_NODE_NAME',
  'etcd-endpoints': 'PETREL_ETCD_ENDPOINTS',
  socket: 'PETREL_AGENT_SOCKET',
  'etcd-ca': 'PETREL_ETCD_CA',
  'etcd-cert': 'PETREL_ETCD_CERT',
  'etcd-key': 'PETREL_ETCD_KEY',
  'etcd-timeout-ms': 'PETREL_ETCD_TIMEOUT_MS',
  'log-level': 'PETREL_LOG_LEVEL',
  'log-file': 'PETREL_LOG_FILE',
} as const;
type Flag = keyof typeof FLAGS;

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const USAGE = `usage: petrel-agent --node-name NAME --etcd-endpoints URLS [--socket PATH]
  [--etcd-ca FILE --etcd-cert FILE --etcd-key FILE] [--etcd-timeout-ms MS] [--log-level LEVEL] [--log-file FILE]
every flag can also be set from the environment: ${Object.values(FLAGS).join(', ')}`;

/** DNS-1123 subdomain (Kubernetes node names). */
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function parseAgentConfig(argv: string[], env: Readonly<Record<string, string | undefined>>): AgentConfig {
  const given = new Map<Flag, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--help' || a === '-h') throw new ConfigError(USAGE);
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument ${a}\n${USAGE}`);
    const eq = a.indexOf('=');
    const name = (eq > 0 ? a.slice(2, eq) : a.slice(2)) as Flag;
    if (!(name in FLAGS)) throw new ConfigError(`unknown flag --${name}\n${USAGE}`);
    let value: string | undefined = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    value = value.trim();
    given.set(name, value);
  }
  const get = (f: Flag): string | undefined => {
    const v = given.get(f) ?? env[FLAGS[f]];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const nodeName = get('node-name');
  if (!nodeName) throw new ConfigError(`--node-name (or PETREL_NODE_NAME) is required\n${USAGE}`);
  if (!NODE_NAME.test(nodeName) || nodeName.length > 253) {
    throw new ConfigError(`--node-name ${JSON.stringify(nodeName)} is not a DNS-1123 subdomain`);
  }
  const endpoints = (get('etcd-endpoints') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (endpoints.length === 0)
    throw new ConfigError(`--etcd-endpoints (or PETREL_ETCD_ENDPOINTS) is required\n${USAGE}`);
  for (const e of endpoints) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(e)) throw new ConfigError(`--etcd-endpoints: ${e} is not http(s)://host:port`);
  }
  const socketPath = get('socket') ?? DEFAULT_SOCKET;
  if (!socketPath.startsWith('/')) throw new ConfigError(`--socket must be an absolute path, got ${socketPath}`);
  const timeout = Number(get('etcd-timeout-ms') ?? 5000);
  if (!Number.isInteger(timeout) || timeout <= 0) throw new ConfigError('--etcd-timeout-ms must be a positive integer');
  const level = get('log-level') ?? 'info';
  if (!(LEVELS as readonly string[]).includes(level))
    throw new ConfigError(`--log-level must be one of ${LEVELS.join(', ')}`);
  const tls: AgentConfig['etcdTls'] = {};
  const ca = get('etcd-ca');
  const cert = get('etcd-cert');
  const key = get('etcd-key');
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError('--etcd-cert and --etcd-key go together');
  const cfg: AgentConfig = {
    nodeName,
    etcdEndpoints: endpoints,
    socketPath,
    etcdTls: tls,
    etcdTimeoutMs: timeout,
    logLevel: level as LogLevel,
  };
  const logFile = get('log-file');
  if (logFile) cfg.logFile = logFile;
  return cfg;
}
