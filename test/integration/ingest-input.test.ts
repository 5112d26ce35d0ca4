/**
 * Input edge cases posted to a real engine: lone surrogates, impossible dates and deep nesting
 * each answer 400 naming the field, store nothing, and leave every polars process alive.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';

let engine: RunningEngine;
let pids: number[];

async function storedCount(): Promise<number> {
  const res = await postJson(`${engine.queryUrl}/query/aggregate`, {});
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.results[0].count;
}

async function polarsPids(): Promise<number[]> {
  const res = await getJson(`${engine.queryUrl}/stats/shards`);
  return (res.body.shards as Array<{ polars_pid: number }>).map((s) => s.polars_pid);
}

const ok = { event_type: 'click', user_id: 'u1', value: 1 };
const deepMetadata = (depth: number) => '{"event_type":"x","user_id":"u","metadata":' + '{"a":'.repeat(depth) + '1' + '}'.repeat(depth + 1);

beforeAll(async () => {
  engine = await startEngine({ shards: 2 });
  // One event stored first, so "nothing stored" is checked against a non-empty engine.
  expect((await postJson(`${engine.ingestUrl}/ingest`, { ...ok, user_id: 'seed' })).status).toBeLessThan(300);
  pids = await polarsPids();
});
afterAll(async () => {
  await engine?.stop();
});

type Case = [name: string, path: string, body: string, contentType: string, field: string, index?: number];

const cases: Case[] = [
  ['user_id with a lone high surrogate', '/ingest', JSON.stringify({ ...ok, user_id: 'a\ud800' }), 'application/json', 'user_id'],
  ['user_id with a lone low surrogate', '/ingest', JSON.stringify({ ...ok, user_id: 'a\udc00' }), 'application/json', 'user_id'],
  ['event_type with a lone surrogate', '/ingest', JSON.stringify({ ...ok, event_type: 'a\ud800' }), 'application/json', 'event_type'],
  ['a metadata value with a lone surrogate', '/ingest', JSON.stringify({ ...ok, metadata: { page: 'a\udc00' } }), 'application/json', 'metadata.page'],
  ['a nested metadata value', '/ingest/batch', JSON.stringify({ events: [ok, { ...ok, metadata: { a: { b: ['a\ud800'] } } }] }), 'application/json', 'metadata.a.b[0]', 1],
  ['a metadata key with a lone surrogate', '/ingest', JSON.stringify({ ...ok, metadata: { ['k\ud800']: 1 } }), 'application/json', 'metadata.k\\ud800'],
  ['a batch event with a lone surrogate', '/ingest/batch', JSON.stringify({ events: [ok, ok, { ...ok, user_id: 'x\udc00' }] }), 'application/json', 'user_id', 2],
  ['an NDJSON line with a lone surrogate', '/ingest/ndjson', `${JSON.stringify(ok)}\n${JSON.stringify({ ...ok, user_id: 'x\ud800' })}\n`, 'application/x-ndjson', 'user_id', 1],
  ['2026-02-31', '/ingest', JSON.stringify({ ...ok, timestamp: '2026-02-31' }), 'application/json', 'timestamp'],
  ['2026-13-01', '/ingest', JSON.stringify({ ...ok, timestamp: '2026-13-01' }), 'application/json', 'timestamp'],
  ['2026-02-29T25:00:00Z', '/ingest/batch', JSON.stringify([ok, { ...ok, timestamp: '2026-02-29T25:00:00Z' }]), 'application/json', 'timestamp', 1],
  ['metadata nested 200,000 deep', '/ingest', deepMetadata(200_000), 'application/json', '(body)'],
  ['a batch nested 33 deep', '/ingest/batch', JSON.stringify({ events: [{ ...ok, metadata: JSON.parse(deepMetadata(30)).metadata }] }), 'application/json', '(body)'],
  ['an NDJSON line nested 200,000 deep', '/ingest/ndjson', `${JSON.stringify(ok)}\n${deepMetadata(200_000)}\n`, 'application/x-ndjson', '(body)', 1],
];

describe('ingest input edge cases', () => {
  it.each(cases)('%s → 400 naming the field, nothing stored, polars alive', async (_name, path, body, contentType, field, index) => {
    const before = await storedCount();
    const res = await postJson(`${engine.ingestUrl}${path}`, body, contentType);
    expect(res.status, JSON.stringify(res.body).slice(0, 300)).toBe(400);
    const named = (res.body.errors as Array<{ field: string; index?: number }>).find((e) => e.field === field);
    expect(named, JSON.stringify(res.body).slice(0, 300)).toBeDefined();
    if (index !== undefined) expect(named!.index).toBe(index);
    if (field === '(body)') expect(res.body.message).toBe('body nests deeper than maxJsonDepth (32)');
    expect(res.body.request_id).toBe(res.headers.get('x-request-id'));
    expect(await storedCount()).toBe(before);
    expect(await polarsPids()).toEqual(pids);
  });

  it('stores a timestamp without a zone as UTC, and a real leap day', async () => {
    const events = [
      { ...ok, user_id: 'utc-1', timestamp: '2026-03-01T10:00:00' },
      { ...ok, user_id: 'utc-2', timestamp: '2024-02-29' },
    ];
    expect((await postJson(`${engine.ingestUrl}/ingest/batch`, { events })).status).toBeLessThan(300);
    const from = Date.UTC(2026, 2, 1, 10);
    const res = await postJson(`${engine.queryUrl}/query/aggregate`, { filter: { from, to: from + 1, user_id: 'utc-1' } });
    expect(res.body.results[0].count).toBe(1);
    const leap = await postJson(`${engine.queryUrl}/query/aggregate`, { filter: { from: Date.UTC(2024, 1, 29), to: Date.UTC(2024, 2, 1), user_id: 'utc-2' } });
    expect(leap.body.results[0].count).toBe(1);
  });

  it('accepts emoji and other well-formed non-ASCII strings', async () => {
    const res = await postJson(`${engine.ingestUrl}/ingest`, { event_type: 'view 👀', user_id: 'ünï 😀', metadata: { 'kéy 🎉': ['𝄞'] } });
    expect(res.status).toBe(202);
  });
});
