import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Bool, Int64, LargeUtf8, Table, Utf8, makeVector, tableToIPC, vectorFromArray, type Vector } from 'apache-arrow';
import { fromRoot } from '../paths.js';
import { RowsMerge, mergeAggregateRows, type AggregateRowsSpec } from './aggregate-rows.js';

type Row = Record<string, string | number | null>;

/** The bytes of a rows partial (python/engine_polars/_utils/ipc.py): prefix, IPC stream, texts, padding. */
function rowsPartial(ipc: Uint8Array, texts: string[], pad = true): Uint8Array {
  const body = Buffer.from(texts.join(''), 'utf8');
  const padding = pad ? -(8 + ipc.length + body.length) & 7 : 0;
  const out = new Uint8Array(8 + ipc.length + body.length + padding);
  new DataView(out.buffer).setUint32(0, ipc.length, true);
  out.set(ipc, 8);
  out.set(body, 8 + ipc.length);
  return out;
}

/** A shard's finished-rows partial, as python/engine_polars/answer_rows.py and _utils/ipc.py write one (one batch per `batches` entry). */
function partial(keys: string[], batches: Array<Array<{ row: Row; text?: string; reparse?: boolean }>>, large = true): Uint8Array {
  const texts: string[] = [];
  const tables = batches.map((rows) => {
    const cols: Record<string, Vector> = {};
    for (const k of keys) {
      if (k === 'window_start') cols[k] = makeVector({ type: new Int64(), data: new BigInt64Array(rows.map((r) => BigInt(r.row[k] as number))) } as never);
      else cols[k] = vectorFromArray(rows.map((r) => r.row[k] as string | null), large ? new LargeUtf8() : new Utf8());
    }
    const own = rows.map((r) => r.text ?? JSON.stringify(r.row));
    texts.push(...own);
    cols.__len = makeVector(Uint32Array.from(own.map((t) => Buffer.byteLength(t, 'utf8'))));
    cols.__reparse = vectorFromArray(rows.map((r) => r.reparse ?? false), new Bool());
    return new Table(cols);
  });
  return rowsPartial(tableToIPC(tables.reduce((a, b) => a.concat(b)), 'stream'), texts);
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The rows merged through RowsMerge.fill into buffers of the sizes `size` picks (1 byte and up). */
function streamed(spec: AggregateRowsSpec, partials: Uint8Array[], size: () => number): Uint8Array {
  const merge = new RowsMerge(spec, partials);
  const out: Uint8Array[] = [];
  while (merge.left > 0) {
    const chunk = new Uint8Array(Math.min(size(), merge.left));
    expect(merge.fill(chunk)).toBe(chunk.length);
    out.push(chunk);
  }
  expect(merge.fill(new Uint8Array(8))).toBe(0);
  const whole = Buffer.concat(out);
  expect(whole.length).toBe(merge.bytes);
  return whole;
}

function r(event_type: string | null, user_id: string, count = 1): Row {
  return { event_type, user_id, count };
}

describe('finished aggregate rows merge', () => {
  it('interleaves the shards in key order and copies their texts as they are', () => {
    const a = [r('click', 'u1'), r('click', 'u3'), r('view', 'u2')];
    const b = [r('click', 'u2'), r('view', 'u1'), r('view', 'u3')];
    const out = mergeAggregateRows({ groupBy: ['event_type', 'user_id'] }, [
      partial(['event_type', 'user_id'], [a.map((row) => ({ row }))]),
      partial(['event_type', 'user_id'], [b.map((row) => ({ row }))], false),
    ]);
    const want = [a[0], b[0], a[1], b[1], a[2], b[2]];
    expect(text(out)).toBe(JSON.stringify(want));
  });

  it('orders strings by code point (UTF-8 bytes), null keys last, windows by number, across batches', () => {
    const keys = ['window_start', 'event_type', 'user_id'];
    const w = (start: number, t: string | null, u: string): Row => ({ window_start: start, event_type: t, user_id: u, count: 1 });
    // U+FF5E sorts before U+1F600 by code point, after it by UTF-16 code unit.
    const shard0 = [[{ row: w(-60_000, 'a', 'z') }, { row: w(0, 'a', '\uff5e') }], [{ row: w(0, null, 'a') }, { row: w(120_000, 'b', 'x') }]];
    const shard1 = [[{ row: w(-60_000, null, 'a') }, { row: w(0, 'a', '😀') }, { row: w(60_000, 'ä', 'a') }]];
    const rows = JSON.parse(text(mergeAggregateRows({ groupBy: ['window', 'event_type', 'user_id'] }, [partial(keys, shard0), partial(keys, shard1)]))) as Row[];
    expect(rows.map((x) => [x.window_start, x.event_type, x.user_id])).toEqual([
      [-60_000, 'a', 'z'],
      [-60_000, null, 'a'],
      [0, 'a', '\uff5e'],
      [0, 'a', '😀'],
      [0, null, 'a'],
      [60_000, 'ä', 'a'],
      [120_000, 'b', 'x'],
    ]);
  });

  it('re-serializes the rows flagged __reparse as JSON.stringify writes them', () => {
    const rows = [
      { row: { user_id: 'a', count: 1, value_sum: 1e16 }, text: '{"user_id":"a","count":1,"value_sum":1e+16}', reparse: true },
      { row: { user_id: 'b', count: 1, value_sum: 0 }, text: '{"user_id":"b","count":1,"value_sum":-0.0}', reparse: true },
      { row: { user_id: 'c', count: 1, value_sum: 2.5e-7 }, text: '{"user_id":"c","count":1,"value_sum":2.5e-7}', reparse: true },
      { row: { user_id: 'd', count: 1, value_sum: 12.5 } },
    ];
    const out = text(mergeAggregateRows({ groupBy: ['user_id'] }, [partial(['user_id'], [rows])]));
    expect(out).toBe(JSON.stringify(rows.map((x) => x.row)));
    expect(out).toContain('"value_sum":10000000000000000');
  });

  it('answers [] when no shard has a row, and one shard alone as it is', () => {
    expect(text(mergeAggregateRows({ groupBy: ['user_id'] }, [partial(['user_id'], [[]]), partial(['user_id'], [[]])]))).toBe('[]');
    const only = [{ row: r('x', 'u') }, { row: r('y', 'u') }];
    expect(text(mergeAggregateRows({ groupBy: ['event_type', 'user_id'] }, [partial(['event_type', 'user_id'], [only])]))).toBe(JSON.stringify(only.map((x) => x.row)));
  });

  it('refuses a shard whose rows are out of key order, naming the shard and row', () => {
    const bad = partial(['user_id'], [[{ row: r(null, 'b') }, { row: r(null, 'a') }]]);
    expect(() => mergeAggregateRows({ groupBy: ['user_id'] }, [partial(['user_id'], [[]]), bad])).toThrow(/shard 1 are not in key order at row 1/);
  });

  it('names a missing column', () => {
    const noFlag = tableToIPC(new Table({ user_id: vectorFromArray(['a'], new Utf8()), __len: makeVector(Uint32Array.of(2)) }), 'stream');
    expect(() => mergeAggregateRows({ groupBy: ['user_id'] }, [rowsPartial(noFlag, ['{}'])])).toThrow(/missing column `__reparse`/);
  });

  it('refuses a partial whose texts are not the lengths `__len` gives, or that is not a rows partial', () => {
    const ipc = (...lens: number[]) =>
      tableToIPC(new Table({ user_id: vectorFromArray(['a', 'b'], new Utf8()), __len: makeVector(Uint32Array.from(lens)), __reparse: vectorFromArray([false, false], new Bool()) }), 'stream');
    expect(() => mergeAggregateRows({ groupBy: ['user_id'] }, [rowsPartial(ipc(2, 2), ['{}'], false)])).toThrow(/shard 0: `__len` adds up to 4 bytes of text, has 2/);
    expect(() => mergeAggregateRows({ groupBy: ['user_id'] }, [rowsPartial(ipc(2, 2), ['{}', '{}', '{"ab":12}'], false)])).toThrow(/adds up to 4 bytes of text, has 13/);
    expect(() => mergeAggregateRows({ groupBy: ['user_id'] }, [ipc(2, 2)])).toThrow(/expected an 8-byte prefix/);
  });

  it('matches the rows sorted by brute force over 1-4 shards, with empty shards, several batches, shared key prefixes and re-serialized rows', () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const types = ['click', 'page_view', 'page_viewed', null];
    // NUL bytes inside and after a head's 6 bytes: a head pads a short string with zeros
    const users = ['user-1', 'user-10', 'user-100000', 'user-2', 'user-20000a', 'user-20000b', 'ü', '', 'user-1234567890', 'user-1\u0000', 'user-1\u0000\u0000\u0000\u0000\u0000z', 'user-\u0000'];
    for (let round = 0; round < 40; round++) {
      const shards = 1 + rand(4);
      const all: Array<{ shard: number; row: Row; text?: string; reparse?: boolean }> = [];
      const seen = new Set<string>();
      for (let k = rand(60); k > 0; k--) {
        const row = { event_type: types[rand(types.length)]!, user_id: `${users[rand(users.length)]}${rand(3) === 0 ? rand(50) : ''}`, count: 1 + rand(5) };
        const key = JSON.stringify([row.event_type, row.user_id]);
        if (seen.has(key)) continue;
        seen.add(key);
        const odd = rand(5) === 0;
        all.push({ shard: rand(shards), row: odd ? { ...row, value_sum: 1e16 } : row, ...(odd ? { text: JSON.stringify({ ...row, value_sum: 'X' }).replace('"X"', '1e+16'), reparse: true } : {}) });
      }
      const cmp = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const sorted = [...all].sort((a, b) => cmp(a.row.event_type as string | null, b.row.event_type as string | null) || cmp(a.row.user_id as string, b.row.user_id as string));
      const partials = Array.from({ length: shards }, (_, s) => {
        const mine = sorted.filter((x) => x.shard === s);
        const cut = rand(mine.length + 1);
        return partial(['event_type', 'user_id'], cut > 0 && cut < mine.length ? [mine.slice(0, cut), mine.slice(cut)] : [mine]);
      });
      const out = text(mergeAggregateRows({ groupBy: ['event_type', 'user_id'] }, partials));
      expect(out).toBe(JSON.stringify(sorted.map((x) => x.row)));
      // the same bytes when they are written a few at a time (rows cut between fills), as a streamed answer is
      const bytes = 1 + rand(40);
      expect(text(streamed({ groupBy: ['event_type', 'user_id'] }, partials, () => 1 + rand(bytes)))).toBe(out);
    }
  });

  it('streamed: refuses a shard out of key order when it reaches it, after the rows before', () => {
    const shard0 = partial(['event_type', 'user_id'], [[{ row: r('a', 'u1') }, { row: r('b', 'u1') }, { row: r('a', 'u2') }]]);
    const merge = new RowsMerge({ groupBy: ['event_type', 'user_id'] }, [shard0]);
    const first = new Uint8Array(Buffer.byteLength(JSON.stringify(r('a', 'u1'))) + 1);
    expect(merge.fill(first)).toBe(first.length);
    expect(() => merge.fill(new Uint8Array(1000))).toThrow('aggregate rows of shard 0 are not in key order at row 2');
  });

  it('reads test/vectors/json-numbers.json as JavaScript writes each number', () => {
    const { numbers } = JSON.parse(readFileSync(fromRoot('test', 'vectors', 'json-numbers.json'), 'utf8')) as { numbers: string[] };
    expect(numbers.length).toBeGreaterThan(500);
    for (const t of numbers) expect(String(Number(t))).toBe(t);
  });
});
