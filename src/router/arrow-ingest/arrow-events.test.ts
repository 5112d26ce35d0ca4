/**
 * The Arrow ingest pipeline without the engine: body → read → route → validate → column blocks
 * → the shard's ColumnBuilder → sealed batch, compared row by row with the events, and every
 * refusal with its row, column and reason.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Dictionary, Float64, Int32, Int64, Utf8, RecordBatchReader, RecordBatchStreamWriter, RecordBatchFileWriter, makeData, makeVector, vectorFromArray } from 'apache-arrow';
import { arrowBody, arrowTable, type ArrowEvent } from '../../../test/helpers/arrow-body.js';
import { ColumnBuilder } from '../../shards/column-builder.js';
import { blockBytesAt, decodeBlock, encodeBlock, nextBlock } from '../../shards/ring-block.js';
import { decodeRecord } from '../../shards/ring-record.js';
import { HttpError, type FieldError } from '../http-error.js';
import { shardForUser } from '../route-hash.js';
import { routeArrowEvents, validateArrowEvents } from './arrow-events.js';

const OPTS: { receivedAt: number; maxFutureSkewMs: number | null; maxJsonDepth: number } = { receivedAt: 1_800_000_000_000, maxFutureSkewMs: null, maxJsonDepth: 32 };

interface Stored {
  timestamp: number;
  event_type: string;
  user_id: string;
  value: number | null;
  metadata: string | null;
}

/** What each shard would store: the request written as blocks, read back by the shard's builder. */
function store(body: Uint8Array, shards: number, opts = OPTS): Stored[][] {
  const routed = routeArrowEvents(body, shards);
  const decoded = validateArrowEvents(routed, opts);
  if ('invalid' in decoded) throw decoded.invalid;
  const out: Stored[][] = [];
  for (let shard = 0; shard < shards; shard++) {
    // odd start offset: the producer pads so its columns are aligned, the consumer copies bytes
    let buf = new Uint8Array(1 << 16);
    let view = new DataView(buf.buffer);
    let len = 3;
    for (const { source, order } of decoded.chunks) {
      for (let from = order.bounds[shard]!; from < order.bounds[shard + 1]!; ) {
        const { to, strings } = nextBlock(source, order.order, from, order.bounds[shard + 1]!);
        const need = len + blockBytesAt(buf, len, to - from, strings);
        if (need > buf.length) {
          const grown = new Uint8Array(need * 2);
          grown.set(buf);
          buf = grown;
          view = new DataView(buf.buffer);
        }
        len = encodeBlock(source, order.order, from, to, strings, buf, view, len);
        from = to;
      }
    }
    // the consumer reads the records from a copy at another alignment, as from its pop scratch
    const scratch = new Uint8Array(len - 3 + 5).subarray(5);
    scratch.set(buf.subarray(3, len));
    const sv = new DataView(scratch.buffer, scratch.byteOffset, scratch.byteLength);
    const builder = new ColumnBuilder();
    for (let off = 0; off < scratch.length; ) {
      const rec = decodeRecord(sv, off, scratch.length)!;
      builder.appendBlock(scratch, decodeBlock(sv, off, rec.body));
      off = rec.next;
    }
    const sealed = builder.seal();
    // timestamps are Int64 in a sealed batch (BigInt here): compared as numbers
    out.push(sealed ? [...RecordBatchReader.from(sealed.ipc)].flatMap((b) => b.toArray().map((r) => ({ ...r.toJSON(), timestamp: Number(r.timestamp) }) as unknown as Stored)) : []);
  }
  return out;
}

function refusal(body: Uint8Array, opts = OPTS): { message: string; errors: FieldError[] } {
  const decoded = validateArrowEvents(routeArrowEvents(body, 2), opts);
  if (!('invalid' in decoded)) throw new Error('expected the request to be refused');
  return { message: decoded.invalid.message, errors: decoded.invalid.details!.errors! };
}

function thrown(f: () => unknown): HttpError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return err as HttpError;
  }
  throw new Error('expected a throw');
}

function events(n: number, seed = 1): ArrowEvent[] {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const meta = ['{"plan":"pro"}', '{"plan": "free"}', '{"a":{"b":[1,2]},"n":2.5}', null];
  return Array.from({ length: n }, (_, i) => ({
    timestamp: 1_790_000_000_000 + Math.floor(rand() * 86_400_000) - (i % 7 === 0 ? 1_800_000_000_000 : 0),
    event_type: ['view', 'click', 'buy', 'é-vent'][i % 4]!,
    user_id: `user-${Math.floor(rand() * 50)}${i % 11 === 0 ? '-😀' : ''}`,
    value: i % 9 === 0 ? null : Math.round(rand() * 1e6) / 100,
    metadata: meta[i % 4]!,
  }));
}

const asStored = (e: ArrowEvent): Stored => ({
  timestamp: e.timestamp,
  event_type: e.event_type,
  user_id: e.user_id,
  value: e.value ?? null,
  metadata: e.metadata == null ? null : JSON.stringify(JSON.parse(e.metadata)),
});

describe('Arrow ingest pipeline', () => {
  it('stores every event on its user\'s shard, in order, whatever the string layout, batch split and shard count', () => {
    const evs = events(3000);
    for (const strings of ['utf8', 'large', 'dict'] as const) {
      for (const shards of [1, 2, 3]) {
        const stored = store(arrowBody(evs, { strings, batchRows: 700 }), shards);
        for (let s = 0; s < shards; s++) {
          expect(stored[s], `${strings}, ${shards} shards, shard ${s}`).toEqual(evs.filter((e) => shardForUser(e.user_id, shards) === s).map(asStored));
        }
      }
    }
  });

  it('reads timestamps in every unit exactly (µs and ns rounded down, negative ones too), value and metadata columns optional', () => {
    const evs = events(200).map((e, i) => ({ ...e, timestamp: e.timestamp - (i % 2) * 1_234_567 }));
    for (const unit of ['ms', 'us', 'ns'] as const) {
      expect(store(arrowBody(evs, { timestamp: unit }), 1)[0]).toEqual(evs.map(asStored));
    }
    const seconds = store(arrowBody(evs, { timestamp: 's' }), 1)[0]!;
    expect(seconds.map((r) => r.timestamp)).toEqual(evs.map((e) => Math.floor(e.timestamp / 1000) * 1000));
    const stored = store(arrowBody(evs, { omit: ['value', 'metadata'] }), 1)[0]!;
    expect(stored.every((r) => r.value === null && r.metadata === null)).toBe(true);
  });

  it('reads what polars writes (Utf8View, Categorical dictionaries, LargeUtf8, Datetime µs)', () => {
    const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '../../../test/vectors/arrow-ingest.json'), 'utf8')) as { expected: Stored[]; polars_newest: string; polars_oldest: string };
    for (const name of ['polars_newest', 'polars_oldest'] as const) {
      expect(store(Buffer.from(vectors[name], 'base64'), 1)[0], name).toEqual(vectors.expected);
    }
  });

  it('reads the IPC file format too, and a body at any byte offset', () => {
    const evs = events(50);
    const file = RecordBatchFileWriter.writeAll(arrowTable(evs)).toUint8Array(true);
    expect(store(file, 1)[0]).toEqual(evs.map(asStored));
    const stream = arrowBody(evs);
    const shifted = new Uint8Array(stream.length + 3).subarray(3);
    shifted.set(stream);
    expect(store(shifted, 1)[0]).toEqual(evs.map(asStored));
  });

  it('checks a dictionary once per entry it uses: an unused bad entry refuses nothing', () => {
    const dictionary = vectorFromArray(['ok-a', '', 'ok-b'], new Utf8());
    const codes = makeData({ type: new Dictionary(new Utf8(), new Int32()), length: 3, nullCount: 0, data: new Int32Array([0, 2, 0]), dictionary });
    const evs = events(3);
    const body = arrowBody(evs, { columns: { user_id: makeVector(codes) } });
    expect(store(body, 1)[0]!.map((r) => r.user_id)).toEqual(['ok-a', 'ok-b', 'ok-a']);
  });
});

/** A string column with raw bytes per row (to put bad UTF-8 in). */
function rawStrings(rows: Array<number[] | null>) {
  const offsets = new Int32Array(rows.length + 1);
  const bytes: number[] = [];
  const valid = new Uint8Array((rows.length + 7) >> 3);
  rows.forEach((r, i) => {
    if (r) {
      bytes.push(...r);
      valid[i >> 3]! |= 1 << (i & 7);
    }
    offsets[i + 1] = bytes.length;
  });
  const nulls = rows.filter((r) => r === null).length;
  return makeVector(makeData({ type: new Utf8(), length: rows.length, nullCount: nulls, nullBitmap: valid, valueOffsets: offsets, data: Uint8Array.from(bytes) }));
}

const utf8 = (s: string) => [...new TextEncoder().encode(s)];

describe('Arrow ingest refusals', () => {
  it('names the row and column of every bad value, lowest rows first, and counts them all', () => {
    const evs: ArrowEvent[] = events(30).map((e) => ({ ...e, metadata: null }));
    evs[3]!.event_type = '';
    evs[4]!.event_type = 'x'.repeat(65);
    evs[5]!.user_id = 'u'.repeat(129);
    evs[6]!.value = NaN;
    evs[7]!.value = Infinity;
    evs[8]!.metadata = '[1]';
    evs[9]!.metadata = '{"a":';
    evs[10]!.metadata = `{"a":"${'x'.repeat(4100)}"}`;
    evs[11]!.metadata = '{"a":{"b":"\\ud800"}}';
    evs[12]!.timestamp = 253402300800000;
    evs[13]!.user_id = '😀'.repeat(64) + 'x'; // 129 UTF-16 units in 257 bytes
    evs[14]!.event_type = 'é'.repeat(64); // 64 units in 128 bytes: fine
    const { message, errors } = refusal(arrowBody(evs));
    expect(message).toBe('11 invalid value(s); first: row 3, column `event_type`: expected 1–64 characters, got 0');
    expect(errors).toEqual([
      { index: 3, field: 'event_type', reason: 'expected 1–64 characters, got 0' },
      { index: 4, field: 'event_type', reason: 'expected 1–64 characters, got 65' },
      { index: 5, field: 'user_id', reason: 'expected 1–128 characters, got 129' },
      { index: 6, field: 'value', reason: 'expected a finite number or null, got NaN' },
      { index: 7, field: 'value', reason: 'expected a finite number or null, got Infinity' },
      { index: 8, field: 'metadata', reason: 'expected a JSON object, got array' },
      { index: 9, field: 'metadata', reason: expect.stringMatching(/^not valid JSON/) },
      { index: 10, field: 'metadata', reason: 'serialized size 4108 bytes exceeds 4096' },
      { index: 11, field: 'metadata.a.b', reason: 'not well-formed Unicode (contains a lone surrogate)' },
      { index: 12, field: 'timestamp', reason: 'epoch milliseconds out of range (253402300800000); years 0001–9999' },
      { index: 13, field: 'user_id', reason: 'expected 1–128 characters, got 129' },
    ]);
  });

  it('refuses nulls in required columns, bad UTF-8 and strings cut inside a character, naming the row', () => {
    const evs = events(6);
    const userIds = rawStrings([utf8('ok'), null, [0x61, 0xed, 0xa0, 0x80], [0xff], utf8('é').slice(0, 1), utf8('fine')]);
    const { errors } = refusal(arrowBody(evs, { columns: { user_id: userIds } }));
    expect(errors).toEqual([
      { index: 1, field: 'user_id', reason: 'required' },
      { index: 2, field: 'user_id', reason: 'not well-formed UTF-8 (a lone surrogate or invalid bytes)' },
      { index: 3, field: 'user_id', reason: 'not well-formed UTF-8 (a lone surrogate or invalid bytes)' },
      { index: 4, field: 'user_id', reason: 'not well-formed UTF-8 (a lone surrogate or invalid bytes)' },
    ]);
    // a valid 2-byte character split between two rows: each half is refused
    const split = rawStrings([utf8('a'), [0xc3], [0xa9], utf8('b')]);
    expect(refusal(arrowBody(events(4), { columns: { event_type: split } })).errors.map((e) => e.index)).toEqual([1, 2]);
    const ts = makeVector(makeData({ type: new Int64(), length: 2, nullCount: 1, nullBitmap: new Uint8Array([1]), data: new BigInt64Array([1n, 0n]) }));
    expect(refusal(arrowBody(events(2), { columns: { timestamp: ts } })).errors).toEqual([{ index: 1, field: 'timestamp', reason: 'required' }]);
  });

  it('counts rows across record batches', () => {
    const evs = events(10);
    evs[8]!.user_id = '';
    expect(refusal(arrowBody(evs, { batchRows: 3 })).errors).toEqual([{ index: 8, field: 'user_id', reason: 'expected 1–128 characters, got 0' }]);
  });

  it('refuses timestamps beyond maxFutureSkew', () => {
    const evs = events(3).map((e, i) => ({ ...e, timestamp: OPTS.receivedAt + (i === 2 ? 86_400_001 : 86_400_000) }));
    expect(refusal(arrowBody(evs), { ...OPTS, maxFutureSkewMs: 86_400_000 }).errors).toEqual([
      { index: 2, field: 'timestamp', reason: expect.stringMatching(/ahead of the receive time .*at most maxFutureSkew \(1d\) ahead$/) },
    ]);
  });

  it('refuses a body that is not an Arrow stream, the wrong columns, and broken buffers, with a 400 naming the column', () => {
    const evs = events(4);
    expect(thrown(() => routeArrowEvents(new TextEncoder().encode('{"events":[]}'), 2)).message).toMatch(/^body is not a readable Arrow IPC stream/);
    expect(thrown(() => routeArrowEvents(new Uint8Array(0), 2)).status).toBe(400);
    expect(thrown(() => routeArrowEvents(arrowBody(evs, { omit: ['user_id'] }), 2)).message).toMatch(/^column `user_id`: missing/);
    expect(thrown(() => routeArrowEvents(arrowBody(evs, { columns: { country: vectorFromArray(['x', 'y', 'z', 'w']) } }), 2)).message).toMatch(/^column `country`: unknown column/);
    expect(thrown(() => routeArrowEvents(arrowBody(evs, { columns: { value: vectorFromArray(['1', '2', '3', '4'], new Utf8()) } }), 2)).message).toBe(
      'column `value`: has type Utf8; expected Float64 (or Float32, an integer type, or Null for no values)',
    );
    expect(thrown(() => routeArrowEvents(arrowBody(evs, { columns: { timestamp: vectorFromArray([1, 2, 3, 4], new Float64()) } }), 2)).message).toMatch(/^column `timestamp`: has type Float64; expected Int64/);
    const badCodes = makeData({ type: new Dictionary(new Utf8(), new Int32()), length: 4, nullCount: 0, data: new Int32Array([0, 1, 5, 0]), dictionary: vectorFromArray(['a', 'b'], new Utf8()) });
    expect(thrown(() => routeArrowEvents(arrowBody(evs, { columns: { user_id: makeVector(badCodes) } }), 2)).message).toBe("column `user_id`: row 2 has dictionary index 5, outside the dictionary's 2 entries");
    const empty = RecordBatchStreamWriter.writeAll(arrowTable([])).toUint8Array(true);
    expect(thrown(() => routeArrowEvents(empty, 2)).message).toMatch(/^no events in request/);
  });

  it('refuses offsets that point outside the data, before anything reads them', () => {
    const evs = events(3);
    const body = arrowBody(evs, { omit: ['metadata'] });
    // find user_id's offsets in the body (0, 6, 12, 18 for "user-N" ids of 6 bytes) and break the last one
    const stored = store(body, 1)[0]!;
    expect(stored).toHaveLength(3);
    const ids = evs.map((e) => new TextEncoder().encode(e.user_id).length);
    const want = new Int32Array([0, ids[0]!, ids[0]! + ids[1]!, ids[0]! + ids[1]! + ids[2]!]);
    const bytes = new Uint8Array(want.buffer);
    let at = -1;
    for (let i = 0; i + bytes.length <= body.length && at < 0; i++) if (bytes.every((b, k) => body[i + k] === b)) at = i;
    expect(at).toBeGreaterThan(0);
    const broken = body.slice();
    new DataView(broken.buffer).setInt32(at + 12, 1 << 20, true);
    expect(thrown(() => routeArrowEvents(broken, 2)).message).toMatch(/^column `(event_type|user_id)`: string offsets reach byte 1048576/);
  });
});
