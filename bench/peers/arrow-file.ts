/**
 * Event chunks → one Arrow IPC file, the plain-polars peer's input (it reads it with
 * `pl.read_ipc`, and writes the Parquet file DuckDB reads from it).
 *
 * Strings are dictionary-encoded straight from the chunk's index columns (no per-event string is
 * built): event_type, plan, country and page against their small lists, user_id against the
 * generator's user list. Each dictionary is one Vector reused by every batch, so the writer puts
 * it in the file once. Timestamps travel as Float64 (the chunk's own array, whole numbers) and the
 * reader casts them to Int64; values are Float64 with a validity bitmap where the chunk has NaN.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import {
  Dictionary,
  Field,
  Float64,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Uint32,
  Uint8,
  Utf8,
  makeData,
  vectorFromArray,
  type Data,
  type DataType,
  type Vector,
} from 'apache-arrow';
import { COUNTRIES, EVENT_TYPES, NONE, PAGES, PLANS, type EventChunk } from './events.js';

interface DictColumn {
  name: string;
  type: Dictionary<Utf8, Uint8 | Uint32>;
  dictionary: Vector<Utf8>;
}

function dictColumn(name: string, id: number, values: readonly string[], wide: boolean): DictColumn {
  return { name, type: new Dictionary(new Utf8(), wide ? new Uint32() : new Uint8(), id), dictionary: vectorFromArray([...values], new Utf8()) };
}

/** Validity bitmap (LSB first) of the positions where `isNull` is false, and the null count. */
function validity(n: number, isNull: (i: number) => boolean): { bitmap: Uint8Array; nulls: number } {
  const bitmap = new Uint8Array((n + 7) >> 3);
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    if (isNull(i)) nulls++;
    else bitmap[i >> 3]! |= 1 << (i & 7);
  }
  return { bitmap, nulls };
}

/**
 * Writes every chunk of `chunks` as one record batch of `path`.
 * @returns the number of events written.
 */
export async function writeEventsArrowFile(path: string, chunks: Iterable<EventChunk>, userIds: readonly string[]): Promise<number> {
  const eventType = dictColumn('event_type', 0, EVENT_TYPES, false);
  const userId = dictColumn('user_id', 1, userIds, true);
  const plan = dictColumn('plan', 2, PLANS, false);
  const country = dictColumn('country', 3, COUNTRIES, false);
  const page = dictColumn('page', 4, PAGES, false);
  const schema = new Schema([
    new Field('timestamp', new Float64(), false),
    new Field('event_type', eventType.type, false),
    new Field('user_id', userId.type, false),
    new Field('value', new Float64(), true),
    new Field('plan', plan.type, true),
    new Field('country', country.type, true),
    new Field('page', page.type, true),
  ]);

  const writer = new RecordBatchFileWriter();
  const out = createWriteStream(path);
  const bytes = writer.toNodeStream();
  bytes.pipe(out);
  let rows = 0;
  for (const c of chunks) {
    const n = c.length;
    const dict = (col: DictColumn, indices: Uint8Array | Uint32Array, nullable: boolean): Data => {
      if (!nullable) return makeData({ type: col.type, length: n, nullCount: 0, data: indices, dictionary: col.dictionary });
      const v = validity(n, (i) => indices[i] === NONE);
      // Readers check every index against the dictionary, null slots included: those become 0.
      const data = indices.map((x) => (x === NONE ? 0 : x));
      return makeData({ type: col.type, length: n, nullCount: v.nulls, nullBitmap: v.bitmap, data, dictionary: col.dictionary });
    };
    const value = validity(n, (i) => Number.isNaN(c.value[i]));
    const children: Data<DataType>[] = [
      makeData({ type: new Float64(), length: n, nullCount: 0, data: c.timestamp }),
      dict(eventType, c.eventType, false),
      dict(userId, c.user, false),
      makeData({ type: new Float64(), length: n, nullCount: value.nulls, nullBitmap: value.bitmap, data: c.value }),
      dict(plan, c.plan, true),
      dict(country, c.country, true),
      dict(page, c.page, true),
    ];
    writer.write(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children })));
    rows += n;
    // Let the file stream drain between batches instead of queueing the whole file in memory.
    if (out.writableNeedDrain) await once(out, 'drain');
  }
  writer.finish();
  writer.close();
  await finished(out);
  return rows;
}
