/**
 * Cross-check of two systems' answers: keys, counts and names exactly, floats to a relative
 * tolerance (1e-9: the systems add in different orders, so sums and moments may differ in the
 * last bits, never more on these data).
 */
import { fieldsOf, type Answer, type AnswerSpec, type Cell, type Row, type SectionSpec } from './answer.js';

export const FLOAT_TOLERANCE = 1e-9;

export interface Mismatch {
  section: string;
  /** Where: `groups[event_type=purchase]`, `top[3]`. */
  at: string;
  field: string;
  a: Cell | '(missing row)';
  b: Cell | '(missing row)';
  /** Relative difference, for two finite floats. */
  rel?: number;
}

export function floatsAgree(a: number, b: number, tolerance = FLOAT_TOLERANCE): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= tolerance * Math.max(Math.abs(a), Math.abs(b));
}

function describeKey(row: Row, key: readonly string[]): string {
  return key.map((k) => `${k}=${row[k]}`).join(',');
}

function compareRows(section: string, at: string, spec: SectionSpec, a: Row, b: Row, out: Mismatch[]): void {
  for (const f of [...spec.key, ...spec.exact]) {
    if (a[f] !== b[f]) out.push({ section, at, field: f, a: a[f] ?? null, b: b[f] ?? null });
  }
  for (const f of spec.float) {
    const x = a[f] ?? null;
    const y = b[f] ?? null;
    if (x === null || y === null || typeof x !== 'number' || typeof y !== 'number') {
      if (x !== y) out.push({ section, at, field: f, a: x, b: y });
    } else if (!floatsAgree(x, y)) {
      out.push({ section, at, field: f, a: x, b: y, rel: Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y)) });
    }
  }
}

/**
 * Every difference between answers `a` and `b` under `spec`. Ordered sections are compared row by
 * row; unordered ones are matched on their key fields, so a missing or extra group is named once
 * instead of shifting every row after it.
 */
export function compareAnswers(spec: AnswerSpec, a: Answer, b: Answer): Mismatch[] {
  const out: Mismatch[] = [];
  for (const [section, s] of Object.entries(spec)) {
    const ra = a[section] ?? [];
    const rb = b[section] ?? [];
    if (s.ordered || s.key.length === 0) {
      if (ra.length !== rb.length) out.push({ section, at: `${section}.length`, field: 'rows', a: ra.length, b: rb.length });
      for (let i = 0; i < Math.min(ra.length, rb.length); i++) compareRows(section, `${section}[${i}]`, s, ra[i]!, rb[i]!, out);
      continue;
    }
    const keyOf = (r: Row) => JSON.stringify(s.key.map((k) => r[k] ?? null));
    const mb = new Map(rb.map((r) => [keyOf(r), r]));
    const seen = new Set<string>();
    for (const r of ra) {
      const k = keyOf(r);
      seen.add(k);
      const other = mb.get(k);
      const at = `${section}[${describeKey(r, s.key)}]`;
      if (!other) out.push({ section, at, field: '(row)', a: 'present', b: '(missing row)' });
      else compareRows(section, at, s, r, other, out);
    }
    for (const r of rb) {
      if (!seen.has(keyOf(r))) out.push({ section, at: `${section}[${describeKey(r, s.key)}]`, field: '(row)', a: '(missing row)', b: 'present' });
    }
  }
  return out;
}

/** Checks a spec's field lists cover what the answers carry (a typo would silently skip a field). */
export function assertFields(spec: AnswerSpec, answer: Answer, system: string): void {
  for (const [section, s] of Object.entries(spec)) {
    const rows = answer[section];
    if (!rows) throw new Error(`${system}: answer has no section \`${section}\``);
    const want = fieldsOf(s);
    for (const r of rows.slice(0, 1)) {
      const missing = want.filter((f) => !(f in r));
      if (missing.length) throw new Error(`${system}: section \`${section}\` rows lack ${missing.join(', ')}`);
    }
  }
}
