/** Brute force for the dashboard's recent windows: events per (one-minute window, event type). */
import type { TestEvent } from './random-events.js';

/**
 * Count and value sum per `${window_start}|${event_type}` of the events inside the dashboard's
 * windows (`starts`: their one-minute window starts, in order).
 */
export function recentWindowsBrute(events: Iterable<TestEvent>, starts: number[]): Map<string, { count: number; sum: number }> {
  const first = starts[0]!;
  const end = starts[starts.length - 1]! + 60_000;
  const brute = new Map<string, { count: number; sum: number }>();
  for (const e of events) {
    if (e.timestamp < first || e.timestamp >= end) continue;
    const key = `${Math.floor(e.timestamp / 60_000) * 60_000}|${e.event_type}`;
    const g = brute.get(key) ?? { count: 0, sum: 0 };
    g.count++;
    g.sum += e.value ?? 0;
    brute.set(key, g);
  }
  return brute;
}
