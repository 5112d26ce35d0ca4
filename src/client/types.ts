/**
 * What the client sends and gets back. Request types come from the engine's own request schemas
 * (`z.input` of each kind's zod schema, exported by src/kinds/<kind>.ts), so a field the engine
 * renames or bounds differently fails the type-check here. Answer types follow each kind's docs
 * page (docs/api/); fields the docs leave open stay `unknown` rather than guessed.
 */
import type { AggregateInput } from '../kinds/aggregate.js';
import type { AnomaliesInput } from '../kinds/anomalies.js';
import type { CustomInput } from '../kinds/custom.js';
import type { ExportInput } from '../kinds/export.js';
import type { FunnelInput } from '../kinds/funnel.js';
import type { PercentilesInput } from '../kinds/percentiles.js';
import type { SummaryInput } from '../kinds/summary.js';
import type { TopNInput } from '../kinds/topn.js';
import type { WindowInput } from '../kinds/window.js';
import type { Table } from 'apache-arrow';

// ---- events ------------------------------------------------------------------------------------

/** One event as `POST /ingest/batch` takes it (docs/API.md "Events"). */
export interface TrackEvent {
  event_type: string;
  user_id: string;
  /** finite number, or null/absent */
  value?: number | null;
  /** epoch ms or ISO-8601 (a Date is sent as ISO-8601); absent: the engine's receive time */
  timestamp?: number | string | Date;
  /** a JSON object, at most 4 KiB serialized */
  metadata?: Record<string, unknown> | null;
}

/** The engine's answer to one accepted batch. */
export interface IngestAnswer {
  accepted: number;
  buffered: number;
  timestamp: string;
  latency?: number;
}

// ---- requests ----------------------------------------------------------------------------------

/** A query-string value: lists are sent comma-separated, dates as ISO-8601. */
export type QueryValue = string | number | boolean | Date | ReadonlyArray<string | number>;

/**
 * The parameters of a query-string kind: the schema's keys, each optional. Fields the schema
 * coerces from text (`unknown` on its input side) take any QueryValue; the others keep their type.
 */
export type QueryParams<T> = { [K in keyof T]?: unknown extends T[K] ? QueryValue : T[K] };

/** `format` is the method's: `aggregate` asks for JSON, `aggregateArrow` for Arrow. */
export type AggregateRequest = Omit<AggregateInput, 'format'>;
export type WindowRequest = WindowInput;
export type TopNRequest = TopNInput;
export type FunnelRequest = FunnelInput;
export type CustomRequest = CustomInput;
export type PercentilesParams = QueryParams<PercentilesInput>;
export type AnomaliesParams = QueryParams<AnomaliesInput>;
export type SummaryParams = QueryParams<SummaryInput>;
/** `format` is the method's: `export` reads NDJSON row by row, `exportArrow` Arrow batch by batch. */
export type ExportParams = Omit<QueryParams<ExportInput>, 'format'>;

// ---- answers -----------------------------------------------------------------------------------

/** Every query answer carries these. */
export interface Envelope {
  query_time_ms: number;
  timestamp: string;
}

/** A result row: its group keys and figures (names depend on the request; see docs/api/). */
export type Row = Record<string, string | number | null>;

/**
 * An answer written as Arrow: its rows decoded (apache-arrow: Int64 columns read as BigInt, Utf8
 * as strings, nulls as null), the Arrow IPC stream itself (for polars, pyarrow or a file), and
 * the envelope the engine sends in the headers `X-Query-Time-Ms` and `X-Timestamp`.
 */
export interface ArrowAnswer extends Envelope {
  table: Table;
  bytes: Uint8Array;
}

export interface AggregateAnswer extends Envelope {
  /** per group: the keys, `count`, and per metric m `m_count`, `m_sum`, `m_mean`, `m_min`, `m_max`, `m_stddev` */
  results: Array<Row & { count: number }>;
}

export interface WindowAnswer extends Envelope {
  /** per (window, group): `window_start`, `window_end`, the group, `<metric>_<aggFunc>` */
  results: Row[];
  [field: string]: unknown;
}

export interface PercentilesAnswer extends Envelope {
  column: string;
  /** values the percentiles are computed from (without groupBy) */
  count?: number;
  exact: boolean;
  /** without groupBy: `{p50, p95, p99, …}` (0.995 → `p99.5`) */
  percentiles?: Record<string, number | null>;
  /** with groupBy: one entry per group */
  results?: Array<Record<string, unknown> & { count: number; percentiles: Record<string, number | null> }>;
  [field: string]: unknown;
}

export interface TopNAnswer extends Envelope {
  /** `{<groupBy>: key, <metric>_<aggFunc>: score, count}`, best first */
  results: Array<Row & { count: number }>;
  [field: string]: unknown;
}

export interface AnomaliesAnswer extends Envelope {
  /** events with `z_score` */
  anomalies: Array<Record<string, unknown> & { z_score: number }>;
  /** all anomalies, also those past `limit` */
  count: number;
  [field: string]: unknown;
}

export interface FunnelStep {
  step: number;
  event_type: string;
  count: number;
  rate_from_start: number | null;
  rate_from_previous: number | null;
}

export interface FunnelAnswer extends Envelope {
  steps: FunnelStep[];
  /** the seed's shape */
  funnel: Array<{ step: number; event_type: string; count: number; percentage: number }>;
  total_users: number;
  window_ms: number | null;
  mode: 'ordered' | 'unordered';
}

export interface SummaryStats {
  count: number;
  column: string;
  null_count: number;
  value_count: number;
  mean: number | null;
  stddev: number | null;
  min: number | null;
  max: number | null;
  p25: number | null;
  p50: number | null;
  p75: number | null;
  distinct_users: number;
  distinct_event_types: number;
  first_timestamp: number | null;
  last_timestamp: number | null;
  rows_held: number;
  columns: Record<string, Record<string, number | null>>;
}

export interface SummaryAnswer extends Envelope {
  stats: SummaryStats;
}

export interface CustomListAnswer extends Envelope {
  /** the installed plugins: name, how their partials merge, their docstring */
  functions: Array<{ name: string; merge: Record<string, unknown>; doc: string }>;
  errors: Array<{ module: string; message: string }>;
}

export interface CustomAnswer extends Envelope {
  name: string;
  merge: unknown;
  results: Array<Record<string, unknown>>;
}

export interface DashboardAnswer extends Envelope {
  summary: SummaryStats;
  top_users: Array<{ user_id: string; count: number }>;
  top_events: Array<{ event_type: string; count: number }>;
  recent_windows: { window_ms: number; window_starts: number[]; rows: Array<Row & { window_start: number; event_type: string; count: number }> };
  ingestion: { total_events: number; throughput_per_second: number; rejected_events: number; buffered: number };
  shards: number;
}

/** One exported event, as ingested (`metadata` only when it had one). */
export interface ExportRow {
  timestamp: number;
  event_type: string;
  user_id: string;
  value: number | null;
  metadata?: Record<string, unknown>;
}
