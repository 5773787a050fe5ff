/**
 * Time and randomness, injected. This file and the `main.ts` entry points are the only places
 * that call setTimeout, performance.now or Math.random (STYLE §6); everything else takes a Clock.
 */

export interface TimerHandle {
  cancel(): void;
  /** Do not keep the process alive for this timer (housekeeping timers). */
  unref(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Wall-clock milliseconds since the epoch (for records people read, e.g. allocation timestamps). */
  wallNow(): number;
  /** Runs `fn` after `ms`; 0 (or less) means after the I/O callbacks of the current loop turn. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  /** Uniform in [0, 1). Injected so backoff and jitter are deterministic in tests. */
  random(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer(ms, fn) {
    if (ms <= 0) {
      // "As soon as possible": after the I/O callbacks of this loop turn (setTimeout(0) would
      // wait at least 1 ms, which a BGP withdrawal through a route reflector must not).
      const im = setImmediate(fn);
      return {
        cancel: () => clearImmediate(im),
        unref: () => {
          im.unref();
        },
      };
    }
    const t = setTimeout(fn, ms);
    return {
      cancel: () => clearTimeout(t),
      unref: () => {
        t.unref();
      },
    };
  },
  random: () => Math.random(),
};

/** Resolves after `ms` on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimer(ms, resolve);
  });
}

/**
 * A clock that only moves when told. Timers fire in due order during advance(); random() replays
 * a fixed sequence (or 0.5) so jitter is reproducible.
 */
export class ManualClock implements Clock {
  private t = 0;
  private wall: number;
  private seq = 0;
  private timers: { due: number; seq: number; fn: () => void; live: boolean }[] = [];
  private randoms: number[];
  private ri = 0;

  constructor(opts: { startWallMs?: number; randoms?: number[] } = {}) {
    this.wall = opts.startWallMs ?? 1_700_000_000_000;
    this.randoms = opts.randoms ?? [0.5];
  }

  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wall + this.t;
  }
  random(): number {
    const r = this.randoms[this.ri % this.randoms.length] ?? 0.5;
    this.ri++;
    return r;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const entry = { due: this.t + Math.max(0, ms), seq: this.seq++, fn, live: true };
    this.timers.push(entry);
    return {
      cancel: () => {
        entry.live = false;
      },
      unref: () => {},
    };
  }
  /** Number of armed timers that have not fired or been cancelled. */
  pending(): number {
    return this.timers.filter((x) => x.live).length;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.timers.filter((x) => x.live && x.due <= end).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (!next) break;
      this.t = next.due;
      next.live = false;
      next.fn();
    }
    this.timers = this.timers.filter((x) => x.live);
    this.t = end;
  }
}
