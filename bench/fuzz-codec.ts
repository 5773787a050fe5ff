/**
 * Mutation fuzzing of the BGP codec, seeded from the fixtures (issue 3: >= 1,000,000 inputs).
 *
 *   node dist/bench/fuzz-codec.js [--inputs 1000000] [--seed 1]
 *
 * Properties per input (bgp/codec/mutate.ts): decode never throws; what decodes cleanly
 * re-encodes and decodes to the same value; the framer never throws on the same bytes in
 * random chunks. Also: no hang (slowest single input, best of 3 timings, must stay under 100 ms) and
 * bounded memory (peak RSS sampled every 10,000 inputs, must stay under 512 MB).
 * Exit code 1 on any failure; the first failures are printed as hex for a regression row.
 */

import { loadFixtures } from '../bgp/codec/fixtures/load.js';
import { type CodecContext, decodeMessage, makeContext } from '../bgp/codec/index.js';
import { checkInput, type FuzzFailure, mulberry32, mutate } from '../bgp/codec/mutate.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}
const INPUTS = arg('inputs', 1_000_000);
const SEED = arg('seed', 1);
const MAX_INPUT_MS = 100;
const MAX_RSS_MB = 512;

const contexts: CodecContext[] = [
  makeContext(),
  makeContext({ as4: false }),
  makeContext({ extendedMessage: true, addPath: { 'ipv4-unicast': 'both', 'ipv6-unicast': 'both' } }),
];
const fixtures = loadFixtures();
const rnd = mulberry32(SEED);
const failures: FuzzFailure[] = [];
const outcomes = new Map<string, number>();
let peakRss = process.memoryUsage().rss;
let slowestMs = 0;
let slowestInput = '';

const t0 = performance.now();
let corpusGrowth = 0;
// Keep a small rolling corpus of mutants that decoded cleanly: mutating them again reaches deeper states.
const corpus: Uint8Array[] = fixtures.map((f) => f.bytes);
for (let i = 0; i < INPUTS; i++) {
  const seed = corpus[Math.floor(rnd() * corpus.length)] as Uint8Array;
  const input = mutate(seed, rnd);
  const ctx = contexts[i % contexts.length] as CodecContext;
  const s = performance.now();
  const failure = checkInput(input, ctx, rnd);
  let ms = performance.now() - s;
  if (ms > slowestMs && ms > 5) {
    // Re-time a slow input (a GC pause or a busy machine is not a hang): keep the best of 3.
    for (let k = 0; k < 3; k++) {
      const s2 = performance.now();
      checkInput(input, ctx, rnd);
      ms = Math.min(ms, performance.now() - s2);
    }
  }
  if (ms > slowestMs) {
    slowestMs = ms;
    slowestInput = Buffer.from(input).toString('hex').slice(0, 64);
  }
  if (failure && failures.length < 20) failures.push(failure);
  if (i % 16 === 0) {
    const r = decodeMessage(input, ctx);
    const key = r.ok
      ? r.attrErrors.length > 0
        ? `ok, ${r.attrErrors[0]?.action}`
        : 'ok'
      : `${r.error.code}/${r.error.subcode}`;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    if (r.ok && r.attrErrors.length === 0 && corpus.length < 2000 && rnd() < 0.05) {
      corpus.push(input);
      corpusGrowth++;
    }
  }
  if (i % 10_000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
}
const sec = (performance.now() - t0) / 1000;
peakRss = Math.max(peakRss, process.memoryUsage().rss);

const rssMb = peakRss / 1024 / 1024;
console.log('BGP codec fuzz');
console.log(
  `  inputs          ${INPUTS.toLocaleString('en-US')} (seed ${SEED}, ${fixtures.length} fixtures, +${corpusGrowth} corpus mutants)`,
);
console.log(`  time            ${sec.toFixed(1)} s (${Math.round(INPUTS / sec).toLocaleString('en-US')} inputs/s)`);
console.log(`  peak RSS        ${rssMb.toFixed(1)} MB (limit ${MAX_RSS_MB})`);
console.log(`  slowest input   ${slowestMs.toFixed(2)} ms (limit ${MAX_INPUT_MS}) ${slowestInput}…`);
console.log(`  failures        ${failures.length}`);
console.log('  outcomes (1 in 16 sampled):');
for (const [k, v] of [...outcomes].sort((a, b) => b[1] - a[1])) console.log(`    ${k.padEnd(24)} ${v}`);
for (const f of failures.slice(0, 5))
  console.log(`  FAIL ${f.reason}\n       ctx ${JSON.stringify(f.ctx)}\n       ${f.input}`);
const ok = failures.length === 0 && slowestMs < MAX_INPUT_MS && rssMb < MAX_RSS_MB;
console.log(ok ? 'PASS' : 'FAIL');
process.exitCode = ok ? 0 : 1;
