/**
 * Event-time windows, defined once for every kind that cuts time (the window kind and the
 * `window` group key of aggregate): windows are aligned to the epoch, a window starts at a
 * multiple of `slide` (= its size when tumbling) and covers [start, start + size). The Python
 * side's counterpart is python/engine_polars/windows.py.
 */
import type { z } from 'zod';
import { BUILTIN } from './limits.js';
import type { PlanFilter } from './schemas.js';

/** Windows [w, w + size) with w a multiple of `slideMs` holding any instant in [first, last] (integers). */
export function windowsSpanned(first: number, last: number, slideMs: number, panesPerWindow: number): number {
  return Math.floor(last / slideMs) - Math.floor(first / slideMs) + panesPerWindow;
}

/**
 * With both filter bounds, the windows the range spans are known before any shard is asked: more
 * than `maxWindows` is a 400 naming `windowSize`. (Shards check their own data range too.)
 */
export function checkFilterSpan(filter: PlanFilter, windowMs: number, slideMs: number, ctx: z.RefinementCtx): void {
  if (filter.from === undefined || filter.to === undefined) return;
  // Integer timestamps in [from, to): first = ceil(from), last = ceil(to) − 1.
  const first = Math.ceil(filter.from);
  const last = Math.ceil(filter.to) - 1;
  if (last < first) return;
  const n = windowsSpanned(first, last, slideMs, windowMs / slideMs);
  if (n <= BUILTIN.maxWindows) return;
  const what = windowMs === slideMs ? `windowSize ${windowMs} ms` : `windowSize ${windowMs} ms with slide ${slideMs} ms`;
  ctx.addIssue({
    code: 'custom',
    path: ['windowSize'],
    message: `${what} gives ${n} windows over the filter range; at most ${BUILTIN.maxWindows}: use a larger windowSize or slide, or a narrower filter`,
  });
}
