/**
 * Shell: the guest kernel and initramfs, built once and cached (default /var/cache/petrel/vm,
 * or $PETREL_VM_CACHE). From the host's own Debian kernel:
 *   vmlinux-KVER                 the ELF kernel unpacked from /boot/vmlinuz-KVER. qemu boots it
 *                                through its PVH entry (CONFIG_PVH=y), skipping real-mode setup
 *                                and in-guest decompression: ~4 s less per boot under TCG.
 *   initramfs-KVER-HASH.cpio.gz  a static busybox, INIT, STAGE2 and the few modules needed to
 *                                reach the 9p root (everything else — ipip, veth, nf_tables — is
 *                                modprobe'd later from the host's /lib/modules, which the guest
 *                                sees). HASH covers the scripts, the module list and busybox, so
 *                                a change rebuilds and old files are harmless.
 * Writes go to a temp file and are renamed into place: concurrent builders never see half a file.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { type CpioEntry, encodeCpio } from './cpio.js';
import { findAll, isElf, isStaticElf64 } from './elf.js';
import { VmError, VmErrorCode } from './errors.js';
import { BOOT_MODULES, INIT, STAGE2 } from './guest-scripts.js';
import { loadOrder, ModuleNotFoundError, parseModulesBuiltin, parseModulesDep } from './kmod.js';

export interface VmImage {
  kver: string;
  /** vmlinux (PVH) when it could be unpacked, else the bzImage */
  kernel: string;
  initrd: string;
  /** true when something was (re)built by this call */
  built: boolean;
  buildMs: number;
}

export interface ImageOptions {
  cacheDir?: string;
  /** kernel version (default: the newest /boot/vmlinuz-* with /lib/modules/KVER) */
  kver?: string;
  /** a static busybox (default $PETREL_VM_BUSYBOX, /bin/busybox, /usr/bin/busybox) */
  busybox?: string;
}

export function defaultCacheDir(): string {
  return process.env.PETREL_VM_CACHE ?? '/var/cache/petrel/vm';
}

/** Compares Debian kernel versions such as 6.1.0-57-amd64 numerically, part by part. */
function compareKver(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    const d = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x.localeCompare(y);
    if (d !== 0) return d;
  }
  return 0;
}

/** The newest kernel that has both /boot/vmlinuz-KVER and /lib/modules/KVER, or undefined. */
export function findKernelVersion(): string | undefined {
  let names: string[] = [];
  try {
    names = readdirSync('/boot');
  } catch {
    return undefined;
  }
  return names
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .filter((v) => existsSync(`/lib/modules/${v}/modules.dep`))
    .sort(compareKver)
    .pop();
}

/** A static busybox, or undefined. */
export function findStaticBusybox(explicit?: string): string | undefined {
  const candidates = [explicit, process.env.PETREL_VM_BUSYBOX, '/bin/busybox', '/usr/bin/busybox'];
  for (const c of candidates) {
    if (!c || !existsSync(c)) continue;
    try {
      if (isStaticElf64(readFileSync(c))) return c;
    } catch {
      /* not an ELF */
    }
  }
  return undefined;
}

function writeAtomic(path: string, data: Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);

/** Unpacks the ELF payload of a bzImage (tries each compressed-stream magic it contains). */
async function extractVmlinux(bzImage: Buffer): Promise<Buffer | undefined> {
  const tools: [Buffer, string, string[]][] = [
    [XZ_MAGIC, 'xz', ['-dc', '--single-stream']],
    [ZSTD_MAGIC, 'zstd', ['-dcq']],
    [GZIP_MAGIC, 'gzip', ['-dc']],
  ];
  for (const [magic, tool, args] of tools) {
    for (const off of findAll(bzImage, magic, 5)) {
      const out = await collect(tool, args, bzImage.subarray(off));
      if (out && isElf(out)) return out;
    }
  }
  return undefined;
}

/** stdout of `cmd args < input` as a Buffer (whatever the exit code: trailing data is normal). */
function collect(cmd: string, args: string[], input: Buffer): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    p.stdout.on('data', (b: Buffer) => chunks.push(b));
    p.on('error', () => resolve(undefined));
    p.on('close', () => resolve(chunks.length ? Buffer.concat(chunks) : undefined));
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}

async function readModule(path: string): Promise<Buffer> {
  if (path.endsWith('.ko')) return readFileSync(path);
  const tool = path.endsWith('.xz') ? 'xz' : path.endsWith('.zst') ? 'zstd' : 'gzip';
  const out = await collect(tool, ['-dc'], readFileSync(path));
  if (!out) throw new VmError(VmErrorCode.NoModule, `cannot decompress ${path} with ${tool}`);
  return out;
}

/** Builds (or finds in the cache) the kernel and initramfs for `kver`. */
export async function ensureImage(opts: ImageOptions = {}): Promise<VmImage> {
  const t0 = performance.now();
  const kver = opts.kver ?? findKernelVersion();
  if (!kver) {
    throw new VmError(VmErrorCode.NoKernel, 'no /boot/vmlinuz-* with /lib/modules (apt-get install linux-image-amd64)');
  }
  const bzPath = `/boot/vmlinuz-${kver}`;
  if (!existsSync(bzPath)) throw new VmError(VmErrorCode.NoKernel, `${bzPath} missing`);
  const cache = opts.cacheDir ?? defaultCacheDir();
  mkdirSync(cache, { recursive: true });
  let built = false;

  let kernel = join(cache, `vmlinux-${kver}`);
  const bzMtime = statSync(bzPath).mtimeMs;
  if (!existsSync(kernel) || statSync(kernel).mtimeMs < bzMtime) {
    const elf = await extractVmlinux(readFileSync(bzPath));
    if (elf) {
      writeAtomic(kernel, elf);
      built = true;
    } else {
      kernel = bzPath; // boots too, ~4 s slower under TCG
    }
  }

  const busybox = findStaticBusybox(opts.busybox);
  if (!busybox) {
    throw new VmError(VmErrorCode.NoBusybox, 'needs a statically linked busybox (apt-get install busybox-static)');
  }
  const modDir = `/lib/modules/${kver}`;
  let order: string[];
  try {
    const builtin = existsSync(`${modDir}/modules.builtin`)
      ? parseModulesBuiltin(readFileSync(`${modDir}/modules.builtin`, 'utf8'))
      : new Set<string>();
    order = loadOrder(parseModulesDep(readFileSync(`${modDir}/modules.dep`, 'utf8')), builtin, BOOT_MODULES);
  } catch (err) {
    if (err instanceof ModuleNotFoundError) throw new VmError(VmErrorCode.NoModule, err.message, { cause: err });
    throw err;
  }
  const bb = readFileSync(busybox);
  const hash = createHash('sha256')
    .update(INIT)
    .update(STAGE2)
    .update(order.join('\n'))
    .update(bb)
    .digest('hex')
    .slice(0, 12);
  const initrd = join(cache, `initramfs-${kver}-${hash}.cpio.gz`);
  if (!existsSync(initrd)) {
    const entries: CpioEntry[] = [
      ...['bin', 'dev', 'proc', 'sys', 'mnt', 'newroot', 'lib', 'lib/petrel-vm'].map(
        (path): CpioEntry => ({ kind: 'dir', path }),
      ),
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'file', path: 'bin/busybox', data: bb, mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'busybox' },
      { kind: 'file', path: 'init', data: Buffer.from(INIT), mode: 0o755 },
      { kind: 'file', path: 'lib/petrel-vm/stage2', data: Buffer.from(STAGE2), mode: 0o755 },
    ];
    const names: string[] = [];
    for (const rel of order) {
      const name = rel.slice(rel.lastIndexOf('/') + 1).replace(/\.(xz|zst|gz)$/, '');
      names.push(name);
      entries.push({ kind: 'file', path: `lib/petrel-vm/${name}`, data: await readModule(`${modDir}/${rel}`) });
    }
    entries.push({ kind: 'file', path: 'lib/petrel-vm/modules.order', data: Buffer.from(`${names.join('\n')}\n`) });
    writeAtomic(initrd, gzipSync(encodeCpio(entries), { level: 1 }));
    built = true;
  }
  return { kver, kernel, initrd, built, buildMs: performance.now() - t0 };
}
