/**
 * The envelope every JSON answer gets: the kind's fields, then `query_time_ms` and `timestamp`,
 * serialized once, with pre-serialized JsonText fields spliced in, and bounded by
 * `maxResponseBytes`. Pure.
 */
import { JsonText } from './kind.js';
import { overLimit } from './request-error.js';

/**
 * `{...answer, query_time_ms, timestamp}` as JSON text.
 * @throws RequestError (`invalid`, LIMIT_EXCEEDED) when longer than `maxBytes`.
 */
export function serializeAnswer(answer: Record<string, unknown>, startedMs: number, maxBytes: number): string {
  const parts: string[] = [];
  let size = 0;
  for (const [key, value] of Object.entries(answer)) {
    if (value === undefined) continue;
    const text = value instanceof JsonText ? value.text : JSON.stringify(value);
    parts.push(`${JSON.stringify(key)}:${text}`);
    // UTF-8 bytes are between 1× and 3× the UTF-16 length: only encode when that cannot decide.
    size += text.length * 3 > maxBytes ? Buffer.byteLength(text, 'utf8') : text.length;
    if (size > maxBytes) throw tooLarge(size, maxBytes);
  }
  parts.push(`"query_time_ms":${JSON.stringify(performance.now() - startedMs)}`, `"timestamp":${JSON.stringify(new Date().toISOString())}`);
  return `{${parts.join(',')}}`;
}

function tooLarge(bytes: number, max: number) {
  return overLimit('(answer)', `the answer is over ${bytes} bytes: narrow the filter, group by fewer keys or ask for fewer rows`, 'maxResponseBytes', max);
}
