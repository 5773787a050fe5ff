/**
 * Phase timestamps for profiling a plugin run: with PETREL_CNI_TRACE=1 in the environment, each
 * `mark(label)` records the time since the process started and the run ends with one stderr line
 * `petrel-trace start=…ms label=+…ms …`. Without the variable `mark` does nothing.
 */
import { writeErr } from '../agent/common/output.js';

const on = process.env.PETREL_CNI_TRACE === '1';
const marks: [string, number][] = [];

/** Milliseconds since the process started (performance.timeOrigin is the runtime's start). */
function now(): number {
  return performance.now();
}

export function mark(label: string): void {
  if (on) marks.push([label, now()]);
}

/** Writes the recorded marks to stderr (only under PETREL_CNI_TRACE=1). */
export function flushTrace(): void {
  if (!on || marks.length === 0) return;
  const startMs = performance.timeOrigin - (Number(process.env.PETREL_CNI_TRACE_T0 ?? 0) || performance.timeOrigin);
  writeErr(
    `petrel-trace origin-vs-spawn=${startMs.toFixed(1)}ms ${marks.map(([l, t]) => `${l}=${t.toFixed(1)}`).join(' ')}\n`,
  );
}
