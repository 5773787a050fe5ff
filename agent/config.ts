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
 *   --ip autodetect|ADDR/LEN|none        PETREL_IP    default autodetect (Calico IP)
 *   --ip6 autodetect|ADDR/LEN|none       PETREL_IP6   default none (Calico IP6)
 *   --ip-autodetection-method M          PETREL_IP_AUTODETECTION_METHOD   default first-found
 *   --ip6-autodetection-method M         PETREL_IP6_AUTODETECTION_METHOD  default first-found
 *   --as N                    PETREL_AS              this node's AS (default: the cluster's)
 *   --labels K=V[,K=V]        PETREL_NODE_LABELS     node labels (default: keep what etcd has)
 *   --route-reflector-cluster-id ID   PETREL_ROUTE_REFLECTOR_CLUSTER_ID  make this node a reflector
 *   --status-listen HOST:PORT PETREL_STATUS_LISTEN   default 127.0.0.1:9099; "none" = off
 *   --bgp-listen-address ADDR PETREL_BGP_LISTEN_ADDRESS default :: with IPv6, else 0.0.0.0
 *   --networking-backend bgp|none  PETREL_NETWORKING_BACKEND  default bgp (Calico CALICO_NETWORKING_BACKEND)
 *   --node-lease-ttl S        PETREL_NODE_LEASE_TTL  default 30; liveness lease TTL in seconds
 *   --import-external-routes true|false  PETREL_IMPORT_EXTERNAL_ROUTES  default false: routes
 *                             learned from external (non-node) BGP peers are not programmed
 *   --route-writer auto|netlink|iproute2  PETREL_ROUTE_WRITER  default auto: routes through the
 *                             petrel-netlink helper (rtnetlink) when it is installed, else `ip -batch`
 */
import type { LogLevel } from './common/logger.js';
import { type DetectMethod, parseDetectMethod } from './node/autodetect.js';
import { checkAddrLen, checkIp } from './node/record.js';

export const DEFAULT_SOCKET = '/var/run/petrel/agent.sock';

export interface AgentConfig {
  nodeName: string;
  etcdEndpoints: string[];
  socketPath: string;
  etcdTls: { ca?: string; cert?: string; key?: string };
  etcdTimeoutMs: number;
  logLevel: LogLevel;
  logFile?: string;
  /** Node address per family: detect, a fixed "ADDR/LEN", or none. */
  ip: AddrSetting;
  ip6: AddrSetting;
  ipDetect: DetectMethod;
  ip6Detect: DetectMethod;
  asNumber?: number;
  labels?: Record<string, string>;
  routeReflectorClusterId?: string;
  /** Undefined = no status server. */
  statusListen?: { host: string; port: number };
  bgpListenAddress?: string;
  networkingBackend: 'bgp' | 'none';
  nodeLeaseTtlSec: number;
  /** Program routes learned from external (non-node) BGP peers, also outside the pools. */
  importExternalRoutes: boolean;
  /** How routes reach the kernel (agent/routing/kernel-netlink.ts); auto = netlink when installed. */
  routeWriter: 'auto' | 'netlink' | 'iproute2';
}

export type AddrSetting = { kind: 'autodetect' } | { kind: 'none' } | { kind: 'fixed'; addrLen: string };

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
  ip: 'PETREL_IP',
  ip6: 'PETREL_IP6',
  'ip-autodetection-method': 'PETREL_IP_AUTODETECTION_METHOD',
  'ip6-autodetection-method': 'PETREL_IP6_AUTODETECTION_METHOD',
  as: 'PETREL_AS',
  labels: 'PETREL_NODE_LABELS',
  'route-reflector-cluster-id': 'PETREL_ROUTE_REFLECTOR_CLUSTER_ID',
  'status-listen': 'PETREL_STATUS_LISTEN',
  'bgp-listen-address': 'PETREL_BGP_LISTEN_ADDRESS',
  'networking-backend': 'PETREL_NETWORKING_BACKEND',
  'node-lease-ttl': 'PETREL_NODE_LEASE_TTL',
  'import-external-routes': 'PETREL_IMPORT_EXTERNAL_ROUTES',
  'route-writer': 'PETREL_ROUTE_WRITER',
} as const;
type Flag = keyof typeof FLAGS;

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const USAGE = `usage: petrel-agent --node-name NAME --etcd-endpoints URLS [--socket PATH]
  [--etcd-ca FILE --etcd-cert FILE --etcd-key FILE] [--etcd-timeout-ms MS] [--log-level LEVEL] [--log-file FILE]
  [--ip autodetect|ADDR/LEN|none] [--ip6 autodetect|ADDR/LEN|none]
  [--ip-autodetection-method first-found|can-reach=DEST|interface=REGEX|skip-interface=REGEX|cidr=CIDR[,CIDR]]
  [--ip6-autodetection-method ...] [--as N] [--labels K=V,...] [--route-reflector-cluster-id A.B.C.D]
  [--status-listen HOST:PORT|none] [--bgp-listen-address ADDR] [--networking-backend bgp|none] [--node-lease-ttl S]
  [--import-external-routes true|false] [--route-writer auto|netlink|iproute2]
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
  const cfg = {
    nodeName,
    etcdEndpoints: endpoints,
    socketPath,
    etcdTls: tls,
    etcdTimeoutMs: timeout,
    logLevel: level as LogLevel,
  } as AgentConfig;
  const logFile = get('log-file');
  if (logFile) cfg.logFile = logFile;
  const fail = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError((err as Error).message);
    }
  };
  const addr = (flag: 'ip' | 'ip6', family: 4 | 6, dflt: 'autodetect' | 'none'): AddrSetting => {
    const v = get(flag) ?? dflt;
    if (v === 'autodetect') return { kind: 'autodetect' };
    if (v === 'none') return { kind: 'none' };
    fail(() => checkAddrLen(v, family, `--${flag}`));
    return { kind: 'fixed', addrLen: v };
  };
  fail(() => {
    cfg.ip = addr('ip', 4, 'autodetect');
    cfg.ip6 = addr('ip6', 6, 'none');
    cfg.ipDetect = parseDetectMethod(get('ip-autodetection-method') ?? 'first-found');
    cfg.ip6Detect = parseDetectMethod(get('ip6-autodetection-method') ?? 'first-found');
  });
  if (cfg.ip.kind === 'none' && cfg.ip6.kind === 'none')
    throw new ConfigError('--ip and --ip6 are both none: the node needs an address');
  const as = get('as');
  if (as !== undefined) {
    const n = Number(as);
    if (!/^\d+$/.test(as) || n < 1 || n > 4294967295)
      throw new ConfigError(`--as ${JSON.stringify(as)} is not an AS number (1..4294967295)`);
    cfg.asNumber = n;
  }
  const labels = get('labels');
  if (labels !== undefined) {
    const m: Record<string, string> = {};
    for (const kv of labels
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      const eq = kv.indexOf('=');
      if (eq <= 0 || !/^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/.test(kv.slice(0, eq)))
        throw new ConfigError(`--labels: ${JSON.stringify(kv)} is not key=value`);
      m[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    cfg.labels = m;
  }
  const rr = get('route-reflector-cluster-id');
  if (rr !== undefined) {
    fail(() => checkIp(rr, '--route-reflector-cluster-id', 4));
    cfg.routeReflectorClusterId = rr;
  }
  const sl = get('status-listen') ?? '127.0.0.1:9099';
  if (sl !== 'none') {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(sl);
    const host = m?.[1]?.replace(/^\[|\]$/g, '');
    const port = Number(m?.[2]);
    if (!m || !host || !Number.isInteger(port) || port < 0 || port > 65535)
      throw new ConfigError(`--status-listen ${JSON.stringify(sl)} is not HOST:PORT`);
    fail(() => checkIp(host, '--status-listen host'));
    cfg.statusListen = { host, port };
  }
  const bla = get('bgp-listen-address');
  if (bla !== undefined) {
    fail(() => checkIp(bla, '--bgp-listen-address'));
    cfg.bgpListenAddress = bla;
  }
  const nb = get('networking-backend') ?? 'bgp';
  if (nb !== 'bgp' && nb !== 'none')
    throw new ConfigError(`--networking-backend ${JSON.stringify(nb)}: must be bgp or none`);
  cfg.networkingBackend = nb;
  const ttl = get('node-lease-ttl') ?? '30';
  if (!/^\d+$/.test(ttl) || Number(ttl) < 2 || Number(ttl) > 3600)
    throw new ConfigError(`--node-lease-ttl ${JSON.stringify(ttl)} is not a number of seconds (2..3600)`);
  cfg.nodeLeaseTtlSec = Number(ttl);
  const ier = get('import-external-routes') ?? 'false';
  if (ier !== 'true' && ier !== 'false')
    throw new ConfigError(`--import-external-routes ${JSON.stringify(ier)}: must be true or false`);
  cfg.importExternalRoutes = ier === 'true';
  const rw = get('route-writer') ?? 'auto';
  if (rw !== 'auto' && rw !== 'netlink' && rw !== 'iproute2')
    throw new ConfigError(`--route-writer ${JSON.stringify(rw)}: must be auto, netlink or iproute2`);
  cfg.routeWriter = rw;
  return cfg;
}
