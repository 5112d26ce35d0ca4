import { describe, expect, it } from 'vitest';
import { Float64, Int64, RecordBatch, RecordBatchStreamWriter, Schema, Struct, Utf8, makeData, tableFromIPC } from 'apache-arrow';
import { ColumnBuilder, EVENT_BATCH_SCHEMA, FLOAT_TIMESTAMP_SCHEMA, SEALED_HEAD_BYTES } from './column-builder.js';
import { decodeRecord, encodeRecord, recordSize, type EncodableEvent } from './ring-record.js';
import { decodeNumberedBatch, numberedBatchIn } from './log/shard-log.js';

const enc = new TextEncoder();

function randomEvents(seed: number, n: number, opts: { valueNulls: boolean; metadataNulls: boolean }): EncodableEvent[] {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const words = ['', 'a', 'click', 'pâge_view', '✓✓', 'x'.repeat(40), '😀'];
  return Array.from({ length: n }, (_, i) => ({
    timestamp: 1_700_000_000_000 + Math.floor(rand() * 1e9),
    value: opts.valueNulls && rand() < 0.3 ? null : (rand() - 0.5) * 1e6,
    eventType: enc.encode(words[Math.floor(rand() * words.length)]!),
    userId: `u${Math.floor(rand() * 1000)}${words[i % words.length]}`,
    metadata: opts.metadataNulls && rand() < 0.6 ? null : enc.encode(JSON.stringify({ k: words[Math.floor(rand() * words.length)], i })),
  }));
}

function fill(builder: ColumnBuilder, events: EncodableEvent[]): void {
  const total = events.reduce((n, e) => n + recordSize(e, enc.encode(e.userId).length), 0);
  const buf = new Uint8Array(total);
  const view = new DataView(buf.buffer);
  let off = 0;
  for (const e of events) off = encodeRecord(e, enc.encode(e.userId), buf, view, off);
  off = 0;
  for (let i = 0; i < events.length; i++) {
    const r = decodeRecord(view, off, total)!;
    builder.append(buf, r);
    off = r.next;
  }
}

/** The same rows through apache-arrow's own writer (what seal() wrote before it wrote the stream itself). */
function writerBytes(events: EncodableEvent[], metadata?: Map<string, string>): Uint8Array {
  const n = events.length;
  const intTimestamps = events.every((e) => Number.isSafeInteger(e.timestamp));
  const bitmap = (valid: (e: EncodableEvent) => boolean) => {
    const bits = new Uint8Array((n + 7) >> 3);
    events.forEach((e, i) => {
      if (valid(e)) bits[i >> 3]! |= 1 << (i & 7);
    });
    return bits;
  };
  const utf8 = (get: (e: EncodableEvent) => Uint8Array, nulls = 0, nullBitmap?: Uint8Array) => {
    const parts = events.map(get);
    const offsets = new Int32Array(n + 1);
    parts.forEach((p, i) => (offsets[i + 1] = offsets[i]! + p.length));
    const data = new Uint8Array(offsets[n]!);
    parts.forEach((p, i) => data.set(p, offsets[i]!));
    return makeData({ type: new Utf8(), length: n, nullCount: nulls, ...(nulls > 0 ? { nullBitmap } : { nullBitmap: new Uint8Array(0) }), valueOffsets: offsets, data });
  };
  const valueNulls = events.filter((e) => e.value === null).length;
  const metadataNulls = events.filter((e) => e.metadata === null).length;
  const children = [
    intTimestamps
      ? makeData({ type: new Int64(), length: n, data: BigInt64Array.from(events, (e) => BigInt(e.timestamp)) })
      : makeData({ type: new Float64(), length: n, data: Float64Array.from(events, (e) => e.timestamp) }),
    utf8((e) => e.eventType),
    utf8((e) => enc.encode(e.userId)),
    makeData({
      type: new Float64(),
      length: n,
      nullCount: valueNulls,
      nullBitmap: valueNulls > 0 ? bitmap((e) => e.value !== null) : new Uint8Array(0),
      data: Float64Array.from(events, (e) => e.value ?? 0),
    }),
    utf8((e) => e.metadata ?? new Uint8Array(0), metadataNulls, bitmap((e) => e.metadata !== null)),
  ];
  const fields = intTimestamps ? EVENT_BATCH_SCHEMA : FLOAT_TIMESTAMP_SCHEMA;
  const schema = metadata ? new Schema(fields.fields, metadata) : fields;
  const struct = makeData({ type: new Struct(fields.fields), length: n, nullCount: 0, children });
  return RecordBatchStreamWriter.writeAll([new RecordBatch(schema, struct)]).toUint8Array(true);
}

describe('ColumnBuilder.seal', () => {
  const shapes = [
    { n: 1, valueNulls: false, metadataNulls: false },
    { n: 7, valueNulls: true, metadataNulls: true },
    { n: 8, valueNulls: true, metadataNulls: false },
    { n: 64, valueNulls: false, metadataNulls: true },
    { n: 128, valueNulls: true, metadataNulls: true },
    { n: 1025, valueNulls: true, metadataNulls: true },
    { n: 3001, valueNulls: false, metadataNulls: false },
  ];
  for (const [i, shape] of shapes.entries()) {
    it(`writes the bytes apache-arrow's stream writer writes (${shape.n} rows, value nulls ${shape.valueNulls}, metadata nulls ${shape.metadataNulls})`, () => {
      const events = randomEvents(i + 1, shape.n, shape);
      const builder = new ColumnBuilder();
      fill(builder, events);
      const sealed = builder.seal()!;
      expect(sealed.rows).toBe(shape.n);
      expect(Buffer.from(sealed.ipc).equals(Buffer.from(writerBytes(events)))).toBe(true);
    });
  }

  it('zeroes the head room and every padding byte itself: the payload memory is not zero-filled', () => {
    // Many seals in one process, so payloads land in memory freed by earlier ones (dirty).
    for (let round = 0; round < 40; round++) {
      const shape = { valueNulls: round % 2 === 0, metadataNulls: round % 3 !== 0 };
      const events = randomEvents(1000 + round, 1 + ((round * 977) % 2500), shape);
      const builder = new ColumnBuilder();
      fill(builder, events);
      const sealed = builder.seal()!;
      expect(Array.from(sealed.payload.subarray(0, SEALED_HEAD_BYTES))).toEqual(new Array(SEALED_HEAD_BYTES).fill(0));
      expect(Buffer.from(sealed.ipc).equals(Buffer.from(writerBytes(events)))).toBe(true);
      sealed.payload.fill(0xa5); // dirty it for the allocations after it
    }
  });

  it('writes the idempotency keys into the schema as the stream writer does', () => {
    const events = randomEvents(9, 100, { valueNulls: true, metadataNulls: true });
    const keys = new Map([['shardlytics.keys', '[["k1",40],["k2",60]]']]);
    const builder = new ColumnBuilder();
    fill(builder, events);
    const sealed = builder.seal(keys)!;
    expect(Buffer.from(sealed.ipc).equals(Buffer.from(writerBytes(events, keys)))).toBe(true);
    expect(tableFromIPC(sealed.ipc).schema.metadata.get('shardlytics.keys')).toBe('[["k1",40],["k2",60]]');
  });

  it('reads back every value of batches sealed one after another from a reused builder', () => {
    const builder = new ColumnBuilder();
    for (let round = 0; round < 4; round++) {
      const events = randomEvents(100 + round, [3000, 5, 700, 1][round]!, { valueNulls: round % 2 === 0, metadataNulls: round < 2 });
      fill(builder, events);
      const table = tableFromIPC(builder.seal()!.ipc);
      expect(table.numRows).toBe(events.length);
      const dec = new TextDecoder();
      events.forEach((e, i) => {
        const row = table.get(i)!.toJSON() as Record<string, unknown>;
        expect(row).toEqual({
          timestamp: BigInt(e.timestamp),
          event_type: dec.decode(e.eventType),
          user_id: e.userId,
          value: e.value,
          metadata: e.metadata ? dec.decode(e.metadata) : null,
        });
      });
    }
  });

  it('writes timestamps as Int64, negative and up to 2^53 - 1 exactly, and a batch holding one that is not a safe integer as Float64', () => {
    const stamps = [0, -1, -(2 ** 32), 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, -(2 ** 40) - 7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1_700_000_000_123];
    const events = randomEvents(21, stamps.length, { valueNulls: true, metadataNulls: true }).map((e, i) => ({ ...e, timestamp: stamps[i]! }));
    const builder = new ColumnBuilder();
    fill(builder, events);
    const sealed = builder.seal()!;
    expect(Buffer.from(sealed.ipc).equals(Buffer.from(writerBytes(events)))).toBe(true);
    const table = tableFromIPC(sealed.ipc);
    expect(String(table.schema.fields[0]!.type)).toBe('Int64');
    expect(Array.from(table.getChild('timestamp')!.toArray() as BigInt64Array)).toEqual(stamps.map((t) => BigInt(t)));
    for (const odd of [1.5, 2 ** 53, -(2 ** 60), NaN]) {
      fill(builder, [...events.slice(0, 3), { ...events[3]!, timestamp: odd }]);
      const b = builder.seal()!;
      const t = tableFromIPC(b.ipc);
      expect(String(t.schema.fields[0]!.type)).toBe('Float64');
      expect(Array.from(t.getChild('timestamp')!.toArray() as Float64Array)).toEqual([...stamps.slice(0, 3), odd]);
      expect(Buffer.from(b.ipc).equals(Buffer.from(writerBytes([...events.slice(0, 3), { ...events[3]!, timestamp: odd }])))).toBe(true);
    }
  });

  it('leaves room in front of the stream for the numbered-batch head, written without copying the stream', () => {
    const builder = new ColumnBuilder();
    fill(builder, randomEvents(3, 50, { valueNulls: true, metadataNulls: true }));
    const sealed = builder.seal()!;
    expect(sealed.ipc.buffer).toBe(sealed.payload.buffer);
    expect(sealed.ipc.byteOffset - sealed.payload.byteOffset).toBe(SEALED_HEAD_BYTES);
    const copy = sealed.ipc.slice();
    const record = numberedBatchIn(sealed.payload, 2 ** 40 + 3, 50);
    expect(record).toBe(sealed.payload);
    const decoded = decodeNumberedBatch(record);
    expect([decoded.firstRow, decoded.rows]).toEqual([2 ** 40 + 3, 50]);
    expect(Buffer.from(decoded.ipc).equals(Buffer.from(copy))).toBe(true);
  });
});
