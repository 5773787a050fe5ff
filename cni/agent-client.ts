/**
 * The plugins' client for the agent's IPAM socket (protocol: agent/ipam-service/protocol.ts).
 * One connection per plugin run; every request has a deadline. Anything that keeps us from an
 * answer (no socket, connection refused, permission, timeout, connection closed early) is CNI
 * code 11 "try again later" naming the socket; the agent's own failures map by kind.
 * Under Bun the connection is Bun's native unix socket (runtime.ts), under Node node:net.
 */
import type { Socket } from 'node:net';
import type { Clock } from '../agent/common/clock.js';
import {
  type AgentRequest,
  type AgentResponse,
  encodeLine,
  MAX_LINE_BYTES,
  PROTOCOL_VERSION,
  type WireAssignment,
  type WireError,
} from '../agent/ipam-service/protocol.js';
import { CniCode, CniError } from './errors.js';
import { type BunSocket, bun } from './runtime.js';
import { mark } from './trace.js';

/** The fields of an `assign` request (protocol.ts), without the envelope. */
export type AssignFields = Omit<Extract<AgentRequest, { op: 'assign' }>, 'v' | 'id' | 'op'>;

/** What the commands need from IPAM (the fake in tests implements the same). */
export interface IpamClient {
  /** `onSent`: called once the request is on its way (then the caller's own start-up work can run). */
  assign(req: AssignFields, onSent?: () => void): Promise<WireAssignment[]>;
  release(handle: string): Promise<string[]>;
  get(handle: string): Promise<WireAssignment[]>;
  status(): Promise<void>;
  gc(prefix: string, keep: string[]): Promise<string[]>;
  close(): void;
}

/** Maps an agent-side error to the CNI error the runtime sees. */
export function wireToCniError(e: WireError, socket: string): CniError {
  switch (e.kind) {
    case 'unavailable':
    case 'retries-exhausted':
    case 'conflict':
      return new CniError(CniCode.TryAgainLater, 'IPAM datastore unavailable, try again later', e.message);
    case 'invalid':
    case 'not-found':
    case 'in-use':
      return new CniError(CniCode.InvalidNetworkConfig, 'IPAM request rejected', e.message);
    case 'exhausted':
      return new CniError(CniCode.PoolExhausted, 'no free address in the IP pools', e.message);
    default:
      return new CniError(CniCode.Internal, `petrel-agent error (${e.kind}) at ${socket}`, e.message);
  }
}

type AnyReq = AgentRequest extends infer R ? (R extends unknown ? Omit<R, 'v' | 'id'> : never) : never;
type OkResponse = Extract<AgentResponse, { ok: true }>;

/** The one connection, whichever runtime made it. */
interface Conn {
  write(text: string): void;
  close(): void;
}

export class AgentClient implements IpamClient {
  private conn: Conn | undefined;
  private closing = false;
  private connecting: Promise<Conn> | undefined;
  private nextId = 1;
  private buf = '';
  private readonly waiting: { id: number; resolve: (r: AgentResponse) => void; reject: (e: Error) => void }[] = [];
  private failed: CniError | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly timeoutMs: number,
    private readonly clock: Clock,
  ) {}

  private unreachable(why: string, cause?: unknown): CniError {
    return new CniError(
      CniCode.TryAgainLater,
      `petrel-agent is not reachable at ${this.socketPath}`,
      `${why}; is petrel-agent running on this node?`,
      cause === undefined ? undefined : { cause },
    );
  }

  private fail(err: CniError): void {
    this.failed ??= err;
    for (const w of this.waiting.splice(0)) w.reject(err);
    this.conn?.close();
  }

  private open(): Promise<Conn> {
    this.connecting ??= bun ? this.openBun() : this.openNode();
    return this.connecting;
  }

  private openNode(): Promise<Conn> {
    const { connect } = process.getBuiltinModule('node:net');
    return new Promise<Conn>((resolve, reject) => {
      const s: Socket = connect(this.socketPath);
      s.setEncoding('utf8');
      const conn: Conn = {
        write: (text) => {
          s.write(text);
        },
        close: () => {
          s.removeAllListeners('close');
          s.end();
          s.destroy();
        },
      };
      s.once('connect', () => {
        this.conn = conn;
        resolve(conn);
      });
      s.on('error', (err: NodeJS.ErrnoException) => {
        const e = this.unreachable(err.code ?? err.message, err);
        this.fail(e);
        reject(e);
      });
      s.on('close', () => this.fail(this.unreachable('connection closed by the agent')));
      s.on('data', (chunk: string) => this.onData(chunk));
    });
  }

  private async openBun(): Promise<Conn> {
    const dec = new TextDecoder();
    const enc = new TextEncoder();
    /** Bytes the kernel has not taken yet (written on `drain`). */
    let pending: Uint8Array = new Uint8Array(0);
    const flush = (s: BunSocket) => {
      while (pending.length > 0) {
        const n = s.write(pending);
        if (n <= 0) return;
        pending = pending.subarray(n);
      }
    };
    let sock: BunSocket;
    try {
      sock = await (bun as NonNullable<typeof bun>).connect({
        unix: this.socketPath,
        socket: {
          data: (_s, chunk) => this.onData(dec.decode(chunk, { stream: true })),
          drain: flush,
          close: () => {
            if (!this.closing) this.fail(this.unreachable('connection closed by the agent'));
          },
          error: (_s, err: NodeJS.ErrnoException) => this.fail(this.unreachable(err.code ?? err.message, err)),
        },
      });
    } catch (err) {
      const x = err as NodeJS.ErrnoException;
      const e = this.unreachable(x.code ?? x.message, err);
      this.fail(e);
      throw e;
    }
    const conn: Conn = {
      write: (text) => {
        const bytes = enc.encode(text);
        pending = pending.length === 0 ? bytes : concat(pending, bytes);
        flush(sock);
      },
      close: () => {
        this.closing = true;
        sock.end();
      },
    };
    this.conn = conn;
    if (this.failed) conn.close();
    return conn;
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    if (this.buf.length > MAX_LINE_BYTES) {
      this.fail(this.unreachable('response too long'));
      return;
    }
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      let res: AgentResponse;
      try {
        res = JSON.parse(line) as AgentResponse;
      } catch {
        this.fail(this.unreachable('agent sent a malformed response'));
        return;
      }
      const w = this.waiting.shift();
      if (w) w.resolve(res);
    }
  }

  private async call(req: AnyReq, onSent?: () => void): Promise<OkResponse> {
    if (this.failed) throw this.failed;
    mark('connect');
    const conn = await this.open();
    mark('connected');
    const id = this.nextId++;
    const full = { v: PROTOCOL_VERSION, id, ...req } as AgentRequest;
    const res = await new Promise<AgentResponse>((resolve, reject) => {
      const timer = this.clock.setTimer(this.timeoutMs, () => {
        this.fail(this.unreachable(`no answer within ${this.timeoutMs} ms`));
      });
      this.waiting.push({
        id,
        resolve: (r) => {
          timer.cancel();
          resolve(r);
        },
        reject: (e) => {
          timer.cancel();
          reject(e);
        },
      });
      conn.write(encodeLine(full));
      onSent?.();
    });
    mark(`agent-${req.op}`);
    if (!res.ok) throw wireToCniError(res.error, this.socketPath);
    return res;
  }

  async assign(req: AssignFields, onSent?: () => void): Promise<WireAssignment[]> {
    return (await this.call({ op: 'assign', ...req }, onSent)).assignments ?? [];
  }
  async release(handle: string): Promise<string[]> {
    return (await this.call({ op: 'release', handle })).released ?? [];
  }
  async get(handle: string): Promise<WireAssignment[]> {
    return (await this.call({ op: 'get', handle })).assignments ?? [];
  }
  async status(): Promise<void> {
    await this.call({ op: 'status' });
  }
  async gc(prefix: string, keep: string[]): Promise<string[]> {
    return (await this.call({ op: 'gc', prefix, keep })).released ?? [];
  }
  close(): void {
    this.failed ??= this.unreachable('client closed');
    this.closing = true;
    this.conn?.close();
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
