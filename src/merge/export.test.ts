import { Float64, Int64, LargeUtf8, Table, Type, Utf8, tableFromIPC, tableToIPC, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { rng } from '../../test/helpers/random-events.js';
import { ARROW_EOS, exportPage, mergeExportTask, splitIpcStream } from './export.js';

interface Ev {
  timestamp: number;
  event_type: string;
  user_id: string;
  value: number | null;
  metadata: string | null;
}

/**
 * A page with the event columns (python/engine_polars/ops/export.py); polars writes its strings
 * as LargeUtf8.
 */
function page(events: Ev[], strings: () => Utf8 | LargeUtf8 = () => new Utf8()): Uint8Array {
  return tableToIPC(
    new Table({
      timestamp: vectorFromArray(events.map((e) => BigInt(e.timestamp)), new Int64()),
      event_type: vectorFromArray(events.map((e) => e.event_type), strings()),
      user_id: vectorFromArray(events.map((e) => e.user_id), strings()),
      value: vectorFromArray(events.map((e) => e.value), new Float64()),
      metadata: vectorFromArray(events.map((e) => e.metadata), strings()),
    }),
    'stream',
  );
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

function randomEvents(r: () => number, n: number): Ev[] {
  return Array.from({ length: n }, (_, i) => ({
    timestamp: 1_767_225_600_000 + Math.floor(r() * 50),
    event_type: ['page_view', 'click', 'ünï "q"'][Math.floor(r() * 3)]!,
    user_id: `user-${Math.floor(r() * 10)}`,
    value: r() < 0.3 ? null : Math.round(r() * 1e4) / 100 - 20,
    metadata: r() < 0.5 ? null : JSON.stringify({ plan: r() < 0.5 ? 'free' : 'pro', i }),
  })).sort((a, b) => a.timestamp - b.timestamp);
}

describe('export pages', () => {
  it('writes NDJSON lines with the fields as ingested', () => {
    const events = randomEvents(rng(3), 200);
    const out = exportPage('ndjson', page(events));
    const lines = new TextDecoder().decode(out.bytes).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l))).toEqual(
      events.map((e) => ({ timestamp: e.timestamp, event_type: e.event_type, user_id: e.user_id, value: e.value, ...(e.metadata ? { metadata: JSON.parse(e.metadata) } : {}) })),
    );
    expect(out.rows).toBe(200);
  });

  it('reports the last timestamp and how many events at the end share it', () => {
    const base = { event_type: 'a', user_id: 'u', value: null, metadata: null };
    const ts = [1, 2, 2, 5, 5, 5];
    for (const format of ['ndjson', 'arrow'] as const) {
      const out = exportPage(format, page(ts.map((timestamp) => ({ ...base, timestamp }))));
      expect([out.last, out.lastRun, out.rows]).toEqual([5, 3, 6]);
      expect(exportPage(format, page([])).last).toBeNull();
    }
  });

  it.each([
    ['Utf8', () => new Utf8()],
    ['LargeUtf8 (as polars writes them)', () => new LargeUtf8()],
  ])('splices pages with %s strings into one Arrow stream with Utf8 strings, equal to their concatenation', (_what, strings) => {
    const r = rng(9);
    const pages = [randomEvents(r, 50), [], randomEvents(r, 1), randomEvents(r, 300)];
    const parts = pages.map((p) => mergeExportTask({ format: 'arrow' }, [page(p, strings)]));
    const schema = parts[0]!.schema!;
    for (const p of parts) expect(Buffer.compare(p.schema!, schema)).toBe(0);
    const table = tableFromIPC(concat([schema, ...parts.map((p) => p.bytes), ARROW_EOS]));
    expect(table.schema.fields.map((f) => [f.name, f.typeId])).toEqual([
      ['timestamp', Type.Int],
      ['event_type', Type.Utf8],
      ['user_id', Type.Utf8],
      ['value', Type.Float],
      ['metadata', Type.Utf8],
    ]);
    const all = pages.flat();
    expect(table.numRows).toBe(all.length);
    const got = table.toArray().map((row) => {
      const o = row.toJSON();
      return { ...o, timestamp: Number(o.timestamp) };
    });
    expect(got).toEqual(all);
  });

  it('passes a page already in Utf8 through as the bytes the shard wrote', () => {
    const ipc = page(randomEvents(rng(4), 20));
    const { schema, bytes } = exportPage('arrow', ipc);
    expect(Buffer.compare(concat([schema!, bytes, ARROW_EOS]), ipc)).toBe(0);
  });

  it('rejects bytes that are not an IPC stream', () => {
    expect(() => splitIpcStream(new Uint8Array(20))).toThrow(/continuation marker/);
    const ipc = page(randomEvents(rng(1), 3));
    expect(() => splitIpcStream(ipc.subarray(0, ipc.byteLength - 8))).toThrow(/end-of-stream/);
  });
});
