/**
 * `petrelctl ui`'s HTTP server: the page, its script and style (page.ts, served by Petrel itself),
 * and a small JSON API over the collector's picture:
 *   GET /                 the page
 *   GET /app.js /app.css  its script and style
 *   GET /api/cluster      the ClusterView (503 until the first picture)
 *   GET /api/path?from=POD&to=POD   the "A → B" PathReport (400 without both, 404 for an unknown pod)
 *   GET /api/feed[?after=SEQ]       route feed entries after SEQ, oldest first
 *   GET /api/events       Server-Sent Events: `cluster` (the view, on connect and after every
 *                         refresh) and `feed` (each route feed entry; the last 100 on connect)
 * Other methods 405; unknown query parameters 400; at most MAX_CLIENTS event streams (then 503).
 * DNS rebinding (a web page whose name resolves to 127.0.0.1 reading the picture): a Host header
 * that is not an IP literal, `localhost` or one of `allowHosts` is refused (403).
 * Listens on TCP HOST:PORT or on a Unix socket (`unix:/path`), the latter for a UI inside a
 * network namespace reached through `petrelctl ui forward`. The socket file is made 0660.
 */
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { Logger } from '../common/logger.js';
import type { Collector } from './collector.js';
import type { ListenAddr } from './listen.js';
import { checkPath, PathError } from './model.js';
import { APP_CSS, APP_JS, INDEX_HTML } from './page.js';

export const MAX_CLIENTS = 32;
const KEEPALIVE_MS = 15_000;

export interface UiServer {
  /** `http://HOST:PORT` or `unix:/path`. */
  readonly address: string;
  readonly port?: number;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Host header hostnames always accepted: IP literals and localhost. */
const LITERAL_HOST = /^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])$/;

export async function startUiServer(
  collector: Collector,
  listen: ListenAddr,
  log: Logger,
  allowHosts: readonly string[] = [],
): Promise<UiServer> {
  const allowed = new Set(allowHosts.map((h) => h.toLowerCase()));
  const clients = new Set<ServerResponse>();
  const send = (res: ServerResponse, event: string, data: unknown) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  const onView = (v: unknown) => {
    for (const c of clients) send(c, 'cluster', v);
  };
  const onFeed = (e: unknown) => {
    for (const c of clients) send(c, 'feed', e);
  };
  collector.on('view', onView);
  collector.on('feed', onFeed);
  const ka = setInterval(() => {
    for (const c of clients) c.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  ka.unref();

  const srv = createServer((req, res) => {
    const json = (code: number, v: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS });
      res.end(`${JSON.stringify(v)}\n`);
    };
    const text = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'content-type': type, ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      text(405, 'method not allowed\n');
      return;
    }
    const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
    if (host && !LITERAL_HOST.test(host) && !allowed.has(host)) {
      text(403, `Host ${host} not allowed (petrelctl ui --allow-host)\n`);
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://ui.invalid');
    } catch {
      text(400, 'bad request\n');
      return;
    }
    const params = [...url.searchParams.keys()];
    const only = (...allowed: string[]) => {
      const bad = params.filter((p) => !allowed.includes(p));
      if (bad.length === 0) return true;
      json(400, { error: `unknown query parameter ${bad[0]}` });
      return false;
    };
    try {
      switch (url.pathname) {
        case '/':
        case '/index.html':
          if (only()) text(200, INDEX_HTML, 'text/html; charset=utf-8');
          return;
        case '/app.js':
          if (only()) text(200, APP_JS, 'text/javascript; charset=utf-8');
          return;
        case '/app.css':
          if (only()) text(200, APP_CSS, 'text/css; charset=utf-8');
          return;
        case '/api/cluster': {
          if (!only()) return;
          const v = collector.current();
          if (v) json(200, v);
          else json(503, { error: 'no picture yet' });
          return;
        }
        case '/api/path': {
          if (!only('from', 'to')) return;
          const from = url.searchParams.get('from');
          const to = url.searchParams.get('to');
          if (!from || !to) {
            json(400, { error: 'from and to (pod names or handles) are required' });
            return;
          }
          const v = collector.current();
          if (!v) {
            json(503, { error: 'no picture yet' });
            return;
          }
          try {
            json(200, checkPath(v, from, to));
          } catch (err) {
            if (err instanceof PathError) json(err.kind === 'unknown-pod' ? 404 : 422, { error: err.message });
            else throw err;
          }
          return;
        }
        case '/api/feed': {
          if (!only('after')) return;
          const a = url.searchParams.get('after') ?? '0';
          if (!/^\d{1,15}$/.test(a)) {
            json(400, { error: 'after must be a sequence number' });
            return;
          }
          json(200, collector.feed.since(Number(a)));
          return;
        }
        case '/api/events': {
          if (!only()) return;
          if (clients.size >= MAX_CLIENTS) {
            res.writeHead(503, { 'retry-after': '5', ...SECURITY_HEADERS }).end('too many event streams\n');
            return;
          }
          res.writeHead(200, {
            'content-type': 'text/event-stream',
            connection: 'keep-alive',
            ...SECURITY_HEADERS,
          });
          if (req.method === 'HEAD') {
            res.end();
            return;
          }
          res.write('retry: 2000\n\n');
          const v = collector.current();
          if (v) send(res, 'cluster', v);
          for (const e of collector.feed.since(0).slice(-100)) send(res, 'feed', e);
          clients.add(res);
          const end = () => {
            clients.delete(res);
          };
          req.on('close', end);
          res.on('error', end);
          return;
        }
        default:
          text(404, 'not found\n');
      }
    } catch (err) {
      log.error({ err: (err as Error).message, path: url.pathname }, 'request failed');
      if (!res.headersSent) json(500, { error: (err as Error).message });
      else res.destroy();
    }
  });

  if (listen.kind === 'unix' && existsSync(listen.path)) {
    // A socket left by a previous run (never any other kind of file).
    if (lstatSync(listen.path).isSocket()) unlinkSync(listen.path);
    else throw new Error(`${listen.path} exists and is not a socket`);
  }
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    const done = () => {
      srv.off('error', reject);
      resolve();
    };
    if (listen.kind === 'unix') srv.listen(listen.path, done);
    else srv.listen(listen.port, listen.host, done);
  });
  let address: string;
  let port: number | undefined;
  if (listen.kind === 'unix') {
    chmodSync(listen.path, 0o660);
    address = `unix:${listen.path}`;
  } else {
    const a = srv.address();
    port = typeof a === 'object' && a ? a.port : listen.port;
    address = `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`;
  }
  return {
    address,
    ...(port !== undefined ? { port } : {}),
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(ka);
        collector.off('view', onView);
        collector.off('feed', onFeed);
        for (const c of clients) c.end();
        clients.clear();
        srv.closeAllConnections();
        srv.close(() => {
          if (listen.kind === 'unix') {
            try {
              unlinkSync(listen.path);
            } catch {
              /* already gone */
            }
          }
          resolve();
        });
      }),
  };
}
