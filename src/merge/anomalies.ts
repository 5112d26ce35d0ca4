/**
 * Anomaly merges, one per phase of GET /query/anomalies.
 *
 * Phase `moments`: the shards' `aggregate` partials (moments of the column per group) are merged
 * with the aggregate merge (Chan's formula) into each group's mean and standard deviation,
 * sample (ddof = 1, pandas/polars' default) or population (ddof = 0). For phase 2 each shard gets
 * only the usable groups it holds, as an Arrow IPC body (`key` Utf8, `mean` Float64, `stddev`
 * Float64): by user that is its own users, never every group of the engine.
 *
 * Phase `events`: each shard sends its top `limit` events by |z| (with the same moments) and its
 * count of all anomalies. The global top `limit` by |z| is among the union of the shards' top
 * `limit` lists (a row beaten by `limit` rows on its own shard is beaten globally), and the count
 * is the sum of the shards' counts, so both are exact however `limit` truncates.
 * Order: |z| descending, then timestamp, user_id, event_type (code point order), z, metadata
 * ascending — the order every shard sorts by, so the per-shard cut agrees with the global one.
 */
import { aggregateGroupsFromPartial, compareKeys, mergeAggregateGroups } from './aggregate.js';
import { decodePartial, requireColumn } from './decode-partial.js';
import { compareCodePoints } from './topn.js';
import { Table, tableToIPC } from 'apache-arrow';
import { float64Vector, utf8Vector } from './arrow-build.js';
import { defineMerge } from './merge-def.js';

/** Mean and standard deviation of one usable group (stddev > 0), as phase 2 uses them. */
export interface GroupMomentsSpec {
  key: string | null;
  mean: number;
  stddev: number;
}

export interface AnomalyMomentsSpec {
  phase: 'moments';
  groupBy: string | null;
  column: string;
  ddof: 0 | 1;
}

export interface AnomalyEventsSpec {
  phase: 'events';
  groupBy: string | null;
  limit: number;
}

export type AnomaliesSpec = AnomalyMomentsSpec | AnomalyEventsSpec;

/** A group's moments as used for z-scores; `count` is its non-null values. */
export interface AnomalyGroupMoments {
  key: string | null;
  count: number;
  mean: number | null;
  stddev: number | null;
}

export interface AnomalyRow {
  timestamp: number;
  event_type: string;
  user_id: string;
  value: number;
  metadata?: unknown;
  z_score: number;
  [group: string]: unknown;
}

export interface AnomalyEvents {
  anomalies: AnomalyRow[];
  count: number;
}

/** Standard deviation from merged moments: √(M2 / (n − ddof)); null when n − ddof ≤ 0. */
export function stddevOf(count: number, m2: number, ddof: 0 | 1): number | null {
  return count - ddof > 0 ? Math.sqrt(Math.max(0, m2) / (count - ddof)) : null;
}

/** Phase 1: aggregate partials → every group with at least one value, sorted by key (null last). */
export function mergeAnomalyMoments(spec: AnomalyMomentsSpec, partials: Uint8Array[]): AnomalyGroupMoments[] {
  const aggSpec = { groupBy: spec.groupBy === null ? [] : [spec.groupBy], metrics: [spec.column] };
  const parts = partials.map((ipc) => aggregateGroupsFromPartial(decodePartial(ipc), aggSpec));
  const merged = mergeAggregateGroups(parts, 1).filter((g) => g.metrics[0]!.count > 0);
  merged.sort((a, b) => compareKeys(a.keys, b.keys));
  return merged.map((g) => {
    const m = g.metrics[0]!;
    return { key: g.keys[0] ?? null, count: m.count, mean: m.mean, stddev: stddevOf(m.count, m.m2, spec.ddof) };
  });
}

/** The groups that can have anomalies: at least two values and a positive standard deviation. */
export function usableGroups(groups: AnomalyGroupMoments[]): GroupMomentsSpec[] {
  const out: GroupMomentsSpec[] = [];
  for (const g of groups) {
    if (g.count >= 2 && g.mean !== null && g.stddev !== null && g.stddev > 0 && Number.isFinite(g.stddev)) {
      out.push({ key: g.key, mean: g.mean, stddev: g.stddev });
    }
  }
  return out;
}

interface RawRow {
  timestamp: number;
  event_type: string;
  user_id: string;
  value: number;
  metadata: string | null;
  z: number;
  group: string | null;
}

/** The anomaly order: |z| desc, timestamp, user_id, event_type, z, metadata (null last) asc. */
function compareRows(a: RawRow, b: RawRow): number {
  const za = Math.abs(a.z);
  const zb = Math.abs(b.z);
  if (za !== zb) return za > zb ? -1 : 1;
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  const u = compareCodePoints(a.user_id, b.user_id);
  if (u !== 0) return u;
  const e = compareCodePoints(a.event_type, b.event_type);
  if (e !== 0) return e;
  if (a.z !== b.z) return a.z < b.z ? -1 : 1;
  if (a.metadata === b.metadata) return 0;
  if (a.metadata === null) return 1;
  if (b.metadata === null) return -1;
  return compareCodePoints(a.metadata, b.metadata);
}

function parseMetadata(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Phase 2: anomaly partials → the global top `limit` by |z| and the exact count. */
export function mergeAnomalyEvents(spec: AnomalyEventsSpec, partials: Uint8Array[]): AnomalyEvents {
  const rows: RawRow[] = [];
  let count = 0;
  for (const ipc of partials) {
    const p = decodePartial(ipc);
    if (p.rows === 0) continue;
    const ts = requireColumn(p, 'timestamp');
    const et = requireColumn(p, 'event_type');
    const uid = requireColumn(p, 'user_id');
    const val = requireColumn(p, 'value');
    const meta = requireColumn(p, 'metadata');
    const z = requireColumn(p, 'z_score');
    const total = requireColumn(p, 'total');
    const group = spec.groupBy === null ? null : requireColumn(p, 'group_key');
    count += Number(total[0]);
    for (let i = 0; i < p.rows; i++) {
      rows.push({
        timestamp: Number(ts[i]),
        event_type: String(et[i]),
        user_id: String(uid[i]),
        value: Number(val[i]),
        metadata: meta[i] === null ? null : String(meta[i]),
        z: Number(z[i]),
        group: group === null || group[i] === null ? null : String(group[i]),
      });
    }
  }
  rows.sort(compareRows);
  const anomalies = rows.slice(0, spec.limit).map((r) => {
    const out: AnomalyRow = { timestamp: r.timestamp, event_type: r.event_type, user_id: r.user_id, value: r.value, z_score: r.z };
    if (r.metadata !== null) out.metadata = parseMetadata(r.metadata);
    if (spec.groupBy !== null) out[spec.groupBy] = r.group;
    return out;
  });
  return { anomalies, count };
}

/** The phase-2 body of one shard: the usable groups among `keys` as Arrow IPC (`key`, `mean`, `stddev`). */
export function groupMomentsBody(usable: ReadonlyMap<string | null, GroupMomentsSpec>, keys: Iterable<string | null>): Uint8Array {
  const picked: GroupMomentsSpec[] = [];
  for (const k of keys) {
    const g = usable.get(k);
    if (g) picked.push(g);
  }
  const table = new Table({
    key: utf8Vector(picked.map((g) => g.key)),
    mean: float64Vector(picked.map((g) => g.mean)),
    stddev: float64Vector(picked.map((g) => g.stddev)),
  });
  return tableToIPC(table, 'stream');
}

/** Phase 1 with the phase-2 bodies: every group's moments and, per shard, its usable groups. */
export interface AnomalyMomentsOut {
  groups: AnomalyGroupMoments[];
  /** Usable groups (≥ 2 values, stddev > 0) over all shards. */
  usable: number;
  /** Per shard, in shard order: the Arrow IPC body of its usable groups. */
  bodies: Uint8Array[];
}

export function mergeAnomalyMomentsWithBodies(spec: AnomalyMomentsSpec, partials: Uint8Array[]): AnomalyMomentsOut {
  const groups = mergeAnomalyMoments(spec, partials);
  const usable = new Map(usableGroups(groups).map((g) => [g.key, g]));
  const bodies = partials.map((ipc) => {
    if (spec.groupBy === null) return groupMomentsBody(usable, [null]);
    const p = decodePartial(ipc);
    return groupMomentsBody(usable, requireColumn(p, spec.groupBy).map((k) => (k === null ? null : String(k))));
  });
  return { groups, usable: usable.size, bodies };
}

/** Merge-pool entry for both phases. */
export function mergeAnomaliesTask(spec: AnomaliesSpec, partials: Uint8Array[]): AnomalyMomentsOut | AnomalyEvents {
  return spec.phase === 'moments' ? mergeAnomalyMomentsWithBodies(spec, partials) : mergeAnomalyEvents(spec, partials);
}

export default defineMerge('anomalies', mergeAnomaliesTask);
