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
  });
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
for (const [name, argv, env] of BAD) {
  test(`${name} -> ConfigError`, () => assert.throws(() => parseAgentConfig(argv, env), ConfigError));
}
