import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseAgentConfig } from './config.js';

test('flags override environment; defaults apply', () => {
  const c = parseAgentConfig(['--node-name', 'node-a', '--etcd-endpoints=http://10.0.0.1:2379,http://10.0.0.2:2379'], {
    PETREL_NODE_NAME: 'ignored',
    PETREL_ETCD_CA: '/ca.pem',
  });
  assert.deepEqual(c, {
    nodeName: 'node-a',
    etcdEndpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'],
    socketPath: '/var/run/petrel/agent.sock',
    etcdTls: { ca: '/ca.pem' },
    etcdTimeoutMs: 5000,
    logLevel: 'info',
    ip: { kind: 'autodetect' },
    ip6: { kind: 'none' },
    ipDetect: { kind: 'first-found' },
    ip6Detect: { kind: 'first-found' },
    statusListen: { host: '127.0.0.1', port: 9099 },
    networkingBackend: 'bgp',
    nodeLeaseTtlSec: 30,
    importExternalRoutes: false,
    routeWriter: 'auto',
  });
});

test('node address flags and their environment names', () => {
  const c = parseAgentConfig(
    ['--node-name', 'n', '--etcd-endpoints', 'http://e:1', '--ip', '10.0.0.5/24', '--as', '65001'],
    {
      PETREL_IP6: 'fd00::5/64',
      PETREL_IP_AUTODETECTION_METHOD: 'can-reach=10.0.0.1',
      PETREL_STATUS_LISTEN: '[::1]:9100',
      PETREL_ROUTE_REFLECTOR_CLUSTER_ID: '224.0.0.1',
      PETREL_NODE_LABELS: 'rack=r1,zone=a',
    },
  );
  assert.deepEqual(c.ip, { kind: 'fixed', addrLen: '10.0.0.5/24' });
  assert.deepEqual(c.ip6, { kind: 'fixed', addrLen: 'fd00::5/64' });
  assert.deepEqual(c.ipDetect, { kind: 'can-reach', dest: '10.0.0.1' });
  assert.deepEqual(c.statusListen, { host: '::1', port: 9100 });
  assert.equal(c.asNumber, 65001);
  assert.equal(c.routeReflectorClusterId, '224.0.0.1');
  assert.deepEqual(c.labels, { rack: 'r1', zone: 'a' });
  assert.equal(
    parseAgentConfig(['--node-name', 'n', '--etcd-endpoints', 'http://e:1', '--status-listen', 'none'], {})
      .statusListen,
    undefined,
  );
});

test('everything from the environment', () => {
  const c = parseAgentConfig([], {
    PETREL_NODE_NAME: 'n1',
    PETREL_ETCD_ENDPOINTS: 'https://e:2379',
    PETREL_AGENT_SOCKET: '/run/p.sock',
    PETREL_ETCD_CERT: '/c',
    PETREL_ETCD_KEY: '/k',
    PETREL_LOG_LEVEL: 'debug',
    PETREL_LOG_FILE: '/var/log/p.log',
  });
  assert.equal(c.socketPath, '/run/p.sock');
  assert.deepEqual(c.etcdTls, { cert: '/c', key: '/k' });
  assert.equal(c.logFile, '/var/log/p.log');
});

const BAD: [string, string[], Record<string, string>][] = [
  ['missing node name', ['--etcd-endpoints', 'http://e:1'], {}],
  ['missing endpoints', ['--node-name', 'n'], {}],
  ['bad node name', ['--node-name', 'Node_A', '--etcd-endpoints', 'http://e:1'], {}],
  ['bad endpoint', ['--node-name', 'n', '--etcd-endpoints', 'e:1'], {}],
  ['relative socket', ['--node-name', 'n', '--etcd-endpoints', 'http://e:1', '--socket', 'x.sock'], {}],
  ['unknown flag', ['--frob'], {}],
  ['flag without value', ['--node-name'], {}],
  ['cert without key', ['--node-name', 'n', '--etcd-endpoints', 'http://e:1', '--etcd-cert', '/c'], {}],
  ['bad timeout', ['--node-name', 'n', '--etcd-endpoints', 'http://e:1', '--etcd-timeout-ms', '0'], {}],
];
const B = ['--node-name', 'n', '--etcd-endpoints', 'http://e:1'];
const BAD_VALUES: [string[], Record<string, string>, string][] = [
  [['--ip', '10.0.0.300/24'], {}, '10.0.0.300/24'],
  [['--ip', '10.0.0.3'], {}, '10.0.0.3'],
  [['--ip', 'fd00::1/64'], {}, 'fd00::1/64'],
  [['--ip6', '10.0.0.1/24'], {}, '10.0.0.1/24'],
  [['--ip', 'none'], {}, 'both none'],
  [[], { PETREL_IP_AUTODETECTION_METHOD: 'nearest' }, 'nearest'],
  [['--ip-autodetection-method', 'interface=eth['], {}, 'eth['],
  [['--ip-autodetection-method', 'cidr=10.0.0.0/33'], {}, '10.0.0.0/33'],
  [['--ip-autodetection-method', 'can-reach=example'], {}, 'example'],
  [['--as', '0'], {}, '"0"'],
  [['--as', '4294967296'], {}, '4294967296'],
  [['--status-listen', 'localhost'], {}, 'localhost'],
  [['--status-listen', 'host:99'], {}, 'host'],
  [['--route-reflector-cluster-id', '1.2.3'], {}, '1.2.3'],
  [['--labels', 'rack'], {}, 'rack'],
  [['--networking-backend', 'bird'], {}, 'bird'],
  [['--node-lease-ttl', '1'], {}, '"1"'],
  [['--import-external-routes', 'yes'], {}, '"yes"'],
  [['--route-writer', 'rtnl'], {}, '"rtnl"'],
  [[], { PETREL_ROUTE_WRITER: 'kernel' }, '"kernel"'],
];
for (const [argv, env, named] of BAD_VALUES) {
  test(`bad value ${JSON.stringify(argv.length ? argv : env)} -> one line naming ${named}`, () =>
    assert.throws(
      () => parseAgentConfig([...B, ...argv], env),
      (e: unknown) => e instanceof ConfigError && e.message.includes(named) && !e.message.includes('\n'),
    ));
}
for (const [name, argv, env] of BAD) {
  test(`${name} -> ConfigError`, () => assert.throws(() => parseAgentConfig(argv, env), ConfigError));
}
