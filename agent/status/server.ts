/**
 * The agent's status endpoint (`--status-listen`, default 127.0.0.1:9099; no authentication, so
 * keep it on loopback or a trusted network):
 *   GET /healthz  200 "ok" while the process serves (liveness)
 *   GET /readyz   200 when ready, else 503; JSON {ready, reasons[]} (Calico -bird-ready -felix-ready)
 *   GET /metrics  Prometheus text (prom-client)
 *   GET /status   JSON for `petrelctl node status` (and `petrelctl bgp status --endpoint`)
 *   GET /routes   JSON: the speaker's Loc-RIB best routes
 *   GET /routes/watch  Server-Sent Events: `snapshot` (the /routes JSON) first, then one `route`
 *                 event per best-path change exactly as the speaker reports it ({event: add|replace|
 *                 withdraw, prefix, family, nextHops, peer?}), and a new `snapshot` whenever the
 *                 speaker was replaced. Nothing is missed between polls, and a reconnecting client
 *                 starts again from a snapshot. At most MAX_WATCHERS at once (then 503); a comment
 *                 line every KEEPALIVE_MS so proxies and dead peers are noticed.
 * Anything with a query string or a body is a bad request (400); other methods 405.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/** One best-path change (bgp RouteEvent, as JSON). */
export interface RouteChange {
  event: 'add' | 'replace' | 'withdraw';
  prefix: string;
  family: string;
  nextHops: readonly string[];
  peer?: string;
}

export interface StatusSource {
  readiness(): Readiness;
  status(): unknown;
  routes(): unknown;
  registry: Registry;
  /**
   * Subscribes to best-path changes (`reset`: all routes gone, send a new snapshot); returns the
   * unsubscribe function. Absent: /routes/watch answers 404.
   */
  watchRoutes?(onChange: (c: RouteChange) => void, onReset: () => void): () => void;
}

/** Concurrent /routes/watch streams (each holds a socket and a listener). */
export const MAX_WATCHERS = 16;
const KEEPALIVE_MS = 15_000;

export interface AgentStatusServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAgentStatusServer(
  src: StatusSource,
  host: string,
  port: number,
): Promise<AgentStatusServer> {
  const watchers = new Set<() => void>();
  const srv: Server = createServer((req, res) => {
    const raw = req.url ?? '/';
    const url = raw.split('?')[0];
    const json = (code: number, v: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(v)}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end('method not allowed\n');
      return;
    }
    if (raw.includes('?') || raw.includes('#') || !raw.startsWith('/') || req.headers['content-length']) {
      res.writeHead(400).end('bad request\n');
      return;
    }
    try {
      switch (url) {
        case '/healthz':
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
          return;
        case '/readyz': {
          const r = src.readiness();
          json(r.ready ? 200 : 503, r);
          return;
        }
        case '/status':
          json(200, src.status());
          return;
        case '/routes':
          json(200, src.routes());
          return;
        case '/routes/watch':
          watch(req.method === 'HEAD');
          return;
        case '/metrics':
          src.registry.metrics().then(
            (text) => {
              res.writeHead(200, { 'content-type': src.registry.contentType });
              res.end(text);
            },
            (err: unknown) => {
              res.writeHead(500).end(`${(err as Error).message}\n`);
            },
          );
          return;
        default:
          res.writeHead(404).end('not found\n');
      }
    } catch (err) {
      json(500, { error: (err as Error).message });
    }

    function watch(headOnly: boolean): void {
      if (!src.watchRoutes) {
        res.writeHead(404).end('not found\n');
        return;
      }
      if (watchers.size >= MAX_WATCHERS) {
        res.writeHead(503, { 'retry-after': '5' }).end('too many watchers\n');
        return;
      }
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      if (headOnly) {
        res.end();
        return;
      }
      const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      send('snapshot', src.routes());
      const unsubscribe = src.watchRoutes(
        (c) => send('route', c),
        () => send('snapshot', src.routes()),
      );
      // A shell timer (the status server is an edge): keep-alive comments.
      const ka = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      ka.unref();
      const end = () => {
        clearInterval(ka);
        unsubscribe();
        watchers.delete(end);
        res.end();
      };
      watchers.add(end);
      req.on('close', end);
      res.on('error', end);
    }
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, () => {
      srv.off('error', reject);
      resolve();
    });
  });
  const addr = srv.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const end of [...watchers]) end();
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}
