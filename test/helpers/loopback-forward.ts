/**
 * Makes a TCP service on this process's loopback (e.g. the Kubernetes API test double) reachable
 * at the same address and port inside a network namespace, without any address or route in the
 * machine's root namespace: a relay in the namespace listens on 127.0.0.1:PORT and carries each
 * connection over a Unix socket (a file, visible from every namespace) to this process, which
 * connects it to 127.0.0.1:PORT here. TLS passes through untouched, so certificates for 127.0.0.1
 * stay valid and a kubeconfig written for the service works unchanged inside the namespace.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import { type Daemon, waitFor } from './process.js';
import { scratchDir } from './tmp.js';

export interface LoopbackForward {
  stop(): Promise<void>;
}

// The relay inside the namespace: 127.0.0.1:PORT -> the Unix socket PATH.
const RELAY = `
const net = require('node:net');
const [port, path] = process.argv.slice(1);
const srv = net.createServer((c) => {
  const u = net.connect(path);
  c.pipe(u).pipe(c);
  c.on('error', () => u.destroy());
  u.on('error', () => c.destroy());
});
srv.listen(Number(port), '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => process.exit(0));
`;

export async function forwardLoopback(ns: Netns, port: number): Promise<LoopbackForward> {
  const path = join(scratchDir('fwd'), 'relay.sock');
  const open = new Set<Socket>();
  const server: Server = createServer((c) => {
    const t = createConnection(port, '127.0.0.1');
    open.add(c).add(t);
    c.pipe(t).pipe(c);
    const done = () => {
      c.destroy();
      t.destroy();
      open.delete(c);
      open.delete(t);
    };
    c.on('error', done).on('close', done);
    t.on('error', done).on('close', done);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
  let relay: Daemon | undefined;
  const stop = async () => {
    await relay?.stop();
    for (const s of open) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  try {
    relay = ns.spawn(process.execPath, ['-e', RELAY, String(port), path]);
    const r = relay;
    await waitFor('loopback relay listening', () => {
      if (r.exited()) throw new Error(`relay exited: ${r.output()}`);
      return r.output().includes('listening');
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}
