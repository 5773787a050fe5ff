/**
 * Pure: a "newc" (SVR4, no CRC) cpio archive, the format the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Only what an initramfs needs:
 * directories, regular files, symlinks and character devices (/dev/console), all owned by root.
 */

/** One archive member. Paths are relative to the archive root, without a leading slash. */
export type CpioEntry =
  | { kind: 'dir'; path: string; mode?: number }
  | { kind: 'file'; path: string; data: Uint8Array; mode?: number }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

/** Bytes needed to pad `len` to a multiple of 4 (newc aligns names and data to 4 bytes). */
function pad4(len: number): number {
  return (4 - (len % 4)) % 4;
}

interface Header {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdevMajor: number;
  rdevMinor: number;
  name: string;
}

function header(h: Header): Buffer {
  const name = Buffer.from(`${h.name}\0`, 'utf8');
  // The 13 fields after the magic: ino mode uid gid nlink mtime filesize devmajor devminor
  // rdevmajor rdevminor namesize check. mtime 0 keeps the archive reproducible.
  const fields = [h.ino, h.mode, 0, 0, h.nlink, 0, h.size, 0, 0, h.rdevMajor, h.rdevMinor, name.length, 0];
  const head = Buffer.from(MAGIC + fields.map(hex8).join(''), 'ascii');
  return Buffer.concat([head, name, Buffer.alloc(pad4(head.length + name.length))]);
}

/**
 * Encodes `entries` in order, followed by the trailer. Parents must come before their children
 * (the kernel creates members in archive order). Throws RangeError on an absolute or empty path.
 */
export function encodeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    if (e.path === '' || e.path.startsWith('/')) throw new RangeError(`cpio path must be relative: '${e.path}'`);
    let mode: number;
    let data: Uint8Array = new Uint8Array(0);
    let rdevMajor = 0;
    let rdevMinor = 0;
    switch (e.kind) {
      case 'dir':
        mode = S_IFDIR | (e.mode ?? 0o755);
        break;
      case 'file':
        mode = S_IFREG | (e.mode ?? 0o644);
        data = e.data;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        data = Buffer.from(e.target, 'utf8');
        break;
      case 'chardev':
        mode = S_IFCHR | (e.mode ?? 0o600);
        rdevMajor = e.major;
        rdevMinor = e.minor;
        break;
    }
    parts.push(
      header({
        ino: ino++,
        mode,
        nlink: e.kind === 'dir' ? 2 : 1,
        size: data.length,
        rdevMajor,
        rdevMinor,
        name: e.path,
      }),
    );
    if (data.length > 0) {
      parts.push(Buffer.from(data.buffer, data.byteOffset, data.length), Buffer.alloc(pad4(data.length)));
    }
  }
  parts.push(header({ ino: 0, mode: 0, nlink: 1, size: 0, rdevMajor: 0, rdevMinor: 0, name: TRAILER }));
  return Buffer.concat(parts);
}

/** A decoded member (for tests and for inspecting a cached image). */
export interface CpioMember {
  path: string;
  mode: number;
  data: Buffer;
  rdevMajor: number;
  rdevMinor: number;
}

/** Decodes a newc archive up to its trailer. Throws RangeError on a bad magic or a truncated member. */
export function decodeCpio(buf: Buffer): CpioMember[] {
  const out: CpioMember[] = [];
  let off = 0;
  for (;;) {
    if (off + 110 > buf.length) throw new RangeError(`cpio truncated at ${off}`);
    const magic = buf.toString('ascii', off, off + 6);
    if (magic !== MAGIC) throw new RangeError(`cpio bad magic '${magic}' at ${off}`);
    const field = (i: number) => Number.parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const namesize = field(11);
    const nameStart = off + 110;
    const path = buf.toString('utf8', nameStart, nameStart + namesize - 1);
    const dataStart = nameStart + namesize + pad4(110 + namesize);
    if (dataStart + size > buf.length) throw new RangeError(`cpio member '${path}' truncated`);
    if (path === TRAILER) return out;
    out.push({
      path,
      mode,
      data: buf.subarray(dataStart, dataStart + size),
      rdevMajor: field(9),
      rdevMinor: field(10),
    });
    off = dataStart + size + pad4(size);
  }
}
