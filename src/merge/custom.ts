/**
 * Merge of `custom` partials: each shard ran an operator's plugin
 * (python/engine_polars/custom/<name>.py) and returned a DataFrame; the plugin's `MERGE` says how
 * the shards' frames combine:
 *   - `concat`: every shard's rows, shard by shard, each in the plugin's order; a column missing
 *     from one shard's frame is null there;
 *   - `sum` by `keys`: one row per distinct key tuple, every other column summed over the shards
 *     (nulls skipped; null when no shard had a value), sorted by the keys ascending (nulls last;
 *     numbers before booleans before strings; strings by code point = polars' UTF-8 byte order);
 *   - `top-n` by `keys`: summed as above, then ranked by `by` (`order`, nulls last), ties by the
 *     keys ascending, first `n` kept.
 * Sums of partial sums are exact for integers below 2^53; float sums can differ from a
 * single-pass sum in the last bits (summation order), like any distributed sum.
 */
import { decodePartial, type Column, type DecodedPartial } from './decode-partial.js';
import { compareCodePoints } from './topn.js';
import { defineMerge } from './merge-def.js';

export type Cell = string | number | boolean | null;
export type CustomRow = Record<string, Cell>;

export type CustomMergeRule =
  | { kind: 'concat' }
  | { kind: 'sum'; keys: string[] }
  | { kind: 'top-n'; keys: string[]; by: string; n: number; order: 'desc' | 'asc' };

export interface CustomSpec {
  name: string;
  merge: CustomMergeRule;
}

function typeRank(v: Cell): number {
  return typeof v === 'number' ? 0 : typeof v === 'boolean' ? 1 : 2;
}


/** Ascending, nulls last. */
export function compareCells(a: Cell, b: Cell): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  const ra = typeRank(a);
  const rb = typeRank(b);
  if (ra !== rb) return ra - rb;
  if (typeof a === 'string') return compareCodePoints(a, b as string);
  return a < b ? -1 : 1;
}

function compareKeyTuples(a: Cell[], b: Cell[]): number {
  for (let i = 0; i < a.length; i++) {
    const c = compareCells(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

function columnNames(parts: DecodedPartial[]): string[] {
  const names: string[] = [];
  for (const p of parts) for (const name of p.columns.keys()) if (!names.includes(name)) names.push(name);
  return names;
}

function concatRows(parts: DecodedPartial[]): CustomRow[] {
  const names = columnNames(parts);
  const rows: CustomRow[] = [];
  for (const p of parts) {
    const cols = names.map((n) => p.columns.get(n));
    for (let i = 0; i < p.rows; i++) {
      const row: CustomRow = {};
      names.forEach((n, c) => (row[n] = (cols[c]?.[i] ?? null) as Cell));
      rows.push(row);
    }
  }
  return rows;
}

interface SummedGroup {
  keys: Cell[];
  sums: Array<number | null>;
}

function sumByKeys(parts: DecodedPartial[], keys: string[], name: string): { values: string[]; groups: SummedGroup[] } {
  const values = columnNames(parts).filter((c) => !keys.includes(c));
  const groups = new Map<string, SummedGroup>();
  for (const p of parts) {
    const keyCols = keys.map((k) => {
      const col = p.columns.get(k);
      if (!col) throw new Error(`custom function \`${name}\`: a shard's partial has no key column \`${k}\``);
      return col;
    });
    const valueCols: Array<Column | undefined> = values.map((v) => p.columns.get(v));
    for (let i = 0; i < p.rows; i++) {
      const k = keyCols.map((c) => c[i] as Cell);
      const id = JSON.stringify(k);
      let g = groups.get(id);
      if (!g) groups.set(id, (g = { keys: k, sums: values.map(() => null) }));
      valueCols.forEach((col, j) => {
        const v = col?.[i] ?? null;
        if (v === null) return;
        if (typeof v !== 'number') throw new Error(`custom function \`${name}\`: column \`${values[j]}\` holds ${JSON.stringify(v)}; sum needs numbers`);
        g.sums[j] = (g.sums[j] ?? 0) + v;
      });
    }
  }
  return { values, groups: [...groups.values()] };
}

function toRow(keys: string[], values: string[], g: SummedGroup): CustomRow {
  const row: CustomRow = {};
  keys.forEach((k, i) => (row[k] = g.keys[i]!));
  values.forEach((v, i) => (row[v] = g.sums[i]!));
  return row;
}

/** Merges decoded partials by the plugin's rule. Pure. */
export function mergeCustomPartials(spec: CustomSpec, parts: DecodedPartial[]): CustomRow[] {
  const rule = spec.merge;
  if (rule.kind === 'concat') return concatRows(parts);
  const { values, groups } = sumByKeys(parts, rule.keys, spec.name);
  if (rule.kind === 'sum') {
    groups.sort((a, b) => compareKeyTuples(a.keys, b.keys));
    return groups.map((g) => toRow(rule.keys, values, g));
  }
  const at = values.indexOf(rule.by);
  const sign = rule.order === 'desc' ? -1 : 1;
  const score = (g: SummedGroup) => (at < 0 ? null : g.sums[at]!);
  groups.sort((a, b) => {
    const x = score(a);
    const y = score(b);
    if (x !== y) {
      if (x === null) return 1;
      if (y === null) return -1;
      return sign * (x < y ? -1 : 1);
    }
    return compareKeyTuples(a.keys, b.keys);
  });
  return groups.slice(0, rule.n).map((g) => toRow(rule.keys, values, g));
}

export function mergeCustomTask(spec: CustomSpec, partials: Uint8Array[]): { results: CustomRow[] } {
  return { results: mergeCustomPartials(spec, partials.map(decodePartial)) };
}

export default defineMerge('custom', mergeCustomTask);
