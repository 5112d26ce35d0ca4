/**
 * Re-partitioning old shards whose segment store holds rows their log no longer has to replay
 * (src/shards/repartition/segment-reader.ts). The old layout is made the way a shard makes it,
 * with real files and real polars processes: batches logged and appended (with `first_row`),
 * an enrichment upsert, a `roll` that writes a segment file and the tables snapshot covering the
 * log up to a position, then more batches and an upsert only in the log after it. An engine
 * started with 3 shards must serve every event once (per-user counts and sums of unique values)
 * and the enrichment rows as they were last written.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Table, Utf8, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';
import { getJson, makeDataDir, postJson, removeDataDir, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { ColumnBuilder } from '../../src/shards/column-builder.js';
import { FileShardLog } from '../../src/shards/log/file-log.js';
import { LogRecordType, encodeEnrichUpsert, encodeNumberedBatch } from '../../src/shards/log/shard-log.js';
import { PolarsProcess } from '../../src/shards/polars-process.js';
import { decodeRecord, encodeRecord, recordSize } from '../../src/shards/ring-record.js';
import { shardForUser } from '../../src/router/route-hash.js';

const dirs: string[] = [];
const running: RunningEngine[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) removeDataDir(d);
});

const encoder = new TextEncoder();

/**
 * An event's metadata text: keys in a producer's own order (not code-point order), so the polars
 * side leaves most shapes implied (its key order: v, plan, page), and some objects against it.
 */
function metadataOf(value: number): string {
  const plan = value % 2 === 0 ? 'free' : 'pro';
  const page = `/p/${value % 7}`;
  const obj = value % 5 === 0 ? { page, v: value } : value % 3 === 0 ? { v: value, plan } : { v: value, plan, page };
  return JSON.stringify(obj);
}

interface Event {
  user: string;
  value: number;
}

/** Seals `events` the way a shard does (ring record → ColumnBuilder → Arrow IPC). */
function seal(events: Event[]): { ipc: Uint8Array; rows: number } {
  const builder = new ColumnBuilder();
  const buf = new Uint8Array(1 << 20);
  const view = new DataView(buf.buffer);
  for (const ev of events) {
    const e = { timestamp: 1_767_225_600_000 + ev.value, value: ev.value, eventType: encoder.encode('view'), userId: ev.user, metadata: encoder.encode(metadataOf(ev.value)) };
    const userId = encoder.encode(ev.user);
    const end = encodeRecord(e, userId, buf, view, 0);
    expect(end).toBe(recordSize(e, userId.length));
    builder.append(buf, decodeRecord(view, 0, end)!);
  }
  return builder.seal()!;
}

const upsertIpc = (rows: Array<[string, string]>) =>
  tableToIPC(new Table({ user_id: vectorFromArray(rows.map(([u]) => u), new Utf8()), plan: vectorFromArray(rows.map(([, p]) => p), new Utf8()) }), 'stream');

/** One old shard: phase A logged, appended and rolled into a segment; phase B only logged and appended. */
async function oldShard(dir: string, phaseA: Event[][], tableA: Array<[string, string]>, phaseB: Event[][], tableB: Array<[string, string]>): Promise<void> {
  const log = await FileShardLog.open({ dir });
  const proc = new PolarsProcess({ shard: 0, timeoutMs: 60_000, onExit: () => undefined, onStderr: () => undefined });
  await proc.request('ping');
  await proc.request('open', { dir: resolve(dir), log_start: 0 });
  let row = 0;
  const batch = async (events: Event[]) => {
    const { ipc, rows } = seal(events);
    log.append(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(row, rows, ipc));
    await proc.request('append', undefined, ipc, { fields: { first_row: row } });
    row += rows;
  };
  const upsert = async (rows: Array<[string, string]>) => {
    const ipc = upsertIpc(rows);
    log.append(LogRecordType.ENRICH_UPSERT, encodeEnrichUpsert('plans', ipc));
    await proc.request('enrich_upsert', { table: 'plans' }, ipc);
  };
  for (const b of phaseA) await batch(b);
  await upsert(tableA);
  await log.sync();
  await proc.request('roll', { log_position: log.end });
  for (const b of phaseB) await batch(b);
  await upsert(tableB);
  await log.sync();
  await log.close();
  await proc.shutdown(10_000);
}

describe('re-partitioning old shards with segment files', () => {
  it('reads their segment rows through polars, their snapshot and the log after it: 2 → 3 shards, every event once', async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const users = Array.from({ length: 300 }, (_, i) => `u${i}`);
    let seq = 0;
    const all: Event[] = [];
    const eventsOf = (from: number, n: number) => users.slice(from, from + n).flatMap((user) => [0, 1, 2].map(() => ({ user, value: ++seq })));
    const phase = (from: number, n: number) => {
      const events = eventsOf(from, n);
      all.push(...events);
      return events;
    };
    const a = phase(0, 200);
    const b = phase(100, 200);
    const plans = new Map<string, string>();
    const tableA = users.slice(0, 150).map((u) => [u, 'free'] as [string, string]);
    const tableB = users.slice(100, 250).map((u) => [u, 'pro'] as [string, string]);
    for (const [u, p] of [...tableA, ...tableB]) plans.set(u, p);
    const onShard = <T extends { user: string } | [string, string]>(rows: T[], s: number) => rows.filter((r) => shardForUser(Array.isArray(r) ? r[0] : r.user, 2) === s);
    for (const s of [0, 1]) {
      const split = (events: Event[]) => [events.slice(0, 250), events.slice(250)].filter((x) => x.length > 0);
      await oldShard(join(dataDir, `shard-${s}`), split(onShard(a, s)), onShard(tableA, s), split(onShard(b, s)), onShard(tableB, s));
    }
    writeFileSync(join(dataDir, 'meta.json'), JSON.stringify({ format: 1, shards: 2 }));
    const segmentRows = [0, 1].map((s) => {
      const m = JSON.parse(readFileSync(join(dataDir, `shard-${s}`, 'segments', 'manifest.json'), 'utf8'));
      expect(m.tables).not.toBeNull();
      return m.segments.reduce((n: number, seg: { rows: number }) => n + seg.rows, 0);
    });
    expect(segmentRows[0]! + segmentRows[1]!).toBe(a.length);

    const e = await startEngine({ shards: 3, dataDir }, { captureLogs: true });
    running.push(e);
    const finals = e.logs.filter((l) => l.msg === 're-partitioning' && l.bytes === l.of_bytes);
    expect(finals.map((l) => l.segment_rows)).toEqual(segmentRows);
    expect(e.logs.find((l) => l.msg === 're-partitioned: the new layout is in place')).toMatchObject({ rows: all.length, tables: 1, enrichment_rows: plans.size });

    const byUser = await postJson(`${e.queryUrl}/query/aggregate`, { groupBy: ['user_id'], metrics: ['value'] });
    const want = new Map<string, { count: number; sum: number }>();
    for (const ev of all) {
      const w = want.get(ev.user) ?? { count: 0, sum: 0 };
      want.set(ev.user, { count: w.count + 1, sum: w.sum + ev.value });
    }
    expect(new Map(byUser.body.results.map((r: any) => [r.user_id, { count: r.count, sum: r.value_sum }]))).toEqual(want);
    const listed = await getJson(`${e.queryUrl}/enrichment`);
    expect(listed.body.tables).toMatchObject([{ table: 'plans', rows: plans.size }]);
    const byPlan = await postJson(`${e.queryUrl}/query/aggregate`, { groupBy: ['plans.plan'] });
    const wantPlan = new Map<string, number>();
    for (const ev of all) {
      const p = String(plans.get(ev.user) ?? null);
      wantPlan.set(p, (wantPlan.get(p) ?? 0) + 1);
    }
    expect(new Map(byPlan.body.results.map((r: any) => [String(r['plans.plan']), r.count]))).toEqual(wantPlan);

    // every metadata text byte for byte, from the segments and from the log
    const res = await fetch(`${e.queryUrl}/query/export?format=arrow`);
    expect(res.status).toBe(200);
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    const values = table.getChild('value')!;
    const texts = table.getChild('metadata')!;
    const got = new Map<number, string>();
    for (let i = 0; i < table.numRows; i++) got.set(Number(values.get(i)), texts.get(i) as string);
    expect(got).toEqual(new Map(all.map((ev) => [ev.value, metadataOf(ev.value)])));
  });
});
