/**
 * The plugins' runtime shells, Bun or Node. The shipped plugins are Bun executables
 * (scripts/package-sea.mjs); under Bun, Bun's native spawn, unix socket and hash are used, because
 * node:child_process, node:net and node:crypto are JavaScript layers that Bun loads on first
 * import (measured in a Bun executable on this machine: 15-30 ms together, against ~1.5 ms for
 * the native calls), and a plugin process lives for less than that. Under Node (the bin/ bundles,
 * unit tests) the node: modules are used, fetched with process.getBuiltinModule so that nothing
 * imports them statically. Only the few members Petrel calls are typed here.
 */

export interface BunFileSink {
  write(chunk: string | Uint8Array): number;
  flush(): number | Promise<number>;
  end(): number | Promise<number>;
}

export interface BunSubprocess {
  readonly pid: number;
  readonly stdin: BunFileSink;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves with the exit code (128 + signal number when killed by a signal). */
  readonly exited: Promise<number>;
  readonly signalCode: string | null;
}

export interface BunSocket {
  /** Bytes accepted by the kernel (may be fewer than given; the rest waits for `drain`). */
  write(data: string | Uint8Array): number;
  end(): void;
  terminate(): void;
}

export interface BunSocketHandlers {
  open?(s: BunSocket): void;
  data?(s: BunSocket, chunk: Uint8Array): void;
  drain?(s: BunSocket): void;
  close?(s: BunSocket, err?: Error): void;
  error?(s: BunSocket, err: Error): void;
  connectError?(s: BunSocket, err: Error): void;
}

export interface BunRuntime {
  spawn(opts: {
    cmd: string[];
    stdin: 'pipe';
    stdout: 'pipe';
    stderr: 'pipe';
    env?: Record<string, string | undefined>;
    detached?: boolean;
  }): BunSubprocess;
  connect(opts: { unix: string; socket: BunSocketHandlers }): Promise<BunSocket>;
  CryptoHasher: new (
    algorithm: string,
  ) => {
    update(data: string): unknown;
    digest(): Uint8Array;
  };
}

/** Bun's global when running under Bun, else undefined. */
export const bun: BunRuntime | undefined = (globalThis as { Bun?: BunRuntime }).Bun;

/** The SHA-1 digest of the UTF-8 bytes of `s` (names.ts: deterministic veth names and MACs). */
export function sha1(s: string): Uint8Array {
  if (bun) {
    const h = new bun.CryptoHasher('sha1');
    h.update(s);
    return h.digest();
  }
  return process.getBuiltinModule('node:crypto').createHash('sha1').update(s).digest();
}
