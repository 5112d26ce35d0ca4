import { describe, expect, it } from 'vitest';
import { RecordBatchReader } from 'apache-arrow';
import { ColumnBuilder } from './column-builder.js';
import { BLOCK_MAX_BYTES, blockBytesAt, decodeBlock, encodeBlock, nextBlock, type BlockSource } from './ring-block.js';
import { RECORD_KIND_COLUMNS, decodeRecord, encodeRecord } from './ring-record.js';

const enc = new TextEncoder();

/** Block columns of `rows` rows: every string column laid out plainly. */
function source(rows: Array<{ ts: number; et: string; uid: string; value: number | null; meta: string | null }>): BlockSource {
  const col = (values: Array<string | null>) => {
    const parts = values.map((v) => enc.encode(v ?? ''));
    const data = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    const start = new Int32Array(values.length);
    const end = new Int32Array(values.length);
    let at = 0;
    parts.forEach((p, i) => {
      data.set(p, at);
      start[i] = at;
      at += p.length;
      end[i] = at;
    });
    return { data, start, end };
  };
  const bits = (ok: boolean[]) => {
    const b = new Uint8Array((ok.length + 7) >> 3);
    ok.forEach((v, i) => v && (b[i >> 3]! |= 1 << (i & 7)));
    return b;
  };
  return {
    timestamps: Float64Array.from(rows, (r) => r.ts),
    values: Float64Array.from(rows, (r) => r.value ?? 0),
    valueValid: bits(rows.map((r) => r.value !== null)),
    eventType: col(rows.map((r) => r.et)),
    userId: col(rows.map((r) => r.uid)),
    metadata: col(rows.map((r) => r.meta)),
    metadataValid: bits(rows.map((r) => r.meta !== null)),
  };
}

function sealedRows(ipc: Uint8Array): Array<Record<string, unknown>> {
  // timestamps are Int64 in a sealed batch (BigInt here): compared as numbers
  return [...RecordBatchReader.from(ipc)].flatMap((b) => b.toArray().map((r) => ({ ...r.toJSON(), timestamp: Number(r.timestamp) })));
}

describe('column blocks', () => {
  it('split a part into blocks under BLOCK_MAX_BYTES (a row with 4 KiB of metadata included), rows in order', () => {
    const rows = Array.from({ length: 3000 }, (_, i) => ({ ts: i, et: 'view', uid: `u${i}`, value: i % 3 ? i : null, meta: i % 50 === 0 ? `{"x":"${'y'.repeat(4000)}"}` : null }));
    const src = source(rows);
    const order = Uint32Array.from(rows.keys());
    const buf = new Uint8Array(4 << 20);
    const view = new DataView(buf.buffer);
    let len = 1;
    let blocks = 0;
    for (let from = 0; from < rows.length; blocks++) {
      const { to, strings } = nextBlock(src, order, from, rows.length);
      const bytes = blockBytesAt(buf, len, to - from, strings);
      expect(bytes).toBeLessThanOrEqual(BLOCK_MAX_BYTES);
      const end = encodeBlock(src, order, from, to, strings, buf, view, len);
      expect(end - len).toBe(bytes);
      len = end;
      from = to;
    }
    expect(blocks).toBeGreaterThan(1);
    const b = new ColumnBuilder();
    for (let off = 1; off < len; ) {
      const rec = decodeRecord(view, off, len)!;
      expect(rec.kind).toBe(RECORD_KIND_COLUMNS);
      b.appendBlock(buf, decodeBlock(view, off, rec.body));
      off = rec.next;
    }
    expect(sealedRows(b.seal()!.ipc)).toEqual(rows.map((r) => ({ timestamp: r.ts, event_type: r.et, user_id: r.uid, value: r.value, metadata: r.meta })));
  });

  it('mix with single-event records in one batch, and a builder reused after sealing leaves the earlier batch intact', () => {
    const buf = new Uint8Array(1 << 16);
    const view = new DataView(buf.buffer);
    const rows = [
      { ts: 1, et: 'a', uid: 'u1', value: 1, meta: '{"k":1}' },
      { ts: 2, et: 'b', uid: 'u2', value: null, meta: null },
    ];
    let len = encodeRecord({ timestamp: 0, value: null, eventType: enc.encode('single'), userId: '', metadata: null }, enc.encode('u0'), buf, view, 0);
    const { to, strings } = nextBlock(source(rows), Uint32Array.of(0, 1), 0, 2);
    len = encodeBlock(source(rows), Uint32Array.of(0, 1), 0, to, strings, buf, view, len);
    len = encodeRecord({ timestamp: 3, value: 3, eventType: enc.encode('single'), userId: '', metadata: enc.encode('{}') }, enc.encode('u3'), buf, view, len);
    const b = new ColumnBuilder();
    const fill = () => {
      for (let off = 0; off < len; ) {
        const rec = decodeRecord(view, off, len)!;
        if (rec.kind === RECORD_KIND_COLUMNS) b.appendBlock(buf, decodeBlock(view, off, rec.body));
        else b.append(buf, rec);
        off = rec.next;
      }
    };
    fill();
    const first = b.seal()!.ipc;
    const expected = [
      { timestamp: 0, event_type: 'single', user_id: 'u0', value: null, metadata: null },
      { timestamp: 1, event_type: 'a', user_id: 'u1', value: 1, metadata: '{"k":1}' },
      { timestamp: 2, event_type: 'b', user_id: 'u2', value: null, metadata: null },
      { timestamp: 3, event_type: 'single', user_id: 'u3', value: 3, metadata: '{}' },
    ];
    expect(sealedRows(first)).toEqual(expected);
    // refill with other bytes: the first batch must not change (its columns were views when sealed)
    buf.fill(0x7a, len, len + 10);
    fill();
    fill();
    expect(sealedRows(b.seal()!.ipc)).toHaveLength(8);
    expect(sealedRows(first)).toEqual(expected);
  });
});
