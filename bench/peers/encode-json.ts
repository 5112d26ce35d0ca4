/** Event chunks → `/ingest/batch` bodies, written as text directly from the typed arrays. */
import { COUNTRIES, EVENT_TYPES, NONE, PAGES, PLANS, type EventChunk } from './events.js';

const TYPE_JSON = EVENT_TYPES.map((t) => JSON.stringify(t));
const PLAN_JSON = PLANS.map((p) => JSON.stringify(p));
const COUNTRY_JSON = COUNTRIES.map((c) => JSON.stringify(c));
const PAGE_JSON = PAGES.map((p) => JSON.stringify(p));

/** Per-user `"user_id":"…"` fragments, built once per user list (JSON-escaped by JSON.stringify). */
export function userFragments(userIds: readonly string[]): string[] {
  return userIds.map((u) => `"user_id":${JSON.stringify(u)}`);
}

/**
 * `{"events":[…]}` for events [from, to) of a chunk. Values use JavaScript's number text (what
 * JSON.stringify writes), so the engine parses back the very doubles the peers load from Arrow.
 * Without `withTimestamp` the events carry none and the engine stamps them on receipt.
 */
export function batchBody(c: EventChunk, from: number, to: number, users: readonly string[], withTimestamp = true): string {
  const parts: string[] = new Array(to - from);
  for (let i = from; i < to; i++) {
    let s = withTimestamp ? `{"timestamp":${c.timestamp[i]},"event_type":` : '{"event_type":';
    s += TYPE_JSON[c.eventType[i]!]! + ',' + users[c.user[i]!]!;
    const v = c.value[i]!;
    s += Number.isNaN(v) ? ',"value":null' : `,"value":${v}`;
    const plan = c.plan[i]!;
    if (plan !== NONE) {
      s += `,"metadata":{"plan":${PLAN_JSON[plan]},"country":${COUNTRY_JSON[c.country[i]!]}`;
      const page = c.page[i]!;
      s += page === NONE ? '}}' : `,"page":${PAGE_JSON[page]}}}`;
    } else {
      s += '}';
    }
    parts[i - from] = s;
  }
  return `{"events":[${parts.join(',')}]}`;
}
