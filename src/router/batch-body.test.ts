import { describe, expect, it } from 'vitest';
import { BatchBody } from './batch-body.js';
import { eventColumns } from './event-columns.js';
import { HttpError } from './http-error.js';
import { parseJson } from './read-body.js';

/** What POST /ingest/batch refused before parsing first: the depth scan, JSON.parse, then the body's shape. */
function oldRefusal(text: string, maxDepth: number): string | null {
  try {
    const body = parseJson(text, maxDepth);
    if (Array.isArray(body)) return null;
    if (typeof body === 'object' && body !== null) {
      const extra = Object.keys(body).filter((k) => k !== 'events');
      if (extra.length > 0) return `unknown field ${extra[0]}`;
      if (Array.isArray((body as { events?: unknown }).events)) return null;
    }
    return 'not an array';
  } catch (err) {
    return refusalOf(err);
  }
}

/** The same through BatchBody: parse, validate as the route does, confirm the depth. */
function newRefusal(text: string, maxDepth: number): string | null {
  try {
    const batch = BatchBody.parse(text, maxDepth);
    const columns = batch.raws.length > 0 ? eventColumns(batch.raws, 0, null, 2, batch.metadataLevels) : null;
    batch.confirmDepth(columns?.containers ?? -1);
    return null;
  } catch (err) {
    return refusalOf(err);
  }
}

function refusalOf(err: unknown): string {
  if (!(err instanceof HttpError)) throw err;
  // the shape errors' wording is the same code; depth and JSON errors are compared whole
  if (err.message.startsWith('unknown field')) return `unknown field ${err.details!.errors![0]!.field}`;
  if (err.message.startsWith('expected {"events"')) return 'not an array';
  return JSON.stringify({ status: err.status, message: err.message, details: err.details });
}

function rng(seed: number): () => number {
  let s = seed;
  return () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
}

/** Metadata-ish values: nested objects and arrays, strings holding brackets and quotes. */
function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 7 || r < 0.35) {
    const pieces = ['[', ']', '{', '}', '"', '\\', 'a', 'é', ':', ','];
    return rand() < 0.5 ? Array.from({ length: Math.floor(rand() * 3) }, () => pieces[Math.floor(rand() * pieces.length)]).join('') : Math.floor(rand() * 100);
  }
  const n = Math.floor(rand() * 3);
  if (r < 0.6) return Array.from({ length: n }, () => randomValue(rand, depth + 1));
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, randomValue(rand, depth + 1)]));
}

/** An event's JSON text: valid, with metadata of any depth, or a duplicate key hiding a value, or not an event. */
function eventText(rand: () => number): string {
  const base = `"event_type":"e","user_id":"u${Math.floor(rand() * 50)}","value":${Math.floor(rand() * 10)}`;
  const r = rand();
  if (r < 0.3) return `{${base}}`;
  if (r < 0.45) return `{${base},"metadata":{"plan":"pro"}}`;
  if (r < 0.75) {
    const md = randomValue(rand, 0);
    return `{${base},"metadata":${JSON.stringify(typeof md === 'object' && md !== null && !Array.isArray(md) ? md : { v: md })}}`;
  }
  if (r < 0.85) return `{${base},"metadata":${JSON.stringify(randomValue(rand, 0))},"metadata":{"plan":"pro"}}`; // JSON.parse keeps the last
  if (r < 0.92) return JSON.stringify(randomValue(rand, 0));
  return `{${base},"metadata":{"text":"[{[{"}}`;
}

describe('BatchBody: parsed before its depth is known, refused as the depth scan refused it', () => {
  it('refuses exactly the bodies (and with the same error) that scanning before parsing refused, on 4,000 random batches at limits 2-12', () => {
    const rand = rng(3);
    let refusedDeep = 0;
    let proven = 0;
    for (let i = 0; i < 4000; i++) {
      const events = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => eventText(rand)).join(',');
      const r = rand();
      const text = r < 0.45 ? `{"events":[${events}]}` : r < 0.9 ? `[${events}]` : r < 0.95 ? `{"events":[${events}],"events":[]}` : `{"events":[${events}],"x":[[[]]]}`;
      const maxDepth = 2 + Math.floor(rand() * 11);
      const expected = oldRefusal(text, maxDepth);
      expect(newRefusal(text, maxDepth), `${text} at ${maxDepth}`).toBe(expected);
      if (expected?.includes('maxJsonDepth')) refusedDeep++;
      if (expected !== null) continue;
      // how often the count proved a body shallow without the scan
      const batch = BatchBody.parse(text, maxDepth);
      const cols = eventColumns(batch.raws, 0, null, 2, batch.metadataLevels);
      if (cols !== null && (text.match(/[[{]/g)?.length ?? 0) === batch.above + cols.containers) proven++;
    }
    expect(refusedDeep).toBeGreaterThan(400);
    expect(proven).toBeGreaterThan(400);
  });

  it('refuses metadata nested 200,000 deep, a top level nested as deep, and malformed text, as before', () => {
    const deepMeta = '{"events":[{"event_type":"x","user_id":"u","metadata":' + '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_001) + ']}';
    const deepTop = '['.repeat(200_000) + ']'.repeat(200_000);
    for (const text of [deepMeta, deepTop, deepMeta.slice(0, -3), '', '  ', '{"events":[1,]}', '[{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1', '{"events":{}}']) {
      expect(newRefusal(text, 32), text.slice(0, 80)).toBe(oldRefusal(text, 32));
      expect(newRefusal(text, 32)).not.toBeNull();
    }
    expect(newRefusal(deepMeta, 32)).toContain('body nests deeper than maxJsonDepth (32)');
  });
});
