import { describe, expect, it } from 'vitest';
import { Float64, Int64, LargeUtf8, Table, makeVector, tableFromIPC, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import aggregateArrowMerge, { answerColumns, arrowFromColumns, arrowFromRows, arrowStreamFromColumns, mergeAggregateArrowTask } from './aggregate-arrow.js';
import type { AggregateRow, AggregateSpec } from './aggregate.js';

type Row = Record<string, string | number | null>;

/** A shard's finished columns as python/engine_polars/answer_rows.py `answer_columns` writes them (strings LargeUtf8), one batch per entry. */
function columnsPartial(spec: AggregateSpec, batches: Row[][]): Uint8Array {
  const tables = batches.map((rows) => {
    const cols: Record<string, Vector> = {};
    for (const c of answerColumns(spec)) {
      const values = rows.map((r) => r[c.name] ?? null);
      if (c.kind === 'utf8') cols[c.name] = vectorFromArray(values as Array<string | null>, new LargeUtf8());
      else if (c.kind === 'int64') cols[c.name] = makeVector({ type: new Int64(), data: new BigInt64Array(values.map((v) => BigInt(v as number))) } as never);
      else cols[c.name] = vectorFromArray(values as Array<number | null>, new Float64());
    }
    return new Table(cols);
  });
  return tableToIPC(tables.reduce((a, b) => a.concat(b)), 'stream');
}

/** The answer's rows as plain objects (Int64 as numbers). */
function decoded(pieces: Uint8Array[]): { rows: Row[]; fields: string[]; batches: number; table: Table } {
  const table = tableFromIPC(Buffer.concat(pieces));
  const rows = table.toArray().map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : (v as string | number | null)])));
  return { rows, fields: table.schema.fields.map((f) => f.name), batches: table.batches.length, table };
}

function compareCodePoints(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const SPEC: AggregateSpec = { groupBy: ['event_type', 'user_id'], metrics: ['value'] };
const USERS = ['user-1', 'user-10', 'user-2', 'ü', '😀', '\uff5e', 'a"q', 'user-1 ', 'a-very-long-user-name-that-is-longer-than-32-bytes-xyz'];

function randomRows(n: number, seed: number): Row[] {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const seen = new Set<string>();
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const event_type = rnd() < 0.1 ? null : ['click', 'view', 'buy'][Math.floor(rnd() * 3)]!;
    const user_id = rnd() < 0.5 ? USERS[Math.floor(rnd() * USERS.length)]! : `user-${Math.floor(rnd() * 5000)}`;
    const key = `${event_type}\u0000${user_id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const none = rnd() < 0.2;
    const v = rnd() * 100;
    rows.push({ event_type, user_id, count: 1 + Math.floor(rnd() * 9), value_count: none ? 0 : 1, value_sum: none ? null : v, value_mean: none ? null : v, value_min: none ? null : v, value_max: none ? null : v, value_stddev: none ? null : 0 });
  }
  return rows;
}

const sortRows = (rows: Row[], keys: string[]) =>
  [...rows].sort((a, b) => keys.map((k) => (k === 'window_start' ? (a[k] as number) - (b[k] as number) : compareCodePoints(a[k] as string | null, b[k] as string | null))).find((c) => c !== 0) ?? 0);

describe('aggregate Arrow answer', () => {
  it('interleaves the shards\' finished columns in key order, across batches of the answer and of the partials', () => {
    const rows = randomRows(3_000, 7);
    const shards: Row[][] = [[], [], []];
    rows.forEach((r, i) => shards[(i * 7) % 3]!.push(r));
    const partials = shards.map((s, k) => {
      const sorted = sortRows(s, ['event_type', 'user_id']);
      // shard 0 in two partial batches, shard 2 with none
      return k === 0 ? columnsPartial(SPEC, [sorted.slice(0, 100), sorted.slice(100)]) : columnsPartial(SPEC, [k === 2 ? [] : sorted]);
    });
    const out = decoded(arrowFromColumns(SPEC, partials, 1_000).pieces);
    const want = sortRows(rows.filter((_, i) => (i * 7) % 3 !== 2), ['event_type', 'user_id']);
    expect(out.fields).toEqual(['event_type', 'user_id', 'count', 'value_count', 'value_sum', 'value_mean', 'value_min', 'value_max', 'value_stddev']);
    expect(out.batches).toBe(Math.ceil(want.length / 1_000));
    expect(out.rows).toEqual(want);
    expect(out.table.schema.fields.map((f) => String(f.type))).toEqual(['Utf8', 'Utf8', 'Int64', 'Int64', 'Float64', 'Float64', 'Float64', 'Float64', 'Float64']);
  });

  it('knows the stream\'s length before any batch is gathered: the sum of the pieces it then makes, for any batch size', () => {
    const rows = randomRows(2_000, 11);
    const shards: Row[][] = [[], []];
    rows.forEach((r, i) => shards[i % 2]!.push(r));
    const partials = shards.map((s) => columnsPartial(SPEC, [sortRows(s, ['event_type', 'user_id'])]));
    const whole = Buffer.concat(arrowFromColumns(SPEC, partials, 1_000_000).pieces);
    // batch sizes whose string bytes need 0 to 7 bytes of padding
    for (const batchRows of [1, 3, 7, 100, 333, 1_000, 5_000]) {
      const stream = arrowStreamFromColumns(SPEC, partials, batchRows);
      const pieces = [...stream.pieces];
      expect(pieces.reduce((n, p) => n + p.byteLength, 0), `batches of ${batchRows}`).toBe(stream.bytes);
      expect(decoded(pieces).rows).toEqual(decoded([whole]).rows);
      expect(decoded(pieces).batches).toBe(Math.ceil(rows.length / batchRows));
    }
    // the merge's stream is its whole output, piece for piece
    const spec = { ...SPEC, finish: true };
    const streamed = aggregateArrowMerge.stream!(spec, partials);
    const made = aggregateArrowMerge.run(spec, partials);
    expect(streamed.bytes).toBe(made.bytes);
    expect(Buffer.compare(Buffer.concat([...streamed.pieces]), Buffer.concat(made.pieces))).toBe(0);
  });

  it('orders window keys by time and carries window_end', () => {
    const spec: AggregateSpec = { groupBy: ['user_id', 'window'], metrics: [], windowMs: 1_000 };
    const row = (user_id: string, start: number, count: number) => ({ user_id, window_start: start, window_end: start + 1_000, count });
    const a = [row('u1', 0, 1), row('u1', 2_000, 2), row('u3', 1_000, 1)];
    const b = [row('u1', 1_000, 5), row('u2', 0, 1)];
    const out = decoded(arrowFromColumns(spec, [columnsPartial(spec, [a]), columnsPartial(spec, [b])]).pieces);
    expect(out.rows).toEqual([row('u1', 0, 1), row('u1', 1_000, 5), row('u1', 2_000, 2), row('u2', 0, 1), row('u3', 1_000, 1)]);
  });

  it('refuses a shard whose rows are not in key order, within a batch or from one batch to the next', () => {
    const rows = sortRows(randomRows(50, 3), ['event_type', 'user_id']);
    expect(() => arrowFromColumns(SPEC, [columnsPartial(SPEC, [[...rows].reverse()])])).toThrow(/not in key order/);
    // each batch sorted, the second starting before the first ends; beside a shard in order, and alone
    const other = sortRows(randomRows(40, 5), ['event_type', 'user_id']);
    const swapped = columnsPartial(SPEC, [rows.slice(25), rows.slice(0, 25)]);
    expect(() => arrowFromColumns(SPEC, [columnsPartial(SPEC, [other]), swapped])).toThrow(/shard 1 are not in key order at row 0/);
    expect(() => arrowFromColumns(SPEC, [swapped])).toThrow(/shard 0 are not in key order at row 0/);
    expect(decoded(arrowFromColumns(SPEC, [columnsPartial(SPEC, [rows.slice(0, 25), rows.slice(25)])]).pieces).rows).toEqual(rows);
  });

  it('answers no batch for no rows, and a schema all the same', () => {
    const out = decoded(mergeAggregateArrowTask({ ...SPEC, finish: true }, [columnsPartial(SPEC, [[]]), columnsPartial(SPEC, [[]])]).pieces);
    expect(out.rows).toEqual([]);
    expect(out.fields).toEqual(answerColumns(SPEC).map((c) => c.name));
  });

  it('writes merged rows (no user key) with nulls and non-finite moments as doubles', () => {
    const spec: AggregateSpec = { groupBy: ['metadata.plan'], metrics: ['value'] };
    const rows: AggregateRow[] = [
      { 'metadata.plan': 'free', count: 3, value_count: 2, value_sum: 'Infinity', value_mean: 'Infinity', value_min: 1, value_max: 2, value_stddev: 'NaN' },
      { 'metadata.plan': null, count: 1, value_count: 0, value_sum: null, value_mean: null, value_min: null, value_max: null, value_stddev: null },
    ];
    const out = decoded(arrowFromRows(spec, rows, 1).pieces);
    expect(out.batches).toBe(2);
    expect(out.rows[0]).toMatchObject({ 'metadata.plan': 'free', count: 3, value_count: 2, value_sum: Infinity, value_min: 1 });
    expect(out.rows[0]!.value_stddev).toBeNaN();
    expect(out.rows[1]).toEqual(rows[1]);
  });
});
