/**
 * Enrichment tables end to end: the real engine (4 shards, 200,000 events, skewed users), rows
 * upserted over HTTP, routed to the shards that own their users, then joined by aggregate,
 * top-n and the common filter (`<table>.<column>` and `metadata.<key>`), checked against a brute
 * force over `fixture.events` and a model of the table.
 *
 * Bad input (each → 400 naming the field, nothing written):
 *   - table name: bad characters, too long, reserved (`metadata`, `user_id`, …) → `table`
 *   - body not an object; unknown field → `extra`; `key` other than "user_id" → `key`
 *   - `rows` missing, not a list, empty, more than 100,000 → `rows`
 *   - a row not an object → `rows[i]`; `user_id` missing / empty / not a string / > 128 chars → `rows[i].user_id`
 *   - a value that is an object or a list → `rows[i].<column>`; a string over 1024 chars
 *   - a column name with bad characters → `rows[i].<name>`; more than 64 columns → `rows`
 *   - (the first bad row anywhere rejects the whole request: checked by GET /enrichment after)
 *   - DELETE of an unknown table → 404; groupBy / filter on an unknown or dropped column → 400
 *   - filter.dimensions: not an object, empty, event column, empty list, non-string value → field named
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/engine-harness.js';
import { startQueryFixture, type QueryFixture } from '../helpers/query-fixture.js';
import { closeTo, type TestEvent } from '../helpers/random-events.js';

let fixture: QueryFixture;
const COUNTRIES = ['DE', 'FR', 'IT', 'ES'];
/** The table as the engine should hold it: user → row (values as strings). */
const model = new Map<string, Record<string, string | null>>();

async function del(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'DELETE' });
  return { status: res.status, body: await res.json() };
}

function groupBrute(events: TestEvent[], key: (e: TestEvent) => string | null, keep: (e: TestEvent) => boolean = () => true) {
  const out = new Map<string | null, { count: number; sum: number; n: number }>();
  for (const e of events) {
    if (!keep(e)) continue;
    const k = key(e);
    const g = out.get(k) ?? { count: 0, sum: 0, n: 0 };
    g.count++;
    if (e.value !== undefined && e.value !== null) {
      g.sum += e.value;
      g.n++;
    }
    out.set(k, g);
  }
  return out;
}

const cell = (column: string) => (e: TestEvent) => model.get(e.user_id)?.[column] ?? null;

beforeAll(async () => {
  fixture = await startQueryFixture();
}, 180_000);

afterAll(async () => {
  await fixture?.stop();
});

describe('enrichment tables', () => {
  it('starts with no tables', async () => {
    const res = await getJson(`${fixture.queryUrl}/enrichment`);
    expect(res.status).toBe(200);
    expect(res.body.tables).toEqual([]);
    expect(typeof res.body.query_time_ms).toBe('number');
  });

  it('upserts rows routed to their shards and lists the table', async () => {
    // users 0..14999 get a row (some users without events too); the last row of user-7 wins.
    const rows: Array<Record<string, unknown>> = [];
    for (let u = 0; u < 15_000; u++) {
      rows.push({ user_id: `user-${u}`, country: COUNTRIES[u % 4], tier: u % 3, vip: u % 10 === 0 });
    }
    rows.push({ user_id: 'user-7', country: 'PT', tier: null, vip: false });
    rows.push({ user_id: 'no-events-user', country: 'DE' });
    const res = await postJson(`${fixture.queryUrl}/enrichment/users`, { key: 'user_id', rows });
    expect(res.status).toBe(200);
    for (const r of rows) {
      model.set(String(r.user_id), {
        country: (r.country as string) ?? null,
        tier: r.tier === undefined || r.tier === null ? null : String(r.tier),
        vip: r.vip === undefined ? null : String(r.vip),
      });
    }
    expect(res.body).toMatchObject({ table: 'users', upserted: model.size, rows: model.size, columns: ['country', 'tier', 'vip'] });
    const list = await getJson(`${fixture.queryUrl}/enrichment`);
    expect(list.body.tables).toHaveLength(1);
    expect(list.body.tables[0]).toMatchObject({ table: 'users', rows: model.size, columns: ['country', 'tier', 'vip'] });
    expect(list.body.tables[0].shard_rows).toHaveLength(4);
    expect(list.body.tables[0].shard_rows.every((n: number) => n > 0)).toBe(true);
  });

  it('replaces a user’s row whole on a second upsert and adds new columns as null elsewhere', async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => ({ user_id: `user-${i * 5}`, country: 'NL', segment: i % 2 ? 'a' : 'b' }));
    rows.push({ user_id: 'user-19999', country: 'SE', segment: 'c' });
    const res = await postJson(`${fixture.queryUrl}/enrichment/users`, { rows });
    expect(res.status).toBe(200);
    for (const r of rows) model.set(r.user_id, { country: r.country, tier: null, vip: null, segment: r.segment });
    expect(res.body).toMatchObject({ upserted: rows.length, rows: model.size, columns: ['country', 'tier', 'vip', 'segment'] });
  });

  it('groups an aggregate by a table column (left join: unmatched users are the null group)', async () => {
    const res = await postJson(`${fixture.queryUrl}/query/aggregate`, { groupBy: ['users.country'], metrics: ['value'] });
    expect(res.status).toBe(200);
    const brute = groupBrute(fixture.events, cell('country'));
    expect(res.body.results).toHaveLength(brute.size);
    for (const row of res.body.results) {
      const b = brute.get(row['users.country'])!;
      expect(row.count).toBe(b.count);
      expect(row.value_count).toBe(b.n);
      expect(closeTo(row.value_sum, b.n ? b.sum : null)).toBe(true);
    }
    expect(res.body.results.at(-1)['users.country']).toBeNull();
  });

  it('ranks top-n by a table column', async () => {
    const res = await postJson(`${fixture.queryUrl}/query/top-n`, { groupBy: 'users.segment', aggFunc: 'count', n: 5 });
    expect(res.status).toBe(200);
    const brute = [...groupBrute(fixture.events, cell('segment'))].filter(([k]) => k !== null).sort((a, b) => b[1].count - a[1].count || (a[0]! < b[0]! ? -1 : 1));
    expect(res.body.results.map((r: any) => [r['users.segment'], r.count])).toEqual(brute.slice(0, 5).map(([k, g]) => [k, g.count]));
  });

  it('filters on table columns and metadata keys (null keeps the unmatched)', async () => {
    const cases: Array<[Record<string, Array<string | null>>, (e: TestEvent) => boolean]> = [
      [{ 'users.country': ['DE', 'FR'] }, (e) => ['DE', 'FR'].includes(cell('country')(e) as string)],
      [{ 'users.country': [null] }, (e) => cell('country')(e) === null],
      [{ 'users.vip': ['true'], 'metadata.plan': ['pro'] }, (e) => cell('vip')(e) === 'true' && e.metadata?.plan === 'pro'],
      [{ 'metadata.plan': [null] }, (e) => e.metadata?.plan === undefined],
    ];
    for (const [dimensions, keep] of cases) {
      const res = await postJson(`${fixture.queryUrl}/query/aggregate`, { groupBy: ['event_type'], metrics: ['value'], filter: { dimensions, from: fixture.events[0]!.timestamp - 3_600_000 * 10 } });
      expect(res.status).toBe(200);
      const brute = groupBrute(fixture.events, (e) => e.event_type, keep);
      expect(Object.fromEntries(res.body.results.map((r: any) => [r.event_type, r.count]))).toEqual(Object.fromEntries([...brute].map(([k, g]) => [k, g.count])));
    }
  });

  it('rejects every bad upsert with a 400 naming the field, writing nothing', async () => {
    const url = (t: string) => `${fixture.queryUrl}/enrichment/${t}`;
    const good = { user_id: 'x', country: 'DE' };
    const cases: Array<[string, unknown, string]> = [
      ['bad-name', { rows: [good] }, 'table'],
      ['a'.repeat(65), { rows: [good] }, 'table'],
      ['metadata', { rows: [good] }, 'table'],
      ['user_id', { rows: [good] }, 'table'],
      ['t1', [good], '(body)'],
      ['t1', { rows: [good], extra: 1 }, 'extra'],
      ['t1', { key: 'email', rows: [good] }, 'key'],
      ['t1', {}, 'rows'],
      ['t1', { rows: 'x' }, 'rows'],
      ['t1', { rows: [] }, 'rows'],
      ['t1', { rows: Array.from({ length: 100_001 }, (_, i) => ({ user_id: `u${i}` })) }, 'rows'],
      ['t1', { rows: [good, 5] }, 'rows[1]'],
      ['t1', { rows: [good, { country: 'DE' }] }, 'rows[1].user_id'],
      ['t1', { rows: [{ user_id: '' }] }, 'rows[0].user_id'],
      ['t1', { rows: [{ user_id: 7 }] }, 'rows[0].user_id'],
      ['t1', { rows: [{ user_id: 'u'.repeat(129) }] }, 'rows[0].user_id'],
      ['t1', { rows: [good, good, { user_id: 'y', country: { a: 1 } }] }, 'rows[2].country'],
      ['t1', { rows: [{ user_id: 'y', tags: ['a'] }] }, 'rows[0].tags'],
      ['t1', { rows: [{ user_id: 'y', note: 'n'.repeat(1025) }] }, 'rows[0].note'],
      ['t1', { rows: [{ user_id: 'y', 'bad col': 1 }] }, 'rows[0].bad col'],
      ['t1', { rows: [{ user_id: 'y', ...Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`c${i}`, 1])) }] }, 'rows'],
    ];
    for (const [table, body, field] of cases) {
      const res = await postJson(url(table), body);
      expect(res.status, `${table} ${JSON.stringify(body).slice(0, 80)}`).toBe(400);
      expect(res.body.errors.map((e: any) => e.field)).toContain(field);
      expect(res.body.message).toContain(field === '(body)' ? 'body' : field.replace(/\[.*$/, ''));
    }
    const list = await getJson(`${fixture.queryUrl}/enrichment`);
    expect(list.body.tables.map((t: any) => t.table)).toEqual(['users']);
  });

  it('rejects unknown enrichment columns and bad dimension filters with 400s naming the field', async () => {
    const agg = (body: unknown) => postJson(`${fixture.queryUrl}/query/aggregate`, body);
    expect((await agg({ groupBy: ['users.nosuch'] })).status).toBe(400);
    const filters: Array<[unknown, string]> = [
      [[], 'filter.dimensions'],
      [{}, 'filter.dimensions'],
      [{ event_type: ['click'] }, 'filter.dimensions.event_type'],
      [{ 'users.country': [] }, 'filter.dimensions.users.country'],
      [{ 'users.country': [1] }, 'filter.dimensions.users.country[0]'],
      [{ 'not a dim': ['x'] }, 'filter.dimensions.not a dim'],
    ];
    for (const [dimensions, field] of filters) {
      const res = await agg({ filter: { dimensions } });
      expect(res.status, JSON.stringify(dimensions)).toBe(400);
      expect(res.body.errors[0].field).toBe(field);
    }
  });

  it('drops a table (404 when unknown), after which its columns are unknown', async () => {
    expect((await del(`${fixture.queryUrl}/enrichment/nosuch`)).status).toBe(404);
    expect((await del(`${fixture.queryUrl}/enrichment/bad-name`)).status).toBe(400);
    const res = await del(`${fixture.queryUrl}/enrichment/users`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ table: 'users', dropped: true, rows: model.size });
    expect((await getJson(`${fixture.queryUrl}/enrichment`)).body.tables).toEqual([]);
    const after = await postJson(`${fixture.queryUrl}/query/aggregate`, { groupBy: ['users.country'] });
    expect(after.status).toBe(400);
    expect(after.body.message).toContain('users.country');
  });
});
