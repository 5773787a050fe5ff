/**
 * Splits a TCP byte stream into whole BGP messages (pg-protocol's parser shape): a cursor over
 * one growing buffer; the marker and `19 <= length <= max` are checked as soon as those bytes
 * arrive, so a bad stream fails at once and no unbounded length is ever buffered (at most
 * `maxMessageLen - 1` bytes are held). After an error the framer stays failed.
 */
import { MAX_MESSAGE_LEN } from './context.js';
import type { BgpError } from './errors.js';
import { checkLength, checkMarker, HEADER_LEN } from './header.js';

export interface FramerResult {
  /** Whole messages (header included), in stream order. Each is a view of the pushed chunk or a copy; safe to keep. */
  frames: Uint8Array[];
  /** Set when the stream is broken (1/1 bad marker, 1/2 bad length); frames before it are still returned. */
  error?: BgpError;
}

export class Framer {
  private buf: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  private failed: BgpError | undefined;

  /** 4096 until extended messages are negotiated (RFC 8654), then set to 65535. */
  constructor(public maxMessageLen: number = MAX_MESSAGE_LEN) {}

  /** Bytes held waiting for the rest of a message. */
  get buffered(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): FramerResult {
    if (this.failed) return { frames: [], error: this.failed };
    const frames: Uint8Array[] = [];
    let data: Uint8Array;
    let off: number;
    let end: number;
    if (this.end === this.start) {
      // nothing buffered: parse the chunk in place
      data = chunk;
      off = 0;
      end = chunk.length;
    } else {
      this.append(chunk);
      data = this.buf;
      off = this.start;
      end = this.end;
    }
    while (end - off > 0) {
      const avail = end - off;
      const mErr = checkMarker(data, off, Math.min(avail, 16));
      if (mErr) return this.fail(frames, mErr);
      if (avail < HEADER_LEN) break;
      const length = ((data[off + 16] as number) << 8) | (data[off + 17] as number);
      const lErr = checkLength(length, this.maxMessageLen);
      if (lErr) return this.fail(frames, lErr);
      if (avail < length) break;
      // Frames from the caller's chunk are views of it; frames from our buffer are copies
      // (the buffer is compacted in place by later pushes).
      frames.push(
        data === chunk ? data.subarray(off, off + length) : Uint8Array.prototype.slice.call(data, off, off + length),
      );
      off += length;
    }
    if (data === chunk) {
      if (off < end) this.append(chunk.subarray(off));
    } else {
      this.start = off;
      if (this.start === this.end) this.start = this.end = 0;
    }
    return { frames };
  }

  private append(chunk: Uint8Array): void {
    const need = this.end - this.start + chunk.length;
    if (this.buf.length - this.end < chunk.length) {
      // compact, growing to the next power of two if needed (bounded: max message + one chunk)
      let cap = this.buf.length;
      if (cap < need) {
        cap = Math.max(1024, cap);
        while (cap < need) cap *= 2;
      }
      const next = cap === this.buf.length ? this.buf : Buffer.allocUnsafe(cap);
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
      this.end -= this.start;
      this.start = 0;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  private fail(frames: Uint8Array[], error: BgpError): FramerResult {
    this.failed = error;
    this.buf = Buffer.alloc(0);
    this.start = this.end = 0;
    return { frames, error };
  }
}
