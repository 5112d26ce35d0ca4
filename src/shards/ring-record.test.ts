import { describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import { ColumnBuilder } from './column-builder.js';
import { decodeRecord, encodeRecord, recordSize, type EncodableEvent } from './ring-record.js';
import { ShardRing, makeShardRingBuffers } from './shard-ring.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function event(i: number): EncodableEvent {
  return {
    timestamp: 1_700_000_000_000 + i,
    value: i % 3 === 0 ? null : i * 1.5,
    eventType: enc.encode(i % 2 ? 'click' : 'pâge_view'),
    userId: `user-${i}-✓`,
    metadata: i % 4 === 0 ? enc.encode(JSON.stringify({ i })) : null,
  };
}

describe('ring record codec', () => {
  it('round-trips events with nulls, UTF-8 and optional metadata', () => {
    const events = Array.from({ length: 50 }, (_, i) => event(i));
    const total = events.reduce((n, e) => n + recordSize(e, enc.encode(e.userId).length), 0);
    const buf = new Uint8Array(total);
    const view = new DataView(buf.buffer);
    let off = 0;
    for (const e of events) off = encodeRecord(e, enc.encode(e.userId), buf, view, off);
    expect(off).toBe(total);
    off = 0;
    for (const e of events) {
      const r = decodeRecord(view, off, total)!;
      expect(r.timestamp).toBe(e.timestamp);
      expect(r.value).toBe(e.value);
      expect(dec.decode(buf.subarray(r.eventTypeStart, r.eventTypeStart + r.eventTypeLen))).toBe(dec.decode(e.eventType));
      expect(dec.decode(buf.subarray(r.userIdStart, r.userIdStart + r.userIdLen))).toBe(e.userId);
      expect(r.hasMetadata).toBe(e.metadata !== null);
      off = r.next;
    }
  });

  it('returns null for a partial record instead of reading past the end', () => {
    const e = event(1);
    const buf = new Uint8Array(recordSize(e, enc.encode(e.userId).length));
    const view = new DataView(buf.buffer);
    encodeRecord(e, enc.encode(e.userId), buf, view, 0);
    expect(decodeRecord(view, 0, buf.length - 1)).toBeNull();
    expect(decodeRecord(view, 0, 10)).toBeNull();
    expect(decodeRecord(view, 0, buf.length)).not.toBeNull();
  });
});

describe('shard ring', () => {
  it('reports usable capacity exactly as configured and refuses nothing that fits', () => {
    const ring = new ShardRing(makeShardRingBuffers(4096));
    expect(ring.capacity()).toBe(4096);
    const bytes = new Uint8Array(4096).fill(7);
    expect(ring.freeBytes()).toBe(4096);
    ring.push(bytes, 4096, 1);
    expect(ring.freeBytes()).toBe(0);
    expect(ring.pushed()).toBe(1);
    expect(() => ring.push(bytes, 1, 1)).toThrow(/wrote 0 of 1/);
  });
});

describe('column builder', () => {
  it('seals rows into an Arrow IPC batch with the append schema', () => {
    const events = Array.from({ length: 3000 }, (_, i) => event(i));
    const total = events.reduce((n, e) => n + recordSize(e, enc.encode(e.userId).length), 0);
    const buf = new Uint8Array(total);
    const view = new DataView(buf.buffer);
    let off = 0;
    for (const e of events) off = encodeRecord(e, enc.encode(e.userId), buf, view, off);
    const builder = new ColumnBuilder();
    off = 0;
    for (let i = 0; i < events.length; i++) {
      const r = decodeRecord(view, off, total)!;
      builder.append(buf, r);
      off = r.next;
    }
    const sealed = builder.seal()!;
    expect(sealed.rows).toBe(3000);
    expect(builder.rows).toBe(0);
    const table = tableFromIPC(sealed.ipc);
    expect(table.schema.fields.map((f) => f.name)).toEqual(['timestamp', 'event_type', 'user_id', 'value', 'metadata']);
    expect(table.numRows).toBe(3000);
    for (const i of [0, 1, 2, 3, 4, 1999, 2999]) {
      const row = table.get(i)!.toJSON() as Record<string, unknown>;
      const e = events[i]!;
      expect(row.timestamp).toBe(BigInt(e.timestamp)); // Int64 in the sealed batch
      expect(row.event_type).toBe(dec.decode(e.eventType));
      expect(row.user_id).toBe(e.userId);
      expect(row.value).toBe(e.value);
      expect(row.metadata).toBe(e.metadata ? dec.decode(e.metadata) : null);
    }
    expect(builder.seal()).toBeNull();
  });
});
