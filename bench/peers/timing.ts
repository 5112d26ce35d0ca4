/** Timed runs: warm-ups, then timed runs, keeping the first run's result for the cross-check. */

export interface Timing {
  runs: number;
  median_ms: number;
  p95_ms: number;
  min_ms: number;
  max_ms: number;
}

/** The q-quantile of sorted numbers, linear between closest ranks (h = (n − 1)·q). */
export function quantileSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

export function summarize(times: readonly number[]): Timing {
  const s = [...times].sort((a, b) => a - b);
  return { runs: s.length, median_ms: quantileSorted(s, 0.5), p95_ms: quantileSorted(s, 0.95), min_ms: s[0] ?? NaN, max_ms: s[s.length - 1] ?? NaN };
}

/**
 * Runs `once` `warmup` times untimed, then `runs` times timed (one at a time, nothing else in
 * flight). Returns the timings and the very first run's result: the answer that is cross-checked.
 */
export async function timeRuns<T>(once: () => Promise<T>, warmup: number, runs: number): Promise<{ timing: Timing; first: T }> {
  let first: T | undefined;
  let have = false;
  const times: number[] = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    const r = await once();
    const dt = performance.now() - t0;
    if (!have) {
      first = r;
      have = true;
    }
    if (i >= warmup) times.push(dt);
  }
  if (!have) throw new Error('timeRuns needs at least one run');
  return { timing: summarize(times), first: first as T };
}
