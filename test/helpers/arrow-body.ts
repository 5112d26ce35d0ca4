/**
 * Builds POST /ingest/arrow bodies (Arrow IPC streams) from plain events with apache-arrow, in
 * the layouts clients send: plain, large or dictionary strings; timestamps as Int64 or any
 * Timestamp unit; optional columns left out; several record batches.
 */
import {
  Dictionary,
  Float64,
  Int32,
  Int64,
  LargeUtf8,
  RecordBatch,
  RecordBatchStreamWriter,
  Table,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
  Utf8,
  makeData,
  makeVector,
  vectorFromArray,
  type DataType,
  type Vector,
} from 'apache-arrow';

export interface ArrowEvent {
  /** epoch ms */
  timestamp: number;
  event_type: string;
  user_id: string;
  value?: number | null;
  /** JSON object text */
  metadata?: string | null;
}

export interface ArrowBodyOptions {
  /** Int64 epoch ms (default), or a Timestamp unit (values scaled from ms) */
  timestamp?: 'int64' | 's' | 'ms' | 'us' | 'ns';
  /** string layout of event_type, user_id and metadata (default utf8) */
  strings?: 'utf8' | 'large' | 'dict';
  /** leave these columns out */
  omit?: Array<'timestamp' | 'event_type' | 'user_id' | 'value' | 'metadata'>;
  /** extra or replacing columns, as vectors */
  columns?: Record<string, Vector>;
  /** rows per record batch (default: all in one) */
  batchRows?: number;
}

const SCALE = { s: 1n / 1000n, ms: 1n, us: 1000n, ns: 1_000_000n } as const;

function stringType(layout: ArrowBodyOptions['strings']): DataType {
  if (layout === 'large') return new LargeUtf8();
  if (layout === 'dict') return new Dictionary(new Utf8(), new Int32());
  return new Utf8();
}

function timestampVector(events: ArrowEvent[], unit: NonNullable<ArrowBodyOptions['timestamp']>): Vector {
  const raw = BigInt64Array.from(events, (e) => (unit === 's' ? BigInt(Math.floor(e.timestamp / 1000)) : unit === 'int64' ? BigInt(e.timestamp) : BigInt(e.timestamp) * SCALE[unit]));
  const type = unit === 'int64' ? new Int64() : unit === 's' ? new TimestampSecond() : unit === 'ms' ? new TimestampMillisecond() : unit === 'us' ? new TimestampMicrosecond() : new TimestampNanosecond();
  return makeVector(makeData({ type, length: raw.length, nullCount: 0, data: raw } as never));
}

export function arrowTable(events: ArrowEvent[], opts: ArrowBodyOptions = {}): Table {
  const omit = new Set(opts.omit ?? []);
  // a fresh type per column: each dictionary column needs its own dictionary id
  const strings = () => stringType(opts.strings);
  const cols: Record<string, Vector> = {};
  if (!omit.has('timestamp')) cols.timestamp = timestampVector(events, opts.timestamp ?? 'int64');
  if (!omit.has('event_type')) cols.event_type = vectorFromArray(events.map((e) => e.event_type), strings());
  if (!omit.has('user_id')) cols.user_id = vectorFromArray(events.map((e) => e.user_id), strings());
  if (!omit.has('value')) cols.value = vectorFromArray(events.map((e) => e.value ?? null), new Float64());
  if (!omit.has('metadata')) cols.metadata = vectorFromArray(events.map((e) => e.metadata ?? null), strings());
  Object.assign(cols, opts.columns ?? {});
  return new Table(cols);
}

/** The events as an Arrow IPC stream body. */
export function arrowBody(events: ArrowEvent[], opts: ArrowBodyOptions = {}): Uint8Array {
  const table = arrowTable(events, opts);
  const per = opts.batchRows ?? Math.max(1, events.length);
  const batches: RecordBatch[] = [];
  for (let i = 0; i < table.numRows; i += per) batches.push(...table.slice(i, i + per).batches);
  return RecordBatchStreamWriter.writeAll(batches.length > 0 ? batches : table.batches).toUint8Array(true);
}
