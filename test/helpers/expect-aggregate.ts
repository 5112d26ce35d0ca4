/** Asserts an aggregate answer's rows equal a brute-force aggregate of the events, group by group. */
import { expect } from 'vitest';
import { bruteAggregate, closeTo, type TestEvent } from './random-events.js';

export type AggregateFilter = { from?: number; to?: number; event_type?: string[] };

export function expectBruteAggregate(results: Array<Record<string, any>>, events: TestEvent[], groupBy: Array<'event_type' | 'user_id'>, filter: AggregateFilter = {}): void {
  const expected = bruteAggregate(events, groupBy, filter);
  expect(results.length).toBe(expected.size);
  for (const row of results) {
    const key = JSON.stringify(groupBy.map((k) => row[k]));
    const want = expected.get(key);
    expect(want, `group ${key}`).toBeDefined();
    expect(row.count).toBe(want!.count);
    expect(row.value_count).toBe(want!.value_count);
    for (const f of ['value_sum', 'value_mean', 'value_min', 'value_max', 'value_stddev'] as const) {
      expect(closeTo(row[f], want![f]), `${key} ${f}: ${row[f]} vs ${want![f]}`).toBe(true);
    }
  }
}
