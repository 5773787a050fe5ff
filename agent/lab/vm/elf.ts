/**
 * Pure: the two facts the image builder needs about an ELF file. A statically linked busybox has
 * no PT_INTERP program header (a dynamic one pays 0.1-0.2 s of dynamic linking per applet exec
 * under TCG, which makes guests boot seconds slower); a kernel payload is an ELF when it starts
 * with 7f 'E' 'L' 'F'.
 */

export function isElf(buf: Uint8Array): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

const PT_INTERP = 3;

/** true when a 64-bit little-endian ELF has no PT_INTERP (static); throws RangeError if not such an ELF. */
export function isStaticElf64(buf: Buffer): boolean {
  if (!isElf(buf) || buf.length < 64) throw new RangeError('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new RangeError('not a 64-bit little-endian ELF');
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  if (phoff + phentsize * phnum > buf.length) throw new RangeError('ELF program headers truncated');
  for (let i = 0; i < phnum; i++) {
    if (buf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false;
  }
  return true;
}

/** Offsets of `magic` in `buf`, at most `max` of them (where a compressed kernel payload may start). */
export function findAll(buf: Buffer, magic: Buffer, max = 8): number[] {
  const out: number[] = [];
  let i = buf.indexOf(magic);
  while (i >= 0 && out.length < max) {
    out.push(i);
    i = buf.indexOf(magic, i + 1);
  }
  return out;
}
