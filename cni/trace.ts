/**
 * Phase timestamps for profiling a plugin run: with PETREL_CNI_TRACE=1 in the environment, each
 * `mark(label)` records performance.now() (ms since the runtime started) and the run ends with
 * one stderr line `petrel-trace label=ms label=ms …`. If the caller also passes
 * PETREL_CNI_TRACE_T0 (its Date.now() just before spawning the plugin), the line starts with
 * `exec=ms`: the time from the spawn to the runtime's start. Without the variable, `mark` does
 * nothing.
 */
import { writeErr } from '../agent/common/output.js';

const on = process.env.PETREL_CNI_TRACE === '1';
const marks: [string, number][] = [];

export function mark(label: string): void {
  if (on) marks.push([label, performance.now()]);
}

/** Writes the recorded marks to stderr (only under PETREL_CNI_TRACE=1). */
export function flushTrace(): void {
  if (!on || marks.length === 0) return;
  const t0 = Number(process.env.PETREL_CNI_TRACE_T0);
  const exec = Number.isFinite(t0) && t0 > 0 ? [`exec=${(performance.timeOrigin - t0).toFixed(1)}`] : [];
  const parts = [...exec, ...marks.map(([l, t]) => `${l}=${t.toFixed(1)}`)];
  writeErr(`petrel-trace ${parts.join(' ')}\n`);
}
