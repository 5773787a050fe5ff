/**
 * The IPAM Unix socket server (shell): accepts connections, splits lines, hands each request to
 * the IpamService and writes the response line. The socket gets mode 0600 (root only) without a
 * window with wider permissions and without touching the process-wide umask (an umask set across
 * the await of listen() would apply to every file any other code creates meanwhile): it is bound
 * in a private directory (mkdtemp, 0700) beside the target, chmod'ed 0600 there, and renamed into
 * place; until the rename nobody else can reach it. The target directory is created 0700 when
 * missing. A stale socket file from a crashed agent is replaced; a
 * live one (another agent answering) is an error.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/logger.js';
import { type AgentResponse, decodeRequest, encodeLine, MAX_LINE_BYTES } from './protocol.js';
import type { IpamService } from './service.js';

export interface IpamSocketServer {
  readonly path: string;
  /** Stops accepting, closes open connections, removes the socket file. */
  close(): Promise<void>;
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function listenIpamSocket(path: string, service: IpamService, log: Logger): Promise<IpamSocketServer> {
  const slog = log.child({ component: 'ipam-socket', socket: path });
  if (!existsSync(dirname(path))) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
    if (await socketAnswers(path)) throw new Error(`another process is serving ${path}`);
    unlinkSync(path);
  }
  const conns = new Set<Socket>();
  const server: Server = createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', (err) => slog.debug({ err }, 'connection error'));
    let buf = '';
    // Responses go out in request order even though requests are handled concurrently.
    let order: Promise<void> = Promise.resolve();
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE_BYTES && !buf.includes('\n')) {
        slog.warn({ bytes: buf.length }, 'request line too long; closing');
        sock.destroy();
        return;
      }
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === '') continue;
        const req = decodeRequest(line);
        const pending: Promise<AgentResponse> =
          'bad' in req ? Promise.resolve({ v: 1, id: req.id, ok: false, error: req.bad }) : service.handle(req);
        order = order.then(async () => {
          const res = await pending;
          if (!sock.destroyed) sock.write(encodeLine(res));
        });
      }
    });
  });
  const privateDir = mkdtempSync(join(dirname(path), '.petrel-sock-'));
  try {
    const tmpPath = join(privateDir, 's');
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(tmpPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(tmpPath, 0o600);
    renameSync(tmpPath, path);
  } catch (err) {
    server.close();
    throw err;
  } finally {
    rmSync(privateDir, { recursive: true, force: true });
  }
  server.on('error', (err) => slog.error({ err }, 'socket server error'));
  slog.info('ipam socket listening');
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of conns) c.destroy();
        try {
          unlinkSync(path);
        } catch {
          /* already gone */
        }
      }),
  };
}
