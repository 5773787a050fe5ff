/**
 * Bounds-checked writer over one reusable scratch buffer. buffer-layout never grows a buffer, so
 * encoders write into a 65535-byte scratch area and copy out the finished message. Encoding is
 * synchronous and never re-entered, so one module-level scratch is safe.
 */
import type { Layout } from 'buffer-layout';
import { EncodeError } from './errors.js';

const SCRATCH = Buffer.allocUnsafe(65535);

export class Writer {
  pos = 0;
  constructor(
    readonly buf: Buffer = SCRATCH,
    readonly limit: number = SCRATCH.length,
  ) {}

  ensure(n: number): void {
    if (this.pos + n > this.limit) throw new EncodeError(`message exceeds ${this.limit} bytes`);
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** Encodes a fixed-span buffer-layout structure. */
  layout<T>(l: Layout<T>, v: T): void {
    this.ensure(l.span);
    this.pos += l.encode(v, this.buf, this.pos);
  }
  /** Reserves a u16 length field; fill it with `patchU16`. */
  reserveU16(): number {
    this.ensure(2);
    const at = this.pos;
    this.pos += 2;
    return at;
  }
  patchU16(at: number, v: number): void {
    this.buf.writeUInt16BE(v, at);
  }
  patchU8(at: number, v: number): void {
    this.buf[at] = v;
  }
  /** A copy of the bytes written from `start`. */
  copy(start = 0): Buffer {
    const out = Buffer.allocUnsafe(this.pos - start);
    this.buf.copy(out, 0, start, this.pos);
    return out;
  }
}
