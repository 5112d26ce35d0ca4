/** Asserts an aggregate answer's rows equal a brute-force aggregate of the events, group by group. */
import { expect } from 'vitest';
import { bruteAggregate, closeTo, type TestEvent } from './random-events.js';

export type AggregateFilter = { from?: number; to?: number; event_type?: string[] };

const STATS = ['sum', 'mean', 'min', 'max', 'stddev'] as const;

/**
 * Every difference is collected and asserted once (the first 20 shown): one `expect` per field
 * cost ~20 s for the 340,000 groups of a streamed answer's test. `stats`: the statistics the rows
 * must have, and no other field, in this order after the keys, `count` and `value_count`.
 */
export function expectBruteAggregate(
  results: Array<Record<string, any>>,
  events: TestEvent[],
  groupBy: Array<'event_type' | 'user_id'>,
  filter: AggregateFilter = {},
  stats: ReadonlyArray<(typeof STATS)[number]> = STATS,
): void {
  const expected = bruteAggregate(events, groupBy, filter);
  const fields = [...groupBy, 'count', 'value_count', ...stats.map((s) => `value_${s}`)];
  const floats = stats.map((s) => `value_${s}`);
  const diffs: string[] = [];
  if (results.length !== expected.size) diffs.push(`${results.length} rows, brute force has ${expected.size} groups`);
  const seen = new Set<string>();
  for (const row of results) {
    const key = JSON.stringify(groupBy.map((k) => row[k]));
    if (seen.has(key)) diffs.push(`group ${key} answered twice`);
    seen.add(key);
    if (Object.keys(row).join() !== fields.join()) diffs.push(`${key} has fields ${Object.keys(row).join()}, expected ${fields.join()}`);
    const want = expected.get(key);
    if (want === undefined) {
      diffs.push(`group ${key} is not in the brute force`);
      continue;
    }
    if (row.count !== want.count) diffs.push(`${key} count: ${row.count} vs ${want.count}`);
    if (row.value_count !== want.value_count) diffs.push(`${key} value_count: ${row.value_count} vs ${want.value_count}`);
    for (const f of floats) if (!closeTo(row[f], (want as Record<string, any>)[f])) diffs.push(`${key} ${f}: ${row[f]} vs ${(want as Record<string, any>)[f]}`);
  }
  expect(diffs.slice(0, 20), `${diffs.length} differences from the brute force`).toEqual([]);
}
