/**
 * Deterministic mutation fuzzing for the codec (used by `fuzz.test.ts` and `bench/fuzz-codec.ts`).
 * Pure: the PRNG is seeded (mulberry32), so every failure reproduces from (seed, iteration).
 *
 * Property checked per input: `decodeMessage` never throws; a message that decodes re-encodes
 * without throwing and decodes again to the same value (encode/decode are inverse on their
 * image); the framer never throws on the same bytes in random chunks.
 */
import { isDeepStrictEqual } from 'node:util';
import type { CodecContext } from './context.js';
import { Framer } from './framer.js';
import { decodeMessage, encodeMessage } from './message.js';

/** mulberry32: small, fast, good enough for fuzzing. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x06, 0x0f, 0x10, 0x1f, 0x20, 0x21, 0x40, 0x7f, 0x80, 0x81, 0xc0, 0xe0, 0xfe, 0xff,
];

/** Returns a mutated copy of `input` (1..4 stacked mutations; the header length is often fixed up). */
export function mutate(input: Uint8Array, rnd: () => number): Uint8Array {
  let b = Uint8Array.from(input);
  const int = (n: number) => Math.floor(rnd() * n);
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    const pos = b.length === 0 ? 0 : int(b.length);
    switch (int(9)) {
      case 0:
        if (b.length) b[pos] = (b[pos] as number) ^ (1 << int(8));
        break;
      case 1:
        if (b.length) b[pos] = int(256);
        break;
      case 2:
        if (b.length) b[pos] = INTERESTING[int(INTERESTING.length)] as number;
        break;
      case 3: {
        const n = 1 + int(8);
        const ins = new Uint8Array(b.length + n);
        ins.set(b.subarray(0, pos));
        for (let i = 0; i < n; i++) ins[pos + i] = int(256);
        ins.set(b.subarray(pos), pos + n);
        b = ins;
        break;
      }
      case 4: {
        const n = Math.min(b.length - pos, 1 + int(8));
        const del = new Uint8Array(b.length - n);
        del.set(b.subarray(0, pos));
        del.set(b.subarray(pos + n), pos);
        b = del;
        break;
      }
      case 5:
        b = b.slice(0, int(b.length + 1));
        break;
      case 6: {
        // duplicate a region (repeats attributes, prefixes, capabilities)
        const len = Math.min(b.length - pos, 1 + int(32));
        const dup = new Uint8Array(b.length + len);
        dup.set(b.subarray(0, pos + len));
        dup.set(b.subarray(pos, pos + len), pos + len);
        dup.set(b.subarray(pos + len), pos + 2 * len);
        b = dup;
        break;
      }
      case 7:
        // a 16-bit length field somewhere after the header: +-1, 0, or 0xffff
        if (b.length > 21) {
          const p = 19 + int(b.length - 20);
          const v = [
            0,
            0xffff,
            ((b[p] as number) << 8) + (b[p + 1] as number) + 1,
            ((b[p] as number) << 8) + (b[p + 1] as number) - 1,
          ][int(4)] as number;
          b[p] = (v >>> 8) & 0xff;
          b[p + 1] = v & 0xff;
        }
        break;
      default:
        if (b.length) b[pos] = ((b[pos] as number) + (rnd() < 0.5 ? 1 : 255)) & 0xff;
    }
  }
  // Most of the time keep the header consistent so mutations reach the body decoders.
  if (b.length >= 19 && rnd() < 0.8) {
    b[16] = (b.length >>> 8) & 0xff;
    b[17] = b.length & 0xff;
    for (let i = 0; i < 16; i++) b[i] = 0xff;
  }
  return b;
}

export interface FuzzFailure {
  input: string;
  ctx: CodecContext;
  reason: string;
}

/** Runs the properties on one input; returns a failure description or undefined. */
export function checkInput(input: Uint8Array, ctx: CodecContext, rnd: () => number): FuzzFailure | undefined {
  const fail = (reason: string): FuzzFailure => ({ input: Buffer.from(input).toString('hex'), ctx, reason });
  let r: ReturnType<typeof decodeMessage>;
  try {
    r = decodeMessage(input, ctx);
  } catch (err) {
    return fail(`decode threw ${String(err)}`);
  }
  if (r.ok && r.attrErrors.length === 0) {
    let again: ReturnType<typeof decodeMessage>;
    try {
      again = decodeMessage(encodeMessage(r.msg, ctx), ctx);
    } catch (err) {
      return fail(`re-encode threw ${String(err)}`);
    }
    if (!again.ok)
      return fail(`re-encoded message fails: ${again.error.code}/${again.error.subcode} ${again.error.message}`);
    if (!isDeepStrictEqual(again.msg, r.msg)) return fail('decode(encode(m)) != m');
  }
  try {
    const f = new Framer(ctx.extendedMessage ? 65535 : 4096);
    let p = 0;
    while (p < input.length) {
      const n = 1 + Math.floor(rnd() * 64);
      const { frames } = f.push(input.subarray(p, p + n));
      for (const fr of frames) decodeMessage(fr, ctx);
      p += n;
    }
  } catch (err) {
    return fail(`framer threw ${String(err)}`);
  }
  return undefined;
}
