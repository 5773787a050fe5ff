/**
 * petrelctl's IpamStore: the same four operations as ipam-etcd/etcd-store.ts, over etcd's JSON
 * gateway (POST /v3/kv/range and /v3/kv/txn on the client URL, part of every etcd v3.4+ server)
 * instead of gRPC. Why: a petrelctl call lives for one or two requests, and loading the gRPC stack
 * (etcd3, @grpc/grpc-js, protobufjs, the message codecs made at run time) was most of an
 * `ipam assign`; JSON over HTTP/1.1 needs none of it. The agent keeps the gRPC client.
 *
 * Same semantics as EtcdStore: linearizable range reads; commit is one Txn If(all conditions)
 * Then(all writes), a failed If is a ConflictError; "must not exist" compares VERSION == 0, else
 * MOD == rev; every request has the deadline `timeoutMs` and any failure to get an answer is
 * IpamError('unavailable') naming the endpoints ("did not answer … within N ms" / "failed …").
 * Endpoints are tried in order while they cannot be reached. TLS: the same PEM files (CA, client
 * certificate and key). Under Bun (the shipped executable) requests go through Bun's native
 * fetch; under Node through node:http / node:https.
 */
import { readFileSync } from 'node:fs';
import { ConflictError, IpamError } from '../../ipam-etcd/errors.js';
import type { EtcdConfig } from '../../ipam-etcd/etcd-store.js';
import type { Cond, IpamStore, KV, Write } from '../../ipam-etcd/store.js';

interface Tls {
  ca?: string;
  cert?: string;
  key?: string;
}

/** etcd's JSON for one key (int64 fields as strings, bytes as base64). */
interface WireKv {
  key?: string;
  value?: string;
  mod_revision?: string;
}

interface Answer {
  status: number;
  body: string;
}

/** The request failed before an HTTP answer (connection refused, reset, TLS). */
class Unreachable extends Error {}
/** No answer within the deadline. */
class TimedOut extends Error {}

const b64 = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s) : s).toString('base64');
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();

export class EtcdHttpStore implements IpamStore {
  private readonly timeoutMs: number;
  private readonly endpoints: string[];
  private readonly tls: Tls | undefined;
  /** The endpoint that answered last (tried first). */
  private current = 0;

  constructor(cfg: EtcdConfig) {
    if (cfg.endpoints.length === 0) throw new IpamError('invalid', 'no etcd endpoints configured');
    this.timeoutMs = cfg.timeoutMs ?? 5000;
    this.endpoints = cfg.endpoints.map((e) => (/^[a-z]+:\/\//i.test(e) ? e : `http://${e}`).replace(/\/+$/, ''));
    if (cfg.tls?.ca || cfg.tls?.cert || cfg.tls?.key) {
      try {
        this.tls = {
          ...(cfg.tls.ca ? { ca: readFileSync(cfg.tls.ca, 'utf8') } : {}),
          ...(cfg.tls.cert ? { cert: readFileSync(cfg.tls.cert, 'utf8') } : {}),
          ...(cfg.tls.key ? { key: readFileSync(cfg.tls.key, 'utf8') } : {}),
        };
      } catch (err) {
        throw new IpamError('invalid', `cannot read etcd TLS files: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  private unavailable(op: string, err: unknown): IpamError {
    const detail = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    const what = err instanceof TimedOut ? `did not answer ${op} within ${this.timeoutMs} ms` : `failed ${op}`;
    return new IpamError('unavailable', `etcd at ${this.endpoints.join(',')} ${what}: ${detail}`, { cause: err });
  }

  /** POSTs `body` to `path`, trying the endpoints in turn while they are unreachable. */
  private async call(path: string, body: object, op: string): Promise<Record<string, unknown>> {
    const text = JSON.stringify(body);
    const deadline = Date.now() + this.timeoutMs;
    let last: unknown;
    for (let i = 0; i < this.endpoints.length; i++) {
      const at = (this.current + i) % this.endpoints.length;
      const left = deadline - Date.now();
      if (left <= 0) {
        last = new TimedOut('deadline exceeded');
        break;
      }
      let a: Answer;
      try {
        a = await post(`${this.endpoints[at]}${path}`, text, left, this.tls);
      } catch (err) {
        last = err;
        if (err instanceof TimedOut) break;
        continue;
      }
      this.current = at;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(a.body) as Record<string, unknown>;
      } catch {
        throw this.unavailable(op, new Error(`HTTP ${a.status}: ${a.body.slice(0, 200)}`));
      }
      if (a.status !== 200) {
        const msg =
          typeof parsed.message === 'string' ? parsed.message : typeof parsed.error === 'string' ? parsed.error : '';
        throw this.unavailable(op, new Error(msg || `HTTP ${a.status}`));
      }
      return parsed;
    }
    throw this.unavailable(op, last);
  }

  private async range(key: string, op: string, prefix: boolean, keysOnly = false): Promise<WireKv[]> {
    const req: Record<string, unknown> = { key: b64(key) };
    if (prefix) req.range_end = b64(prefixEnd(key));
    if (keysOnly) req.keys_only = true;
    const res = await this.call('/v3/kv/range', req, op);
    return (res.kvs as WireKv[] | undefined) ?? [];
  }

  async get(key: string): Promise<KV | null> {
    const [kv] = await this.range(key, `GET ${key}`, false);
    return kv ? { key, value: unb64(kv.value), modRevision: kv.mod_revision ?? '0' } : null;
  }

  async list(prefix: string): Promise<KV[]> {
    const kvs = await this.range(prefix, `LIST ${prefix}`, true);
    return kvs.map((kv) => ({ key: unb64(kv.key), value: unb64(kv.value), modRevision: kv.mod_revision ?? '0' }));
  }

  async listKeys(prefix: string): Promise<string[]> {
    const kvs = await this.range(prefix, `LIST ${prefix}`, true, true);
    return kvs.map((kv) => unb64(kv.key));
  }

  async commit(conds: Cond[], writes: Write[]): Promise<string> {
    const res = await this.call(
      '/v3/kv/txn',
      {
        compare: conds.map((c) =>
          c.modRevision === null
            ? { key: b64(c.key), target: 'VERSION', result: 'EQUAL', version: '0' }
            : { key: b64(c.key), target: 'MOD', result: 'EQUAL', mod_revision: c.modRevision },
        ),
        success: writes.map((w) =>
          'delete' in w
            ? { request_delete_range: { key: b64(w.key) } }
            : { request_put: { key: b64(w.key), value: b64(w.value) } },
        ),
        failure: [],
      },
      `TXN ${writes.map((w) => w.key).join(',')}`,
    );
    // proto3 JSON leaves out false: a failed If has no `succeeded`.
    if (res.succeeded !== true) throw new ConflictError(conds.map((c) => c.key).join(','));
    return String((res.header as { revision?: string } | undefined)?.revision ?? '0');
  }

  async close(): Promise<void> {
    /* one request per connection is left to the runtime's keep-alive; nothing stays open */
  }
}

interface BunFetchInit extends RequestInit {
  tls?: Tls;
}

/** One POST with a deadline: Bun's fetch under Bun, node:http(s) under Node. */
function post(url: string, body: string, timeoutMs: number, tls: Tls | undefined): Promise<Answer> {
  if ((globalThis as { Bun?: unknown }).Bun) return postFetch(url, body, timeoutMs, tls);
  return postNode(url, body, timeoutMs, tls);
}

async function postFetch(url: string, body: string, timeoutMs: number, tls: Tls | undefined): Promise<Answer> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const init: BunFetchInit = {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      signal: ctl.signal,
      ...(tls ? { tls } : {}),
    };
    const res = await fetch(url, init);
    return { status: res.status, body: await res.text() };
  } catch (err) {
    if (ctl.signal.aborted) throw new TimedOut('deadline exceeded');
    const e = err as NodeJS.ErrnoException;
    throw new Unreachable(e.code ?? e.message, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

function postNode(url: string, body: string, timeoutMs: number, tls: Tls | undefined): Promise<Answer> {
  const u = new URL(url);
  const mod = process.getBuiltinModule(
    u.protocol === 'https:' ? 'node:https' : 'node:http',
  ) as typeof import('node:https');
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (e: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(e);
    };
    const req = mod.request(
      u,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        ...(tls ?? {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: text });
        });
        res.on('error', (e) => fail(new Unreachable(e.message, { cause: e })));
      },
    );
    const timer = setTimeout(() => {
      fail(new TimedOut('deadline exceeded'));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => fail(new Unreachable(e.code ?? e.message, { cause: e })));
    req.end(body);
  });
}

/** etcd's range end for a prefix: the prefix with its last byte incremented. */
function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    const x = b[i] as number;
    if (x < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i] = x + 1;
      return out;
    }
  }
  return Buffer.from([0]);
}
