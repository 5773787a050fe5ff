/**
 * The agent's status endpoint (`--status-listen`, default 127.0.0.1:9099; no authentication, so
 * keep it on loopback or a trusted network):
 *   GET /healthz  200 "ok" while the process serves (liveness)
 *   GET /readyz   200 when ready, else 503; JSON {ready, reasons[]} (Calico -bird-ready -felix-ready)
 *   GET /metrics  Prometheus text (prom-client)
 *   GET /status   JSON for `petrelctl node status` (and `petrelctl bgp status --endpoint`)
 *   GET /routes   JSON: the speaker's Loc-RIB best routes
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

export interface StatusSource {
  readiness(): Readiness;
  status(): unknown;
  routes(): unknown;
  registry: Registry;
}

export interface AgentStatusServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAgentStatusServer(
  src: StatusSource,
  host: string,
  port: number,
): Promise<AgentStatusServer> {
  const srv: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const json = (code: number, v: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(v)}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end('method not allowed\n');
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
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}
