/**
 * Summary merge (GET /query/summary; the plans and partial schema are in
 * src/kinds/summary.ts). The partials arrive plan-major: `shards` summary partials, then
 * `shards` event-type partials (aggregate by `event_type`), then `shards` digest partials per
 * column.
 *
 * - counts, null counts, rows held: sums (exact);
 * - mean, stddev (population, ddof 0), min, max: Chan's merge of (count, mean, M2) (src/merge/moments.ts);
 * - distinct users: the sum of per-shard distinct counts — exact, because a user lives on exactly one shard;
 * - distinct event types: the size of the union of the shards' sets (exact);
 * - first/last timestamp: min/max (exact);
 * - p25/p50/p75: the shards' t-digests merged with `mergeDigests` (error: docs/TDIGEST.md).
 */
import { decodePartial, requireColumn, type DecodedPartial } from './decode-partial.js';
import { emptyMoments, finishMoments, mergeMoments, type Moments, type NonFinite } from './moments.js';
import { mergePercentiles } from './percentiles.js';
import { defineMerge } from './merge-def.js';

/** The quartiles every summary reports. */
export const SUMMARY_QUARTILES = [0.25, 0.5, 0.75];

export interface SummarySpec {
  columns: string[];
  /** Partials per plan (the shard count). */
  shards: number;
}

export interface ColumnStats {
  /** Non-null values of the column among the matching events. */
  count: number;
  null_count: number;
  mean: number | NonFinite | null;
  /** Population standard deviation (ddof 0). */
  stddev: number | NonFinite | null;
  min: number | null;
  max: number | null;
  p25: number | null;
  p50: number | null;
  p75: number | null;
}

/** The first column's stats at the top level (seed shape), with `count` meaning events. */
export interface SummaryStats extends Omit<ColumnStats, 'count'> {
  /** Events matching the filter. */
  count: number;
  /** The column the top-level column fields describe (the first named). */
  column: string;
  /** Non-null values of `column`. */
  value_count: number;
  distinct_users: number;
  distinct_event_types: number;
  first_timestamp: number | null;
  last_timestamp: number | null;
  /** Events held by the engine, unfiltered. */
  rows_held: number;
  columns: Record<string, ColumnStats>;
}

const num = (c: Array<number | string | null>, i = 0): number => Number(c[i] ?? 0);

function momentsOfPartial(p: DecodedPartial, c: string): Moments {
  const count = num(requireColumn(p, `${c}__count`));
  if (count === 0) return emptyMoments();
  const get = (m: string) => num(requireColumn(p, `${c}__${m}`));
  return { count, sum: get('sum'), min: get('min'), max: get('max'), mean: get('mean'), m2: get('m2') };
}

export function mergeSummary(spec: SummarySpec, summaries: DecodedPartial[], eventTypes: DecodedPartial[], digests: DecodedPartial[][]): SummaryStats {
  let count = 0;
  let rowsHeld = 0;
  let distinctUsers = 0;
  let first: number | null = null;
  let last: number | null = null;
  const moments = spec.columns.map(() => emptyMoments());
  const nulls = spec.columns.map(() => 0);
  for (const p of summaries) {
    count += num(requireColumn(p, 'count'));
    rowsHeld += num(requireColumn(p, 'rows_held'));
    distinctUsers += num(requireColumn(p, 'distinct_users'));
    const f = requireColumn(p, 'first_timestamp')[0];
    const l = requireColumn(p, 'last_timestamp')[0];
    if (f !== null && f !== undefined && (first === null || Number(f) < first)) first = Number(f);
    if (l !== null && l !== undefined && (last === null || Number(l) > last)) last = Number(l);
    spec.columns.forEach((c, j) => {
      mergeMoments(moments[j]!, momentsOfPartial(p, c));
      nulls[j]! += num(requireColumn(p, `${c}__null_count`));
    });
  }
  const types = new Set<string>();
  for (const p of eventTypes) {
    for (const t of requireColumn(p, 'event_type')) if (t !== null) types.add(String(t));
  }
  const columns: Record<string, ColumnStats> = {};
  spec.columns.forEach((c, j) => {
    const m = finishMoments(moments[j]!);
    const [q] = mergePercentiles({ groupBy: null, exact: false, percentiles: SUMMARY_QUARTILES }, digests[j] ?? []);
    columns[c] = {
      count: m.count,
      null_count: nulls[j]!,
      mean: m.mean,
      stddev: m.stddev,
      min: m.min,
      max: m.max,
      p25: q!.percentiles.p25 ?? null,
      p50: q!.percentiles.p50 ?? null,
      p75: q!.percentiles.p75 ?? null,
    };
  });
  const { count: valueCount, ...head } = columns[spec.columns[0]!]!;
  return {
    count,
    column: spec.columns[0]!,
    ...head,
    value_count: valueCount,
    distinct_users: distinctUsers,
    distinct_event_types: types.size,
    first_timestamp: first,
    last_timestamp: last,
    rows_held: rowsHeld,
    columns,
  };
}

export function mergeSummaryTask(spec: SummarySpec, partials: Uint8Array[]): SummaryStats {
  const expected = (2 + spec.columns.length) * spec.shards;
  if (partials.length !== expected) throw new Error(`expected ${expected} summary partials, got ${partials.length}`);
  const decoded = partials.map(decodePartial);
  const at = (plan: number) => decoded.slice(plan * spec.shards, (plan + 1) * spec.shards);
  return mergeSummary(spec, at(0), at(1), spec.columns.map((_, j) => at(2 + j)));
}

/**
 * Inline up to 256 KB: the bytes are mostly digest centroids (40 bytes each), cheap to merge. A
 * shard of 5,000,000 rows sends ~33 KB of them (one digest per segment and big open chunk), so
 * at 10 M events the two shards' summary partials (~72 KB) went to the pool: merged inline in
 * ~1.4 ms (warm), where the hop to a pool thread waits for a core on a busy box.
 */
export default defineMerge('summary', mergeSummaryTask, { inlineBytes: 256 * 1024 });
