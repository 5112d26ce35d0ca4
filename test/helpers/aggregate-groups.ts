/**
 * Count, non-null values and their sum per group: an independent brute force over the events a
 * test sent, and the engine's `/query/aggregate` answer in the same shape, keyed by the group
 * keys' values joined with `|`.
 */
import { expect } from 'vitest';
import { postJson } from './engine-harness.js';

export interface Group {
  count: number;
  value_count: number;
  value_sum: number;
}

export function bruteForceGroups<E extends { value?: number | null }>(events: readonly E[], key: (e: E) => string): Map<string, Group> {
  const out = new Map<string, Group>();
  for (const e of events) {
    const g = out.get(key(e)) ?? { count: 0, value_count: 0, value_sum: 0 };
    g.count++;
    if (e.value != null) {
      g.value_count++;
      g.value_sum += e.value;
    }
    out.set(key(e), g);
  }
  return out;
}

export async function storedGroups(queryUrl: string, groupBy: string[]): Promise<Map<string, Group>> {
  const res = await postJson(`${queryUrl}/query/aggregate`, { groupBy, metrics: ['value'] });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return new Map(
    (res.body.results as Array<Record<string, any>>).map((r) => [groupBy.map((k) => String(r[k])).join('|'), { count: r.count, value_count: r.value_count, value_sum: r.value_sum ?? 0 }]),
  );
}
