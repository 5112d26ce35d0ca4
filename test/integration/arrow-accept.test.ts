/**
 * The request side of Arrow answers, on a real engine (2 shards, 6,000 seeded events):
 * - content negotiation on POST /query/aggregate and GET /query/export: a request without
 *   `format` gets the type its Accept prefers (q-values, wildcards, the client's order), JSON
 *   (NDJSON for export) without one; a named `format` wins over Accept; an Accept that allows
 *   neither type is a 406 JSON error naming both; answers carry `Vary: Accept`;
 * - the Arrow answer got through Accept is the JSON answer's rows, cell by cell, and a brute force
 *   of the ingested events; the Arrow export is the NDJSON export and the ingested events;
 * - the typed client's `aggregateArrow` and `exportArrow` give the same rows as `aggregate` and
 *   `export`, the envelope from the headers, and the engine's 400 as a ShardlyticsError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromIPC, type Table } from 'apache-arrow';
import { ShardlyticsClient, ShardlyticsError, type AggregateRequest } from 'shardlytics/client';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { expectBruteAggregate } from '../helpers/expect-aggregate.js';
import { makeEvents, type TestEvent } from '../helpers/random-events.js';

const ARROW = 'application/vnd.apache.arrow.stream';
const events: TestEvent[] = makeEvents(6_000, 41, { users: 400 });

type Cell = string | number | null;
type Row = Record<string, Cell>;

let engine: RunningEngine;

beforeAll(async () => {
  engine = await startEngine({ shards: 2 });
  const res = await postJson(`${engine.ingestUrl}/ingest/batch`, { events });
  expect(res.status).toBe(202);
}, 60_000);

afterAll(async () => {
  await engine?.stop();
});

/** A table's rows with Int64 cells as numbers (the answer's counts and windows are safe integers). */
function rowsOf(table: Table): Row[] {
  return table.toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : (v as Cell)])));
}

interface Answer {
  status: number;
  type: string;
  vary: string;
  bytes: Uint8Array;
  headers: Headers;
}

async function aggregate(body: Record<string, unknown>, accept?: string): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (accept !== undefined) headers.accept = accept;
  const res = await fetch(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', vary: res.headers.get('vary') ?? '', bytes: new Uint8Array(await res.arrayBuffer()), headers: res.headers };
}

function jsonOf(a: Answer): any {
  expect(a.type, new TextDecoder().decode(a.bytes.subarray(0, 200))).toMatch(/^application\/json/);
  return JSON.parse(new TextDecoder().decode(a.bytes));
}

function arrowRowsOf(a: Answer): { rows: Row[]; columns: string[] } {
  expect(a.status, new TextDecoder().decode(a.bytes.subarray(0, 300))).toBe(200);
  expect(a.type).toBe(ARROW);
  const table = tableFromIPC(a.bytes);
  return { rows: rowsOf(table), columns: table.schema.fields.map((f) => f.name) };
}

/** Same rows, same columns in the same order, the same value in every cell. */
function expectSameCells(arrow: { rows: Row[]; columns: string[] }, json: Row[]): void {
  expect(arrow.rows.length).toBe(json.length);
  json.forEach((row, i) => {
    expect(arrow.columns, `row ${i}'s columns`).toEqual(Object.keys(row));
    for (const col of arrow.columns) expect(arrow.rows[i]![col], `row ${i}, ${col}`).toBe(row[col]);
  });
}

describe('POST /query/aggregate negotiates its answer with Accept', () => {
  it('answers Arrow to Accept: Arrow without a format: the JSON answer cell by cell and the brute force', async () => {
    // by user: each shard finishes its rows; by event type: merged, then written
    for (const groupBy of [['user_id'], ['event_type'], ['event_type', 'user_id']] as Array<Array<'event_type' | 'user_id'>>) {
      const json = jsonOf(await aggregate({ groupBy })).results as Row[];
      expect(json.length).toBeGreaterThan(groupBy.length === 1 && groupBy[0] === 'event_type' ? 3 : 100);
      const answer = await aggregate({ groupBy }, ARROW);
      expect(answer.vary).toMatch(/\bAccept\b/);
      expect(Number(answer.headers.get('x-query-time-ms'))).toBeGreaterThan(0);
      const arrow = arrowRowsOf(answer);
      expectSameCells(arrow, json);
      expectBruteAggregate(arrow.rows, events, groupBy);
    }
  });

  it('answers JSON with no Accept, */*, application/json or a browser’s Accept', async () => {
    for (const accept of [undefined, '*/*', 'application/json', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/json, text/plain, */*']) {
      const a = await aggregate({ groupBy: ['event_type'] }, accept);
      expect(a.status, String(accept)).toBe(200);
      expect(a.vary).toMatch(/\bAccept\b/);
      expectBruteAggregate(jsonOf(a).results, events, ['event_type']);
    }
  });

  it('follows q-values, specificity and the client’s order', async () => {
    const body = { groupBy: ['event_type'] };
    const json = jsonOf(await aggregate(body)).results as Row[];
    const cases: Array<[accept: string, arrow: boolean]> = [
      [`application/json;q=0.5, ${ARROW}`, true],
      [`${ARROW};q=0.5, application/json`, false],
      [`application/json;q=0.9, ${ARROW};q=0.1`, false],
      [`${ARROW}, application/json`, true],
      [`application/json, ${ARROW}`, false],
      [`*/*, ${ARROW}`, true],
      ['*/*, application/json;q=0', true],
      ['APPLICATION/VND.APACHE.ARROW.STREAM', true],
    ];
    for (const [accept, arrow] of cases) {
      const a = await aggregate(body, accept);
      if (arrow) expectSameCells(arrowRowsOf(a), json);
      else expect(jsonOf(a).results, accept).toEqual(json);
    }
  });

  it('lets a format in the body win over Accept, even one that allows nothing else', async () => {
    const groupBy = ['user_id'];
    const json = jsonOf(await aggregate({ groupBy })).results as Row[];
    const asJson = await aggregate({ groupBy, format: 'json' }, ARROW);
    expect(asJson.status).toBe(200);
    expect(jsonOf(asJson).results).toEqual(json);
    for (const accept of ['application/json', 'text/csv']) expectSameCells(arrowRowsOf(await aggregate({ groupBy, format: 'arrow' }, accept)), json);
    // `format: null` is no format: Accept decides
    expectSameCells(arrowRowsOf(await aggregate({ groupBy, format: null }, ARROW)), json);
  });

  it('refuses with 406 and a JSON error naming both types when Accept allows neither', async () => {
    for (const accept of ['text/csv', 'application/json;q=0', `${ARROW};q=0, text/*`, `${ARROW};version=9`]) {
      const a = await aggregate({ groupBy: ['event_type'] }, accept);
      expect(a.status, accept).toBe(406);
      const err = jsonOf(a);
      expect(err.error).toBe('NOT_ACCEPTABLE');
      expect(err.message).toContain('application/json');
      expect(err.message).toContain(ARROW);
      expect(err.message).toContain(JSON.stringify(accept));
      expect(typeof err.request_id).toBe('string');
    }
    // a bad body is still a 400 first (it is read before the format is chosen)
    const bad = await aggregate({ groupBy: ['country'] }, ARROW);
    expect(bad.status).toBe(400);
    expect(jsonOf(bad).message).toMatch(/groupBy/);
  });
});

/** An exported event as a comparable string: absent value → null, metadata as parsed JSON. */
function eventKey(e: { timestamp: number | bigint; event_type: string; user_id: string; value?: number | null; metadata?: unknown }): string {
  const meta = typeof e.metadata === 'string' ? JSON.parse(e.metadata) : (e.metadata ?? null);
  return JSON.stringify([Number(e.timestamp), e.event_type, e.user_id, e.value ?? null, meta]);
}

async function exportWith(query: string, accept?: string): Promise<Answer> {
  const res = await fetch(`${engine.queryUrl}/query/export${query}`, accept === undefined ? {} : { headers: { accept } });
  return { status: res.status, type: res.headers.get('content-type') ?? '', vary: res.headers.get('vary') ?? '', bytes: new Uint8Array(await res.arrayBuffer()), headers: res.headers };
}

function ndjsonKeys(a: Answer): string[] {
  expect(a.status).toBe(200);
  expect(a.type).toBe('application/x-ndjson');
  return new TextDecoder().decode(a.bytes).split('\n').filter((l) => l !== '').map((l) => eventKey(JSON.parse(l))).sort();
}

function arrowKeys(a: Answer): string[] {
  expect(a.status).toBe(200);
  expect(a.type).toBe(ARROW);
  return tableFromIPC(a.bytes).toArray().map((r) => eventKey(r.toJSON())).sort();
}

describe('GET /query/export negotiates its body with Accept', () => {
  it('streams Arrow to Accept: Arrow and NDJSON without one: both the ingested events', async () => {
    const ingested = events.map((e) => eventKey(e)).sort();
    const ndjson = await exportWith('');
    expect(ndjson.vary).toMatch(/\bAccept\b/);
    expect(ndjsonKeys(ndjson)).toEqual(ingested);
    expect(arrowKeys(await exportWith('', ARROW))).toEqual(ingested);
    expect(arrowKeys(await exportWith('?event_type=click', `application/x-ndjson;q=0.2, ${ARROW}`))).toEqual(events.filter((e) => e.event_type === 'click').map((e) => eventKey(e)).sort());
    expect(ndjsonKeys(await exportWith('?limit=10', '*/*'))).toHaveLength(10);
  });

  it('lets ?format win over Accept, and refuses an Accept that allows neither body with 406', async () => {
    expect(ndjsonKeys(await exportWith('?format=ndjson&limit=5', ARROW))).toHaveLength(5);
    expect(arrowKeys(await exportWith('?format=arrow&limit=5', 'application/json'))).toHaveLength(5);
    const refused = await exportWith('?limit=5', 'application/json');
    expect(refused.status).toBe(406);
    const err = jsonOf(refused);
    expect(err.error).toBe('NOT_ACCEPTABLE');
    expect(err.message).toContain('application/x-ndjson');
    expect(err.message).toContain(ARROW);
  });
});

describe('the typed client asks for Arrow', () => {
  const client = () => new ShardlyticsClient({ ingestUrl: engine.ingestUrl, queryUrl: engine.queryUrl });

  it('aggregateArrow gives aggregate’s rows cell by cell, and the envelope from the headers', async () => {
    const c = client();
    const requests: AggregateRequest[] = [{ groupBy: ['event_type', 'user_id'] }, { groupBy: ['window', 'event_type'], windowSize: '6h' }, {}];
    for (const req of requests) {
      const json = await c.aggregate(req);
      const arrow = await c.aggregateArrow(req);
      expectSameCells({ rows: rowsOf(arrow.table), columns: arrow.table.schema.fields.map((f) => f.name) }, json.results);
      expect(arrow.bytes.byteLength).toBeGreaterThan(0);
      expect(arrow.query_time_ms).toBeGreaterThan(0);
      expect(Number.isNaN(Date.parse(arrow.timestamp))).toBe(false);
    }
    const byUser = await c.aggregateArrow({ groupBy: ['event_type', 'user_id'] });
    expectBruteAggregate(rowsOf(byUser.table), events, ['event_type', 'user_id']);
  });

  it('aggregateArrow reports the engine’s 400 as a ShardlyticsError naming the field', async () => {
    const err = await client()
      .aggregateArrow({ groupBy: ['country' as 'event_type'] })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(ShardlyticsError);
    expect((err as ShardlyticsError).status).toBe(400);
    expect((err as ShardlyticsError).code).toBe('BAD_REQUEST');
    expect((err as ShardlyticsError).message).toMatch(/groupBy/);
  });

  it('exportArrow streams the batches of export’s rows', async () => {
    const c = client();
    const arrow: string[] = [];
    let batches = 0;
    for await (const batch of c.exportArrow({ pageSize: 1_000 })) {
      batches++;
      for (const r of batch.toArray()) arrow.push(eventKey(r.toJSON() as Parameters<typeof eventKey>[0]));
    }
    const ndjson: string[] = [];
    for await (const row of c.export({ pageSize: 1_000 })) ndjson.push(eventKey(row));
    expect(batches).toBeGreaterThan(2);
    expect(arrow.sort()).toEqual(ndjson.sort());
    expect(arrow).toEqual(events.map((e) => eventKey(e)).sort());
    // leaving early cancels the download
    let seen = 0;
    for await (const batch of c.exportArrow({ pageSize: 1_000 })) {
      seen += batch.numRows;
      break;
    }
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(events.length);
  });
});
