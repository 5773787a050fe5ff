/**
 * The TCP boundary of the speaker: an interface (what the session driver needs of a socket and
 * of the network), the real implementation on node:net, and an in-memory fake for unit tests.
 */
import { EventEmitter } from 'node:events';
import { createServer, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { parsePrefix, prefixWithin } from '../rib/prefix.js';

/** The subset of net.Socket the session driver uses. Events: 'connect', 'data', 'close', 'error'. */
export interface Conn {
  readonly localAddress?: string | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  write(data: Uint8Array): boolean;
  /** Bytes written but not yet handed to the kernel (net.Socket); absent: always 0. */
  readonly writableLength?: number;
  /** Flush queued data, then close. */
  end(): void;
  /** Close at once. */
  destroy(): void;
  /** Stop / restart delivering 'data' (flow control; the in-memory fake has neither). */
  pause?(): void;
  resume?(): void;
  on(event: 'connect', fn: () => void): this;
  on(event: 'data', fn: (chunk: Buffer) => void): this;
  on(event: 'close', fn: () => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
  /** The write buffer emptied after write() returned false. */
  on(event: 'drain', fn: () => void): this;
}

export interface ConnectOptions {
  host: string;
  port: number;
  /** Source address (eBGP multihop / multi-NIC nodes). */
  localAddress?: string;
}

export interface ListenHandle {
  readonly port: number;
  close(): Promise<void>;
  /** The listening server where there is one (tests emit errors on it). */
  readonly server?: EventEmitter;
}

export interface Network {
  connect(o: ConnectOptions): Conn;
  /**
   * `onError` gets errors of the listening socket after listen succeeded (an accept failing with
   * EMFILE): the listener stays open, and without a listener such an error would end the process.
   */
  listen(host: string, port: number, onConn: (c: Conn) => void, onError?: (err: Error) => void): Promise<ListenHandle>;
  /**
   * Is `address` on a directly connected network (in the subnet of a local interface address)?
   * eBGP peers without multihop must be (BIRD's `direct`, FRR's connected check). Absent: yes.
   */
  onLink?(address: string): boolean;
}

/** True when `address` lies in one of the interface networks (CIDR texts). */
export function onLinkOf(address: string, networks: readonly string[]): boolean {
  const host = parsePrefix(`${address}/${address.includes(':') ? 128 : 32}`);
  if (!host) return false;
  for (const n of networks) {
    const net = parsePrefix(n);
    if (net && prefixWithin(host, net)) return true;
  }
  return false;
}

/** IPv4-mapped IPv6 ('::ffff:10.0.0.1') as plain IPv4 text. */
export function unmapAddress(a: string | undefined): string | undefined {
  return a?.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export const tcpNetwork: Network = {
  connect(o) {
    const s = new Socket();
    s.setNoDelay(true);
    s.connect({ host: o.host, port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    return s;
  },
  listen(host, port, onConn, onError) {
    return new Promise((resolve, reject) => {
      const srv = createServer({ noDelay: true }, (s) => onConn(s));
      srv.once('error', reject);
      srv.listen({ host, port }, () => {
        srv.off('error', reject);
        // For the server's life: an accept error is reported, never thrown.
        srv.on('error', (err) => onError?.(err));
        const addr = srv.address();
        resolve({
          server: srv,
          port: addr && typeof addr === 'object' ? addr.port : port,
          close: () =>
            new Promise<void>((r) => {
              srv.close(() => r());
            }),
        });
      });
    });
  },
  onLink(address) {
    const nets: string[] = [];
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) if (i.cidr) nets.push(i.cidr);
    return onLinkOf(unmapAddress(address) as string, nets);
  },
};

// ---------------------------------------------------------------- fake

/**
 * One end of an in-memory socket pair. Delivery is asynchronous (microtasks), like a real socket.
 * Stall mode (`stall()`): the peer stops reading; writes queue here (writableLength grows,
 * write() returns false past HIGH_WATER) until `unstall()` delivers them and emits 'drain'.
 */
export class FakeConn extends EventEmitter implements Conn {
  static readonly HIGH_WATER = 16 * 1024;
  peer?: FakeConn;
  closed = false;
  /** Everything written, for assertions. */
  readonly written: Buffer[] = [];
  private stalled = false;
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  private needDrain = false;
  get writableLength(): number {
    return this.queuedBytes;
  }
  /** The peer stops reading (its receive window is full). */
  stall(): void {
    this.stalled = true;
  }
  /** The peer reads again: queued bytes are delivered, then 'drain' (if a write returned false). */
  unstall(): void {
    this.stalled = false;
    const q = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    const p = this.peer;
    for (const b of q)
      queueMicrotask(() => {
        if (p && !p.closed) p.emit('data', b);
      });
    if (this.needDrain) {
      this.needDrain = false;
      queueMicrotask(() => {
        if (!this.closed) this.emit('drain');
      });
    }
  }
  constructor(
    readonly localAddress: string,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {
    super();
    this.on('error', () => {});
  }
  write(data: Uint8Array): boolean {
    if (this.closed) return false;
    const copy = Buffer.from(data);
    this.written.push(copy);
    if (this.stalled) {
      this.queued.push(copy);
      this.queuedBytes += copy.length;
      if (this.queuedBytes > FakeConn.HIGH_WATER) this.needDrain = true;
      return !this.needDrain;
    }
    const p = this.peer;
    queueMicrotask(() => {
      if (p && !p.closed) p.emit('data', copy);
    });
    return true;
  }
  end(): void {
    this.destroy();
  }
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.emit('close'));
    const p = this.peer;
    if (p) queueMicrotask(() => p.destroy());
  }
}

/**
 * An in-memory network of listeners keyed by "address:port". Every failure can be forced:
 * `refuse` makes connects to an address fail, `blackhole` makes them hang (no connect, no error).
 */
export class FakeNetwork implements Network {
  private readonly listeners = new Map<string, (c: Conn) => void>();
  readonly refuse = new Set<string>();
  readonly blackhole = new Set<string>();
  /** Addresses that are not on a directly connected network (for the eBGP single-hop check). */
  readonly offLink = new Set<string>();
  /** All connections made, for tests that cut them. */
  readonly conns: FakeConn[] = [];
  private ephemeral = 40000;

  /** The network seen from one host: connects come from `self` unless a localAddress is given. */
  host(self: string): Network {
    return {
      connect: (o) => this.connectFrom(o.localAddress ?? self, o),
      listen: (host, port, onConn) => this.listen(host === '0.0.0.0' || host === '::' ? self : host, port, onConn),
      onLink: (address) => !this.offLink.has(address),
    };
  }

  connect(o: ConnectOptions): Conn {
    return this.connectFrom(o.localAddress ?? '127.0.0.1', o);
  }

  private connectFrom(from: string, o: ConnectOptions): Conn {
    const port = this.ephemeral++;
    const c = new FakeConn(from, o.host, o.port);
    this.conns.push(c);
    if (this.blackhole.has(o.host)) return c;
    queueMicrotask(() => {
      if (c.closed) return; // aborted before the connection was made
      const l = this.listeners.get(`${o.host}:${o.port}`);
      if (!l || this.refuse.has(o.host)) {
        c.closed = true;
        c.emit('error', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
        c.emit('close');
        return;
      }
      const s = new FakeConn(o.host, from, port);
      this.conns.push(s);
      c.peer = s;
      s.peer = c;
      l(s);
      c.emit('connect');
    });
    return c;
  }

  async listen(host: string, port: number, onConn: (c: Conn) => void): Promise<ListenHandle> {
    const key = `${host}:${port}`;
    if (this.listeners.has(key)) throw Object.assign(new Error(`listen EADDRINUSE ${key}`), { code: 'EADDRINUSE' });
    this.listeners.set(key, onConn);
    return {
      port,
      close: async () => {
        this.listeners.delete(key);
      },
    };
  }

  /** Cuts every live connection between two addresses (both directions), like a link failure with RST. */
  cut(a: string, b: string): void {
    for (const c of this.conns) {
      if (
        !c.closed &&
        ((c.localAddress === a && c.remoteAddress === b) || (c.localAddress === b && c.remoteAddress === a))
      )
        c.destroy();
    }
  }

  /** Silently drops all traffic between two addresses from now on (for hold-timer tests). */
  partition(a: string, b: string): void {
    for (const c of this.conns) {
      if ((c.localAddress === a && c.remoteAddress === b) || (c.localAddress === b && c.remoteAddress === a)) {
        c.write = (d: Uint8Array) => {
          c.written.push(Buffer.from(d));
          return true;
        };
      }
    }
  }
}
