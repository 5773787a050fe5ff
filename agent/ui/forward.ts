/**
 * `petrelctl ui forward`: a TCP listener (in the root network namespace, normally 127.0.0.1:PORT)
 * that relays every connection to a Unix socket, byte for byte. The UI serves on a Unix socket
 * inside the cluster's namespace; a socket file is reachable from every network namespace (it is
 * a filesystem object), so the browser in the root namespace gets the page without any link,
 * address or route being added there.
 */
import { connect, createServer, type Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { ListenAddr } from './listen.js';

export interface Forwarder {
  /** The TCP port listened on (the one picked when 0 was asked). */
  readonly port: number;
  close(): Promise<void>;
}

export async function startForwarder(
  listen: Extract<ListenAddr, { kind: 'tcp' }>,
  socketPath: string,
  log: Logger,
): Promise<Forwarder> {
  const open = new Set<Socket>();
  const srv = createServer((client) => {
    const upstream = connect(socketPath);
    open.add(client);
    open.add(upstream);
    upstream.on('error', (err) => {
      log.warn({ err: err.message, socket: socketPath }, 'UI socket unreachable');
      // Nothing relayed yet: tell the browser why instead of a reset connection.
      if (upstream.bytesRead === 0 && client.writable) {
        client.end(
          'HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nUI socket unreachable\n',
        );
      } else client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      upstream.destroy();
      open.delete(client);
    });
    upstream.on('close', () => open.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(listen.port, listen.host, () => {
      srv.off('error', reject);
      resolve();
    });
  });
  const a = srv.address();
  return {
    port: typeof a === 'object' && a ? a.port : listen.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        srv.close(() => resolve());
      }),
  };
}
