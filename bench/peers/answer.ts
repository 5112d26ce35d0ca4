/**
 * The common shape every system's answer is brought to before it is compared: named sections of
 * rows of plain cells, and per section which fields identify a row, which must be equal and which
 * are floats compared to a relative tolerance.
 */
import { tableFromIPC } from 'apache-arrow';

export type Cell = string | number | null;
export type Row = Record<string, Cell>;
/** Section name → rows. */
export type Answer = Record<string, Row[]>;

export interface SectionSpec {
  /** Fields that identify a row (exact). Unordered sections are aligned on them. */
  key: readonly string[];
  /** Other fields that must be equal: counts, timestamps, names. */
  exact: readonly string[];
  /** Floating-point fields, equal to within the relative tolerance. */
  float: readonly string[];
  /** Whether the row order is part of the answer (top-N, anomalies) or not (group-bys). */
  ordered: boolean;
}

export type AnswerSpec = Record<string, SectionSpec>;

/** A cell as a plain value: DuckDB's BIGINT arrives as bigint, absent fields as undefined. */
export function cell(v: unknown): Cell {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number' || typeof v === 'string') return v;
  throw new Error(`expected a string, a number or null, got ${typeof v}: ${JSON.stringify(v)}`);
}

/** The named fields of each row, as cells (a missing field is null). */
export function pick(rows: ReadonlyArray<Record<string, unknown>>, fields: readonly string[]): Row[] {
  return rows.map((r) => Object.fromEntries(fields.map((f) => [f, cell(r[f])])));
}

/** The fields a section's rows carry, key first. */
export function fieldsOf(spec: SectionSpec): string[] {
  return [...spec.key, ...spec.exact, ...spec.float];
}

/** Code-point order for strings (the engine's documented order), numbers numerically, null last. */
export function compareCells(a: Cell, b: Cell): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const x = String(a);
  const y = String(b);
  // UTF-16 code unit order differs from code point order only past the BMP; compare code points.
  const xs = [...x];
  const ys = [...y];
  for (let i = 0; i < Math.min(xs.length, ys.length); i++) {
    const d = xs[i]!.codePointAt(0)! - ys[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return xs.length - ys.length;
}

/** Rows sorted by the given key fields (a copy). */
export function sortByKey(rows: readonly Row[], key: readonly string[]): Row[] {
  return [...rows].sort((a, b) => {
    for (const k of key) {
      const d = compareCells(a[k]!, b[k]!);
      if (d !== 0) return d;
    }
    return 0;
  });
}

/** An Arrow answer's rows as plain objects (Int64 as numbers, nulls as null), column by column. */
export function arrowRows(bytes: Uint8Array): Array<Record<string, Cell>> {
  const table = tableFromIPC(bytes);
  const rows: Array<Record<string, Cell>> = Array.from({ length: table.numRows }, () => ({}));
  for (const field of table.schema.fields) {
    let i = 0;
    for (const v of table.getChild(field.name)!) rows[i++]![field.name] = cell(v);
  }
  return rows;
}
