/**
 * HTTP status endpoint: GET /status (JSON), /routes (JSON best routes), /metrics (Prometheus text);
 * admin: POST /peers/<address>/refresh (soft reset via ROUTE-REFRESH), /reset (hard reset, Cease 6/4),
 * /shutdown?message=... (Cease 6/2 with an RFC 9003 communication), /enable.
 * Bind it to loopback: it has no authentication.
 *
 * Complicating factors:
 * - Every request gets one status code and the process stays up: a path that does not parse or
 *   decode (`/peers/%ZZ/reset`), a peer that is no address -> 400; unknown path or peer -> 404;
 *   a method the path does not take -> 405 (with Allow); a request body -> 413; headers over
 *   MAX_HEADER_BYTES -> 431 (Node); a client that sends its request slowly is cut after
 *   headersTimeoutMs (default 5 s; the whole request 2x); anything unexpected -> 500.
 * - Cross-site requests from a browser on this host: a web page can POST to 127.0.0.1 without
 *   CORS ("simple" requests), but it cannot add a custom header without a preflight (OPTIONS),
 *   which we never answer with CORS headers. The admin POSTs therefore require `X-Petrel-Admin: 1`
 *   (ADMIN_HEADER; petrelctl sends it) and get 403 without it.
 * - The server keeps an 'error' listener for its whole life: an accept error (EMFILE) after
 *   listen is logged, not an uncaught exception.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Registry } from 'prom-client';
import { type Logger, silentLogger } from '../../agent/common/logger.js';
import type { Speaker } from './speaker.js';
import { SpeakerError } from './types.js';

/** Header an admin POST must carry (value "1"), see the file comment. */
export const ADMIN_HEADER = 'x-petrel-admin';
const MAX_HEADER_BYTES = 8 * 1024;
const MAX_URL_CHARS = 2048;
const HEADERS_TIMEOUT_MS = 5000;
const MAX_CONNECTIONS = 64;

const ADMIN_ACTIONS = ['refresh', 'reset', 'shutdown', 'enable'] as const;
type AdminAction = (typeof ADMIN_ACTIONS)[number];
const GET_PATHS = new Set(['/', '/status', '/routes', '/metrics']);

export interface StatusServer {
  readonly port: number;
  /** The underlying server (tests emit errors on it; embedders may add listeners). */
  readonly server: Server;
  close(): Promise<void>;
}

export interface StatusServerOptions {
  log?: Logger;
  /** A client must have sent its headers within this (default 5000 ms; the whole request: 2x). */
  headersTimeoutMs?: number;
}

/** A request the server answers with `status` (and a JSON `{ error }` body). */
class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** What a request asks for, or why it cannot be served (pure: method + raw URL + headers). */
export type StatusRoute =
  | { kind: 'get'; path: '/' | '/status' | '/routes' | '/metrics' }
  | { kind: 'admin'; action: AdminAction; peer: string; message?: string };

/**
 * Parses one request line into a route; throws HttpError (400/403/404/405) for everything else.
 * Exported for the tests.
 */
export function routeRequest(
  method: string | undefined,
  rawUrl: string | undefined,
  headers: Record<string, string | string[] | undefined>,
): StatusRoute {
  const raw = rawUrl ?? '';
  if (raw.length === 0 || raw.length > MAX_URL_CHARS || !raw.startsWith('/') || raw.startsWith('//'))
    throw new HttpError(400, 'bad request target');
  let url: URL;
  try {
    url = new URL(raw, 'http://localhost');
  } catch {
    throw new HttpError(400, 'bad request target');
  }
  const path = url.pathname;
  const admin = /^\/peers\/([^/]+)\/([a-z]+)$/.exec(path);
  if (admin) {
    const action = admin[2] as string;
    if (!(ADMIN_ACTIONS as readonly string[]).includes(action)) throw new HttpError(404, 'not found');
    if (method !== 'POST') throw new HttpError(405, 'method not allowed', { allow: 'POST' });
    const h = headers[ADMIN_HEADER];
    if (h !== '1') throw new HttpError(403, `admin requests need the header ${ADMIN_HEADER}: 1`);
    let peer: string;
    let message: string | null;
    try {
      peer = decodeURIComponent(admin[1] as string);
      message = url.searchParams.get('message');
    } catch {
      throw new HttpError(400, 'bad percent-encoding in path');
    }
    if (isIP(peer) === 0) throw new HttpError(400, 'peer is not an IP address');
    if (message !== null && (message.length > 255 || message.includes('\0')))
      throw new HttpError(400, 'message too long or contains NUL');
    return message !== null
      ? { kind: 'admin', action: action as AdminAction, peer, message }
      : { kind: 'admin', action: action as AdminAction, peer };
  }
  if (GET_PATHS.has(path)) {
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method not allowed', { allow: 'GET, HEAD' });
    return { kind: 'get', path: path as '/' | '/status' | '/routes' | '/metrics' };
  }
  throw new HttpError(404, 'not found');
}

export async function startStatusServer(
  speaker: Speaker,
  registry: Registry,
  host: string,
  port: number,
  opts: StatusServerOptions = {},
): Promise<StatusServer> {
  const log = (opts.log ?? silentLogger).child({ component: 'bgp-status' });
  const headersTimeout = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
  const srv: Server = createServer(
    {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout,
      requestTimeout: 2 * headersTimeout,
      // How often Node checks those timeouts (its default, 30 s, would let a slow client stay).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 2)),
    },
    (req, res) => {
      try {
        handle(speaker, registry, req, res);
      } catch (err) {
        answerError(res, err, log);
      }
    },
  );
  srv.maxConnections = MAX_CONNECTIONS;
  srv.keepAliveTimeout = headersTimeout;
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen({ host, port }, () => {
      srv.off('error', reject);
      resolve();
    });
  });
  // For the server's whole life (accept errors such as EMFILE arrive here): log and go on.
  srv.on('error', (err) => log.error({ err }, 'status server error'));
  const addr = srv.address();
  return {
    port: addr && typeof addr === 'object' ? addr.port : port,
    server: srv,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

function handle(speaker: Speaker, registry: Registry, req: IncomingMessage, res: ServerResponse): void {
  const route = routeRequest(req.method, req.url, req.headers);
  // None of our requests has a body (a chunked or non-zero length one is refused unread).
  const len = req.headers['content-length'];
  if ((len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined)
    throw new HttpError(413, 'request body not accepted', { connection: 'close' });
  const json = (v: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${JSON.stringify(v)}\n`);
  };
  if (route.kind === 'admin') {
    const { action, peer, message } = route;
    try {
      if (action === 'refresh') speaker.resetPeer(peer, { soft: true });
      else if (action === 'reset')
        speaker.resetPeer(peer, { soft: false, ...(message ? { communication: message } : {}) });
      else if (action === 'shutdown') speaker.shutdownPeer(peer, message ?? undefined);
      else speaker.enablePeer(peer);
    } catch (err) {
      if (err instanceof SpeakerError && err.kind === 'unknown-peer') throw new HttpError(404, err.message);
      throw err;
    }
    json({ ok: true, peer, action });
    return;
  }
  if (route.path === '/status' || route.path === '/') {
    json(speaker.status());
    return;
  }
  if (route.path === '/routes') {
    json(speaker.bestRoutes());
    return;
  }
  registry.metrics().then(
    (text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    },
    (err: unknown) => answerError(res, err, undefined),
  );
}

function answerError(res: ServerResponse, err: unknown, log: Logger | undefined): void {
  if (!(err instanceof HttpError)) log?.error({ err }, 'status request failed');
  const e = err instanceof HttpError ? err : new HttpError(500, 'internal error');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res
    .writeHead(e.status, { 'content-type': 'application/json', ...e.headers })
    .end(`${JSON.stringify({ error: e.message })}\n`);
}
