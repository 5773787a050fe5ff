import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { Speaker } from './speaker.js';
import { type ListenHandle, type Network, tcpNetwork } from './transport.js';

function dial(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve();
    });
    s.on('error', reject);
  });
}

test('tcpNetwork.listen: an error after listen (accept EMFILE) goes to onError, the listener keeps accepting', async () => {
  const errors: Error[] = [];
  let accepted = 0;
  const h = await tcpNetwork.listen(
    '127.0.0.1',
    0,
    (c) => {
      accepted++;
      c.destroy();
    },
    (e) => errors.push(e),
  );
  try {
    const err = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE', syscall: 'accept' });
    assert.doesNotThrow(() => h.server?.emit('error', err));
    assert.deepEqual(errors, [err]);
    await dial(h.port);
    for (let i = 0; i < 50 && accepted === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(accepted, 1);
  } finally {
    await h.close();
  }
});

test('speaker: a listener error after start is logged and the speaker keeps listening', async () => {
  let handle: ListenHandle | undefined;
  const network: Network = {
    ...tcpNetwork,
    listen: async (host, port, onConn, onError) => {
      handle = await tcpNetwork.listen(host, port, onConn, onError);
      return handle;
    },
  };
  const logged: unknown[] = [];
  const log = {
    child: () => log,
    info: () => {},
    debug: () => {},
    warn: () => {},
    error: (o: unknown) => logged.push(o),
  } as unknown as import('../../agent/common/logger.js').Logger;
  const speaker = new Speaker(
    { asn: 64512, routerId: '10.0.0.1', listen: { address: '127.0.0.1', port: 0 } },
    { network, log },
  );
  await speaker.start();
  try {
    const err = Object.assign(new Error('accept ENFILE'), { code: 'ENFILE', syscall: 'accept' });
    assert.doesNotThrow(() => handle?.server?.emit('error', err));
    assert.equal(logged.length, 1);
    await dial(speaker.listenPort as number);
  } finally {
    await speaker.stop();
  }
});
