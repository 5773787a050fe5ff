/**
 * Process output for every executable (petrel, petrel-ipam, petrel-agent, petrelctl): all text
 * for stdout and stderr goes through `writeOut` / `writeErr`, which return only once every byte
 * is in the kernel (pipe, file or terminal). Nothing is ever pending, so `exit(code)` right after
 * is safe.
 *
 * Why: process.stdout writes to a pipe are asynchronous, and `process.exit()` with writes
 * pending drops them (a 90 KB `petrelctl ipam show --json | wc -c` printed 65536, the pipe's
 * buffer). Writing with fs.writeSync and retrying on EAGAIN (the fd is non-blocking once
 * anything opened process.stdout on it, or when the parent made it so) is the drain. It also
 * keeps start-up small: Bun builds a whole stream stack on first touch of process.stdout
 * (~40 ms), writeSync needs none. A reader that went away (EPIPE) drops the rest quietly, as
 * `yes | head` does.
 */
import { writeSync } from 'node:fs';

let sleeper: Int32Array | undefined;
/** Blocks the thread for `ms` (only while the reader is slower than we are). */
function pause(ms: number): void {
  sleeper ??= new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(sleeper, 0, 0, ms);
}

const broken = new Set<number>();

/** Writes all of `text` to `fd`; returns false if the reader is gone. */
export function writeAllSync(fd: number, text: string | Uint8Array): boolean {
  if (broken.has(fd)) return false;
  let buf = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  let waitMs = 1;
  while (buf.length > 0) {
    let n: number;
    try {
      n = writeSync(fd, buf);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        pause(waitMs);
        waitMs = Math.min(waitMs * 2, 20);
        continue;
      }
      if (code === 'EINTR') continue;
      // EPIPE, EBADF, EIO: nobody reads this any more.
      broken.add(fd);
      return false;
    }
    waitMs = 1;
    buf = buf.subarray(n);
  }
  return true;
}

/** Writes `text` to stdout (add the newline yourself); returns once it is all written. */
export function writeOut(text: string): void {
  if (text !== '') writeAllSync(1, text);
}

/** Writes `text` to stderr; returns once it is all written. */
export function writeErr(text: string): void {
  if (text !== '') writeAllSync(2, text);
}

/** Exits with `code`. Output written through this module is never pending. */
export function exit(code: number): never {
  process.exit(code);
}
