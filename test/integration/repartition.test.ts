/**
 * A changed shard count (issue 7, item 8): the stored data is re-partitioned by the routing hash
 * before the engine serves, nothing lost or duplicated, enrichment tables intact; crash-safe (a
 * kill -9 during re-partitioning leaves the old layout or the new one, and the next start
 * finishes the job); `/ready` is 503 while it runs. Real engines, real processes, real files.
 *
 * Every check compares with what the test itself sent: per-user counts and sums of `value`
 * (a unique number per event, so a duplicate or a loss shows in the sum), rows per shard against
 * the routing hash, enrichment rows against the upserts the test made.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { getJson, makeDataDir, postJson, removeDataDir, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { startMain, type MainProcess } from '../helpers/main-process.js';
import { shardStats, until } from '../helpers/shard-probes.js';
import { shardForUser } from '../../src/router/route-hash.js';
import type { EngineConfig } from '../../src/config/schema.js';

const USERS = 1500;
const dirs: string[] = [];
const running: RunningEngine[] = [];
const children: MainProcess[] = [];

afterEach(async () => {
  for (const c of children.splice(0)) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) removeDataDir(d);
});

interface Expected {
  count: Map<string, number>;
  sum: Map<string, number>;
  total: number;
  /** table → user → row (as the engine stores it: strings) */
  tables: Map<string, Map<string, Record<string, string | null>>>;
}

async function start(shards: number, dataDir: string, more: Partial<EngineConfig> = {}): Promise<RunningEngine> {
  const e = await startEngine({ shards, dataDir, maxBatchRows: 700, ...more }, { captureLogs: true });
  running.push(e);
  return e;
}

async function stop(e: RunningEngine): Promise<void> {
  running.splice(running.indexOf(e), 1);
  await e.stop();
}

/** ~6,000 events over USERS users (user k has 1 + k % 7), sent in 1,000-event batches. */
async function ingest(e: RunningEngine, expected: Expected): Promise<void> {
  const events: Array<{ event_type: string; user_id: string; value: number; timestamp: number; metadata?: object }> = [];
  let seq = expected.total;
  for (let k = 0; k < USERS; k++) {
    const user = `user-${k}`;
    for (let j = 0; j < 1 + (k % 7); j++) {
      const value = ++seq;
      events.push({ event_type: j % 2 ? 'click' : 'view', user_id: user, value, timestamp: 1_767_225_600_000 + value, ...(j === 0 ? { metadata: { k, tag: `t${k % 3}` } } : {}) });
      expected.count.set(user, (expected.count.get(user) ?? 0) + 1);
      expected.sum.set(user, (expected.sum.get(user) ?? 0) + value);
    }
  }
  for (let i = 0; i < events.length; i += 1000) {
    const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events: events.slice(i, i + 1000) });
    expect(res.status).toBe(202);
  }
  expected.total = seq;
}

async function upsert(e: RunningEngine, expected: Expected, table: string, rows: Array<Record<string, string | number | null>>): Promise<void> {
  const res = await postJson(`${e.queryUrl}/enrichment/${table}`, { rows });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  let t = expected.tables.get(table);
  if (!t) expected.tables.set(table, (t = new Map()));
  const columns = new Set<string>(res.body.columns);
  for (const row of rows) {
    const stored: Record<string, string | null> = {};
    for (const c of columns) stored[c] = row[c] === undefined || row[c] === null ? null : String(row[c]);
    t.set(String(row.user_id), stored);
  }
  // columns new to the table are null for the rows held before
  for (const row of t.values()) for (const c of columns) row[c] ??= null;
}

async function enrich(e: RunningEngine, expected: Expected): Promise<void> {
  const users = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `user-${from + i}`);
  await upsert(e, expected, 'plans', users(0, 600).map((u, i) => ({ user_id: u, plan: ['free', 'pro', 'team'][i % 3]!, seats: i % 5 })));
  // replaces 200 rows whole (seats becomes null for them), adds a column
  await upsert(e, expected, 'plans', users(400, 800).map((u, i) => ({ user_id: u, plan: i % 2 ? 'pro' : 'free', region: i % 4 ? 'eu' : null })));
  // a table created, dropped and created again: only the last one counts
  await upsert(e, expected, 'tiers', users(0, 300).map((u) => ({ user_id: u, tier: 'old' })));
  expect((await fetch(`${e.queryUrl}/enrichment/tiers`, { method: 'DELETE' })).status).toBe(200);
  expected.tables.delete('tiers');
  await upsert(e, expected, 'tiers', users(1000, 1100).map((u, i) => ({ user_id: u, tier: `t${i % 2}` })));
}

/** Everything the engine answers equals what was sent, and each user lives on its hash shard. */
async function checkAll(e: RunningEngine, shards: number, expected: Expected): Promise<void> {
  const byUser = await postJson(`${e.queryUrl}/query/aggregate`, { groupBy: ['user_id'], metrics: ['value'] });
  expect(byUser.status).toBe(200);
  const got = new Map<string, { count: number; sum: number }>(byUser.body.results.map((r: any) => [r.user_id, { count: r.count, sum: r.value_sum }]));
  expect(got.size).toBe(expected.count.size);
  for (const [user, count] of expected.count) expect(got.get(user), user).toEqual({ count, sum: expected.sum.get(user) });

  const totals = await postJson(`${e.queryUrl}/query/aggregate`, { metrics: ['value'] });
  const n = [...expected.count.values()].reduce((a, b) => a + b, 0);
  expect(totals.body.results[0]).toMatchObject({ count: n, value_sum: [...expected.sum.values()].reduce((a, b) => a + b, 0) });

  // a query by user (shard-local filter) is exact
  for (const user of ['user-0', 'user-17', 'user-1499']) {
    const one = await postJson(`${e.queryUrl}/query/aggregate`, { metrics: ['value'], filter: { user_id: user } });
    expect(one.body.results[0], user).toMatchObject({ count: expected.count.get(user), value_sum: expected.sum.get(user) });
  }

  // every user's rows on the shard the routing hash names
  const perShard = new Array<number>(shards).fill(0);
  for (const [user, count] of expected.count) perShard[shardForUser(user, shards)]! += count;
  const stats = await shardStats(e.queryUrl);
  expect(stats.map((s) => s.rows_held)).toEqual(perShard);

  // enrichment tables: listing, and every row through a join
  const listed = await getJson(`${e.queryUrl}/enrichment`);
  const tables = Object.fromEntries(listed.body.tables.map((t: any) => [t.table, t]));
  expect(Object.keys(tables).sort()).toEqual([...expected.tables.keys()].sort());
  for (const [table, rows] of expected.tables) {
    expect(tables[table].rows, table).toBe(rows.size);
    const columns = Object.keys([...rows.values()][0]!).sort();
    expect([...tables[table].columns].sort(), table).toEqual(columns);
    for (const column of columns) {
      // events per value of the column, by brute force over what was sent
      const want = new Map<string, number>();
      for (const [user, count] of expected.count) {
        const v = rows.get(user)?.[column] ?? null;
        want.set(String(v), (want.get(String(v)) ?? 0) + count);
      }
      const res = await postJson(`${e.queryUrl}/query/aggregate`, { groupBy: [`${table}.${column}`] });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const have = new Map<string, number>(res.body.results.map((r: any) => [String(r[`${table}.${column}`]), r.count]));
      expect(have, `${table}.${column}`).toEqual(want);
    }
  }
}

function meta(dataDir: string): { shards: number; layout?: string } {
  return JSON.parse(readFileSync(join(dataDir, 'meta.json'), 'utf8'));
}

/** A data dir holding 2 shards' worth of events and enrichment tables; the engine stopped. */
async function twoShardDataDir(more: Partial<EngineConfig> = {}): Promise<{ dataDir: string; expected: Expected }> {
  const dataDir = makeDataDir();
  dirs.push(dataDir);
  const expected: Expected = { count: new Map(), sum: new Map(), total: 0, tables: new Map() };
  const first = await start(2, dataDir, more);
  await ingest(first, expected);
  await enrich(first, expected);
  // with segments: more rows, so the tables are in a snapshot and some rows only in the log
  if (more.segmentRows) await ingest(first, expected);
  await checkAll(first, 2, expected);
  await stop(first);
  return { dataDir, expected };
}

describe('re-partitioning on a changed shard count', () => {
  it('2 → 3 → 1 shards: per-user counts and sums, totals, rows per shard and enrichment tables unchanged, with progress logs', async () => {
    const { dataDir, expected } = await twoShardDataDir();

    const three = await start(3, dataDir);
    expect(three.logs.some((l) => l.msg === 're-partitioning the stored data for the new shard count before serving' && l.from_shards === 2 && l.to_shards === 3)).toBe(true);
    const progress = three.logs.filter((l) => l.msg === 're-partitioning');
    expect(progress.map((l) => l.shard)).toEqual(expect.arrayContaining([0, 1]));
    const done = three.logs.find((l) => l.msg === 're-partitioned: the new layout is in place')!;
    expect(done.rows).toBe([...expected.count.values()].reduce((a, b) => a + b, 0));
    expect(done.tables).toBe(2);
    await checkAll(three, 3, expected);
    expect(meta(dataDir)).toMatchObject({ shards: 3, layout: done.layout });
    expect(readdirSync(dataDir).filter((n) => n.startsWith('shard-') || n.startsWith('layout-'))).toEqual([done.layout]);

    // it serves and takes new data as usual, then goes down to one shard
    await ingest(three, expected);
    await checkAll(three, 3, expected);
    await stop(three);
    const one = await start(1, dataDir);
    await checkAll(one, 1, expected);
    expect(meta(dataDir).shards).toBe(1);
    await stop(one);
    // and starts again on it without re-partitioning
    const again = await start(1, dataDir);
    expect(again.logs.some((l) => l.msg === 're-partitioning')).toBe(false);
    await checkAll(again, 1, expected);
  });

  it('reads old shards whose rows were rolled into segment files (through a polars process) and their enrichment snapshot', async () => {
    const { dataDir, expected } = await twoShardDataDir({ segmentRows: 2000 });
    const manifests = [0, 1].map((i) => JSON.parse(readFileSync(join(dataDir, `shard-${i}`, 'segments', 'manifest.json'), 'utf8')));
    expect(manifests.every((m) => m.segments.length > 0 && m.tables !== null)).toBe(true);
    const three = await start(3, dataDir);
    const progress = three.logs.filter((l) => l.msg === 're-partitioning');
    const segmentRows = manifests.reduce((n, m) => n + m.segments.reduce((k: number, s: { rows: number }) => k + s.rows, 0), 0);
    expect(progress.filter((l) => l.bytes === l.of_bytes).reduce((n, l) => n + l.segment_rows, 0)).toBe(segmentRows);
    await checkAll(three, 3, expected);
  });

  it('carries Idempotency-Keys found in the old batches: a retry after the change is answered, not stored twice', async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const first = await start(2, dataDir);
    const post = (url: string, key: string, seq: number) =>
      fetch(`${url}/ingest/batch?wait=true`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ events: Array.from({ length: 100 }, (_, i) => ({ event_type: 'k', user_id: `ku-${seq}-${i}`, value: seq * 1000 + i })) }),
      });
    for (let i = 0; i < 3; i++) expect((await post(first.ingestUrl, `key-${i}`, i)).status).toBe(200);
    await stop(first);
    // as if the engine had died before the answers reached the key log: only the shard logs know the keys
    rmSync(join(dataDir, 'idempotency'), { recursive: true, force: true });

    const three = await start(3, dataDir);
    expect(three.logs.find((l) => l.msg === 're-partitioned: the new layout is in place')).toMatchObject({ keys_carried: 3, keys_left_out: 0 });
    for (let i = 0; i < 3; i++) {
      const retry = await post(three.ingestUrl, `key-${i}`, i);
      expect(retry.status).toBe(200);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
    }
    expect((await post(three.ingestUrl, 'key-new', 3)).status).toBe(200);
    const total = await postJson(`${three.queryUrl}/query/aggregate`, {});
    expect(total.body.results[0].count).toBe(400);
  });

  it.each([
    ['while copying (old layout referenced, a half-written new one beside it)', 'copying', 2],
    ['after the new layout is complete, before meta.json names it', 'renamed', 2],
    ['after meta.json names the new layout, before the old one is deleted', 'committed', 3],
  ] as const)('a kill -9 %s leaves a layout intact; the next start serves everything exactly once', async (_what, haltAt, shardsAfterKill) => {
    const { dataDir, expected } = await twoShardDataDir();
    const main = await startMain(['--data-dir', dataDir, '--shards', '3'], { env: { ENGINE_TEST_REPARTITION_HALT: haltAt } });
    children.push(main);
    // the ports answer while it runs: not ready, ingest and queries refused with Retry-After
    const ready = await fetch(`${main.queryUrl}/ready`);
    expect(ready.status).toBe(503);
    const ingest = await postJson(`${main.ingestUrl}/ingest/batch`, { events: [{ event_type: 'x', user_id: 'late' }] });
    expect(ingest.status).toBe(503);
    expect(ingest.headers.get('retry-after')).toBe('5');
    expect((await postJson(`${main.queryUrl}/query/aggregate`, {})).status).toBe(503);
    await until(() => main.logs.some((l) => l.msg === 're-partitioning' && l.shard === 0), 'the first old shard copied');
    if (haltAt !== 'copying') await until(() => existsSync(join(dataDir, readdirSync(dataDir).find((n) => /^layout-3-\d+$/.test(n)) ?? 'none')), 'the new layout renamed into place');
    if (haltAt === 'committed') await until(() => meta(dataDir).shards === 3, 'meta.json switched');
    expect((await fetch(`${main.queryUrl}/ready`)).status).toBe(503);
    main.child.kill('SIGKILL');
    await main.exited;

    // whichever layout meta.json names is complete
    expect(meta(dataDir).shards).toBe(shardsAfterKill);
    const same = await start(shardsAfterKill, dataDir);
    await checkAll(same, shardsAfterKill, expected);
    expect(same.logs.some((l) => l.msg === 'data dir: removed what an unfinished re-partitioning left')).toBe(true);
    expect(readdirSync(dataDir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    await stop(same);
    // and the re-partitioning, done again, finishes
    const three = await start(3, dataDir);
    await checkAll(three, 3, expected);
  });
});
