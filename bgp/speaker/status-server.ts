/**
 * HTTP status endpoint: GET /status (JSON), /routes (JSON best routes), /metrics (Prometheus text);
 * admin: POST /peers/<address>/refresh (soft reset via ROUTE-REFRESH), /reset (hard reset, Cease 6/4),
 * /shutdown?message=... (Cease 6/2 with an RFC 9003 communication), /enable.
 * Bind it to loopback: it has no authentication.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Speaker } from './speaker.js';

export interface StatusServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startStatusServer(
  speaker: Speaker,
  registry: Registry,
  host: string,
  port: number,
): Promise<StatusServer> {
  const srv: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const json = (v: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(v)}\n`);
    };
    if (req.method === 'POST') {
      const m = /^\/peers\/([^/]+)\/(refresh|reset|shutdown|enable)$/.exec(url ?? '');
      if (!m) {
        res.writeHead(404).end('not found\n');
        return;
      }
      const peer = decodeURIComponent(m[1] as string);
      const message = new URL(req.url ?? '/', 'http://x').searchParams.get('message') ?? undefined;
      try {
        if (m[2] === 'refresh') speaker.resetPeer(peer, { soft: true });
        else if (m[2] === 'reset')
          speaker.resetPeer(peer, { soft: false, ...(message ? { communication: message } : {}) });
        else if (m[2] === 'shutdown') speaker.shutdownPeer(peer, message);
        else speaker.enablePeer(peer);
      } catch (err) {
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(`${JSON.stringify({ error: (err as Error).message })}\n`);
        return;
      }
      return json({ ok: true, peer, action: m[2] });
    }
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (url === '/status' || url === '/') return json(speaker.status());
    if (url === '/routes') return json(speaker.bestRoutes());
    if (url === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500).end(String(err));
        },
      );
      return;
    }
    res.writeHead(404).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host, port }, () => {
      srv.off('error', reject);
      resolve();
    });
  });
  const addr = srv.address();
  return {
    port: addr && typeof addr === 'object' ? addr.port : port,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}
