/**
 * Export pages → response bytes. Not a merge across shards (an export streams shard by shard,
 * page by page) but the same kind of pure, CPU-bound work, so it runs in the merge pool: the
 * HTTP thread only moves bytes.
 *
 * NDJSON: one line per event, fields as ingested: `timestamp` (epoch ms), `event_type`,
 * `user_id`, `value` (null when null or absent), and `metadata` (the object) when present.
 *
 * Arrow: pages are Arrow IPC streams with identical schemas (schema message, record batches, end
 * marker). The response is one stream: the first page's schema message once, then every page's
 * record-batch messages, then one end-of-stream marker; the schema of every page is checked to be
 * the same bytes. polars writes strings as `LargeUtf8` (64-bit offsets) and the export's documented
 * schema says `Utf8`, so a page with LargeUtf8 columns is re-written with 32-bit offsets over the
 * same string bytes (no string is decoded); a page already in `Utf8` is spliced as the shard wrote it.
 */
import { Field, RecordBatch, Schema, Struct, Table, Type, Utf8, makeData, tableFromIPC, tableToIPC, type Data, type LargeUtf8 } from 'apache-arrow';
import { utf8DataFromLarge } from './arrow-build.js';
import { decodePartial, requireColumn } from './decode-partial.js';
import { defineMerge } from './merge-def.js';

export type ExportFormat = 'ndjson' | 'arrow';

export interface ExportSpec {
  format: ExportFormat;
}

export interface ExportPageOut {
  /** NDJSON lines, or the page's Arrow record-batch messages (no schema, no end marker). */
  bytes: Uint8Array;
  /** Arrow only: the page's schema message. */
  schema?: Uint8Array;
  rows: number;
  /** Timestamp of the last event, and how many of the page's events share it (at its end). */
  last: number | null;
  lastRun: number;
}

/** The Arrow IPC end-of-stream marker: continuation word then a zero metadata length. */
export const ARROW_EOS = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/** Splits one IPC stream into its schema message and the messages between it and the end marker. */
export function splitIpcStream(ipc: Uint8Array): { schema: Uint8Array; batches: Uint8Array } {
  const view = new DataView(ipc.buffer, ipc.byteOffset, ipc.byteLength);
  if (ipc.byteLength < 16 || view.getUint32(0, true) !== 0xffffffff) {
    throw new Error(`export page: expected an Arrow IPC stream starting with a continuation marker, got ${ipc.byteLength} bytes`);
  }
  // The schema message has no body: continuation, metadata length (padded), metadata.
  const schemaEnd = 8 + view.getInt32(4, true);
  const end = ipc.byteLength - 8;
  if (schemaEnd > end || view.getUint32(end, true) !== 0xffffffff || view.getInt32(end + 4, true) !== 0) {
    throw new Error(`export page: expected a schema message and an end-of-stream marker in ${ipc.byteLength} bytes`);
  }
  return { schema: ipc.subarray(0, schemaEnd), batches: ipc.subarray(schemaEnd, end) };
}

/** The page with its `LargeUtf8` columns as `Utf8`, or null when it has none. */
export function withUtf8Strings(table: Table): Table | null {
  const fields = table.schema.fields;
  if (!fields.some((f) => f.typeId === Type.LargeUtf8)) return null;
  const schema = new Schema(
    fields.map((f) => (f.typeId === Type.LargeUtf8 ? new Field(f.name, new Utf8(), f.nullable, f.metadata) : f)),
    table.schema.metadata,
  );
  const batches = table.batches.map((batch) => {
    const children = batch.data.children.map((c) => (c.typeId === Type.LargeUtf8 ? utf8DataFromLarge(c as Data<LargeUtf8>) : c));
    return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: batch.numRows, nullCount: 0, children }));
  });
  return new Table(schema, batches);
}

function tail(timestamps: Array<number | string | null>): { last: number | null; lastRun: number } {
  const n = timestamps.length;
  if (n === 0) return { last: null, lastRun: 0 };
  const last = timestamps[n - 1] as number;
  let run = 1;
  while (run < n && timestamps[n - 1 - run] === last) run++;
  return { last, lastRun: run };
}

const encoder = new TextEncoder();

/** One page as NDJSON lines (metadata text is the JSON the ingest router serialized). */
export function ndjsonLines(ipc: Uint8Array): { text: string; rows: number; timestamps: Array<number | string | null> } {
  const p = decodePartial(ipc);
  const ts = requireColumn(p, 'timestamp');
  const type = requireColumn(p, 'event_type');
  const user = requireColumn(p, 'user_id');
  const value = requireColumn(p, 'value');
  const meta = requireColumn(p, 'metadata');
  const lines: string[] = new Array(p.rows);
  for (let i = 0; i < p.rows; i++) {
    const v = value[i];
    const m = meta[i];
    lines[i] =
      `{"timestamp":${ts[i] as number},"event_type":${JSON.stringify(type[i])},"user_id":${JSON.stringify(user[i])},` +
      `"value":${v === null ? 'null' : JSON.stringify(v)}${m === null ? '' : `,"metadata":${m as string}`}}\n`;
  }
  return { text: lines.join(''), rows: p.rows, timestamps: ts };
}

export function exportPage(format: ExportFormat, ipc: Uint8Array): ExportPageOut {
  if (format === 'ndjson') {
    const { text, rows, timestamps } = ndjsonLines(ipc);
    return { bytes: encoder.encode(text), rows, ...tail(timestamps) };
  }
  const asWritten = splitIpcStream(ipc);
  // Only the cursor is needed from the rows: read the timestamp column's tail, decode nothing else.
  const table = tableFromIPC(ipc);
  const plain = withUtf8Strings(table);
  const { schema, batches } = plain ? splitIpcStream(tableToIPC(plain, 'stream')) : asWritten;
  const column = table.getChild('timestamp');
  if (!column) throw new Error('export page is missing column `timestamp`');
  const n = table.numRows;
  const at = (i: number) => Number(column.get(i) as bigint | number);
  if (n === 0) return { bytes: batches, schema, rows: 0, last: null, lastRun: 0 };
  const last = at(n - 1);
  let run = 1;
  while (run < n && at(n - 1 - run) === last) run++;
  return { bytes: batches, schema, rows: n, last, lastRun: run };
}

/** Merge-pool entry: one page of one shard (`partials` holds exactly one page). */
export function mergeExportTask(spec: ExportSpec, partials: Uint8Array[]): ExportPageOut {
  if (partials.length !== 1) throw new Error(`export: expected one page per task, got ${partials.length}`);
  const out = exportPage(spec.format, partials[0]!);
  // Copies so the result does not pin (or clone) the whole transferred page buffer.
  return { ...out, bytes: out.bytes.slice(), ...(out.schema ? { schema: out.schema.slice() } : {}) };
}

export default defineMerge('export', mergeExportTask);
