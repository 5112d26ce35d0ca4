/**
 * GET /metrics on a real engine (two ports, two shards, no tokens): the exposition parses, every
 * name has the one prefix and a TYPE, counters move by exactly what was sent, route labels are
 * patterns, and no label value carries a user id or a path parameter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, postJson, type RunningEngine } from '../helpers/engine-harness.js';
import { familyOf, parseExposition, sumOf, type Exposition } from '../helpers/prometheus-text.js';

const SECRET_USER = 'user-secret-7f3a';
let engine: RunningEngine;

async function scrape(base = engine.queryUrl): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

beforeAll(async () => {
  engine = await startEngine({ shards: 2 });
});

afterAll(async () => {
  await engine?.stop();
});

describe('GET /metrics', () => {
  it('names every family with the shardlytics_ prefix, gives each a TYPE, and has the engine\'s own metrics', async () => {
    const e = await scrape();
    for (const s of e.samples) {
      expect(s.name.startsWith('shardlytics_'), s.name).toBe(true);
      expect(familyOf(e, s.name), `${s.name} has no TYPE`).toBeDefined();
    }
    const expected: Record<string, string> = {
      shardlytics_http_requests_total: 'counter',
      shardlytics_http_request_duration_seconds: 'histogram',
      shardlytics_ingest_events_total: 'counter',
      shardlytics_ingest_rejected_events_total: 'counter',
      shardlytics_query_duration_seconds: 'histogram',
      shardlytics_ring_used_bytes: 'gauge',
      shardlytics_ring_capacity_bytes: 'gauge',
      shardlytics_shard_ready: 'gauge',
      shardlytics_shard_rows: 'gauge',
      shardlytics_shard_log_bytes: 'gauge',
      shardlytics_last_fsync_seconds: 'gauge',
      shardlytics_queries_running: 'gauge',
      shardlytics_queries_queued: 'gauge',
      shardlytics_polars_restarts_total: 'counter',
      shardlytics_queries_rejected_busy_total: 'counter',
      shardlytics_shard_stats_failures_total: 'counter',
      shardlytics_process_cpu_user_seconds_total: 'counter',
      shardlytics_process_resident_memory_bytes: 'gauge',
      shardlytics_nodejs_eventloop_lag_seconds: 'gauge',
      shardlytics_nodejs_heap_size_used_bytes: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) expect(e.types.get(name), name).toBe(type);
    // Counters end in _total; nothing of ours uses a non-base unit.
    for (const [name, type] of e.types) {
      if (type === 'counter') expect(name, name).toMatch(/_total$/);
      expect(name, name).not.toMatch(/_(ms|milliseconds|kb|mb|kib|mib)(_|$)/);
    }
  });

  it('reports every shard\'s ring capacity and readiness, on both ports', async () => {
    for (const base of [engine.ingestUrl, engine.queryUrl]) {
      const e = await scrape(base);
      for (const shard of ['0', '1']) {
        expect(sumOf(e, 'shardlytics_ring_capacity_bytes', { shard }), shard).toBe(engine.engine.ctx.shards[Number(shard)]!.ring.capacity());
        expect(sumOf(e, 'shardlytics_shard_ready', { shard })).toBe(1);
        expect(e.samples.some((s) => s.name === 'shardlytics_shard_log_bytes' && s.labels.shard === shard)).toBe(true);
      }
    }
  });

  it('raises the ingest counter by exactly the events acknowledged, per route, and counts rejected events by error code', async () => {
    const before = await scrape();
    const batch = Array.from({ length: 37 }, (_, i) => ({ event_type: 'view', user_id: i === 0 ? SECRET_USER : `u${i}`, value: i }));
    expect((await postJson(`${engine.ingestUrl}/ingest/batch`, { events: batch })).status).toBe(202);
    expect((await postJson(`${engine.ingestUrl}/ingest`, { event_type: 'click', user_id: SECRET_USER, value: 1 })).status).toBe(202);
    const ndjson = Array.from({ length: 5 }, (_, i) => JSON.stringify({ event_type: 'buy', user_id: `n${i}` })).join('\n');
    expect((await postJson(`${engine.ingestUrl}/ingest/ndjson`, ndjson, 'application/x-ndjson')).status).toBe(202);
    const bad = [{ event_type: 'view', user_id: 'ok' }, { event_type: 'view', user_id: SECRET_USER, value: 'not a number' }, { event_type: 'view', user_id: 'ok2' }];
    expect((await postJson(`${engine.ingestUrl}/ingest/batch`, { events: bad })).status).toBe(400);
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string>) => sumOf(after, name, labels) - sumOf(before, name, labels);
    expect(delta('shardlytics_ingest_events_total', { route: '/ingest/batch' })).toBe(37);
    expect(delta('shardlytics_ingest_events_total', { route: '/ingest' })).toBe(1);
    expect(delta('shardlytics_ingest_events_total', { route: '/ingest/ndjson' })).toBe(5);
    expect(delta('shardlytics_ingest_events_total', {})).toBe(43);
    expect(delta('shardlytics_ingest_rejected_events_total', { route: '/ingest/batch', reason: 'INVALID_EVENT' })).toBe(3);
    expect(delta('shardlytics_http_requests_total', { route: '/ingest/batch', method: 'POST', status: '202' })).toBe(1);
    expect(delta('shardlytics_http_requests_total', { route: '/ingest/batch', method: 'POST', status: '400' })).toBe(1);
    // The same counts the JSON metrics give.
    const json = (await (await fetch(`${engine.ingestUrl}/metrics/ingestion`)).json()) as { total_events: number };
    expect(sumOf(after, 'shardlytics_ingest_events_total')).toBe(json.total_events);
  });

  it('times queries by kind from the query app\'s timings, and counts rows per shard', async () => {
    const before = await scrape();
    const q = await postJson(`${engine.queryUrl}/query/aggregate`, {});
    expect(q.status).toBe(200);
    const bad = await postJson(`${engine.queryUrl}/query/window`, {});
    expect(bad.status).toBe(400);
    const after = await scrape();
    const count = (e: Exposition, kind: string) => sumOf(e, 'shardlytics_query_duration_seconds_count', { kind });
    expect(count(after, 'aggregate') - count(before, 'aggregate')).toBe(1);
    expect(count(after, 'window') - count(before, 'window')).toBe(1);
    const inf = after.samples.find((s) => s.name === 'shardlytics_query_duration_seconds_bucket' && s.labels.kind === 'aggregate' && s.labels.le === '+Inf');
    expect(inf?.value).toBe(count(after, 'aggregate'));
    // The query read every acknowledged event, so the shards hold them all.
    expect(sumOf(after, 'shardlytics_shard_rows')).toBe(q.body.results[0].count);
  });

  it('labels requests by route pattern, never the raw path, and puts no user id or path value in any label', async () => {
    await fetch(`${engine.queryUrl}/enrichment/${'tbl_' + SECRET_USER.replaceAll('-', '_')}`, { method: 'DELETE' });
    await fetch(`${engine.queryUrl}/no/such/${SECRET_USER}`);
    await fetch(`${engine.queryUrl}/query/percentiles?column=value&user_id=${SECRET_USER}`);
    const e = await scrape();
    expect(sumOf(e, 'shardlytics_http_requests_total', { route: '/enrichment/:table', method: 'DELETE', status: '404' })).toBe(1);
    expect(sumOf(e, 'shardlytics_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBeGreaterThanOrEqual(1);
    expect(sumOf(e, 'shardlytics_http_requests_total', { route: '/query/percentiles', method: 'GET', status: '200' })).toBe(1);
    const routes = new Set(e.samples.filter((s) => s.labels.route !== undefined).map((s) => s.labels.route!));
    for (const r of routes) expect(r === 'unmatched' || engine.engine.apps.query.routes.some((x) => x.path === r) || engine.engine.apps.ingest.routes.some((x) => x.path === r), r).toBe(true);
    const secret = SECRET_USER.replaceAll('-', '_');
    for (const s of e.samples) {
      for (const v of Object.values(s.labels)) {
        expect(v.includes(SECRET_USER) || v.includes(secret), `${s.name} ${JSON.stringify(s.labels)}`).toBe(false);
      }
    }
  });
});
