import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { tableFromIPC } from 'apache-arrow';
import { ColumnBuilder } from './column-builder.js';
import { BatchKeys, keysOfBatchRecord } from './batch-keys.js';
import { LogRecordType, encodeNumberedBatch } from './log/shard-log.js';
import { RECORD_KIND_EVENT, RECORD_KIND_KEYED_PART, decodeKeyedPart, decodeRecord, encodeKeyedPart, encodeRecord, keyedPartSize, recordSize, type EncodableEvent } from './ring-record.js';

const enc = new TextEncoder();
const hash = createHash('sha256').update('/ingest/batch\n{"events":[]}').digest();

function event(i: number): EncodableEvent {
  return { timestamp: 1_700_000_000_000 + i, value: i, eventType: enc.encode('view'), userId: `u${i}`, metadata: null };
}

/** A marker for `key` followed by `n` events, as the router stages one shard's part. */
function stagePart(key: string, n: number): { buf: Uint8Array; view: DataView; length: number } {
  const events = Array.from({ length: n }, (_, i) => event(i));
  const size = keyedPartSize(key.length) + events.reduce((t, e) => t + recordSize(e, enc.encode(e.userId).length), 0);
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  let off = encodeKeyedPart({ key, hash, at: 1234, total: 10, parts: 2, wait: true, events: n }, buf, view, 0);
  for (const e of events) off = encodeRecord(e, enc.encode(e.userId), buf, view, off);
  return { buf, view, length: off };
}

describe('keyed-part markers in the ring', () => {
  it('round-trips a marker and tells it from the events that follow', () => {
    const { buf, view, length } = stagePart('order-42:retry~1', 3);
    const first = decodeRecord(view, 0, length)!;
    expect(first.kind).toBe(RECORD_KIND_KEYED_PART);
    expect(decodeKeyedPart(buf, view, 0)).toEqual({ key: 'order-42:retry~1', hash: new Uint8Array(hash), at: 1234, total: 10, parts: 2, wait: true, events: 3 });
    let off = first.next;
    const kinds: number[] = [];
    while (off < length) {
      const r = decodeRecord(view, off, length)!;
      kinds.push(r.kind);
      off = r.next;
    }
    expect(kinds).toEqual([RECORD_KIND_EVENT, RECORD_KIND_EVENT, RECORD_KIND_EVENT]);
  });

  it('waits for a cut-off marker like for a cut-off event', () => {
    const { view } = stagePart('k', 1);
    expect(decodeRecord(view, 0, keyedPartSize(1) - 1)).toBeNull();
  });
});

describe('BatchKeys', () => {
  it('holds the seal back until every event of an open part is in the builder', () => {
    const keys = new BatchKeys();
    keys.begin({ key: 'a', hash, at: 1, total: 2, parts: 1, wait: false, events: 2 });
    expect(keys.inPart).toBe(true);
    keys.event();
    expect(keys.inPart).toBe(true);
    keys.event();
    expect(keys.inPart).toBe(false);
    keys.event(); // an unkeyed event after the part
    const meta = keys.take()!;
    expect(JSON.parse([...meta.values()][0]!)).toEqual([['a', Buffer.from(hash).toString('base64url'), 1, 2, 2, 1, 0]]);
    expect(keys.take()).toBeUndefined();
  });

  it('refuses a part opened inside another (a producer bug)', () => {
    const keys = new BatchKeys();
    keys.begin({ key: 'a', hash, at: 1, total: 2, parts: 1, wait: false, events: 2 });
    expect(() => keys.begin({ key: 'b', hash, at: 1, total: 1, parts: 1, wait: false, events: 1 })).toThrow(/inside part a/);
  });
});

describe('keys inside logged batches', () => {
  function sealedWithKeys(): Uint8Array {
    const b = new ColumnBuilder();
    const { buf, view, length } = stagePart('k-1', 2);
    const keys = new BatchKeys();
    let off = 0;
    while (off < length) {
      const r = decodeRecord(view, off, length)!;
      if (r.kind === RECORD_KIND_KEYED_PART) keys.begin(decodeKeyedPart(buf, view, off));
      else {
        b.append(buf, r);
        keys.event();
      }
      off = r.next;
    }
    return b.seal(keys.take())!.ipc;
  }

  it('reads the keys back from an event batch and a numbered batch record, and polars-facing columns are unchanged', () => {
    const ipc = sealedWithKeys();
    const expected = [{ key: 'k-1', hash: Buffer.from(hash).toString('base64url'), at: 1234, events: 2, total: 10, parts: 2, wait: true }];
    expect(keysOfBatchRecord(LogRecordType.EVENT_BATCH, ipc)).toEqual(expected);
    expect(keysOfBatchRecord(LogRecordType.NUMBERED_BATCH, encodeNumberedBatch(0, 2, ipc))).toEqual(expected);
    const table = tableFromIPC(ipc);
    expect(table.numRows).toBe(2);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['timestamp', 'event_type', 'user_id', 'value', 'metadata']);
  });

  it('finds no keys in a batch without them, nor in other records', () => {
    const b = new ColumnBuilder();
    const { buf, view } = stagePart('k', 1);
    b.append(buf, decodeRecord(view, keyedPartSize(1), view.byteLength)!);
    expect(keysOfBatchRecord(LogRecordType.EVENT_BATCH, b.seal()!.ipc)).toEqual([]);
    expect(keysOfBatchRecord(LogRecordType.ENRICH_DROP, enc.encode('plans'))).toEqual([]);
  });
});
