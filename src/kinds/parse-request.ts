/**
 * Runs a kind's schema over the raw input and turns zod's issues into one RequestError whose
 * message names the first bad field with expected vs actual, and whose `problems` list the rest
 * (at most MAX_REPORTED). Pure.
 */
import { z } from 'zod';
import { RequestError, invalidField, type FieldProblem } from './request-error.js';

const MAX_REPORTED = 20;

/** `['filter', 'user_id', 3]` → `filter.user_id[3]`; the empty path is the body itself. */
export function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out === '' ? '(body)' : out;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return `${typeof v} ${String(v)}`;
}

function reasonOf(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type':
      return input === undefined ? 'required' : `expected ${issue.expected}, got ${describe(input)}`;
    case 'too_big':
    case 'too_small': {
      // A bound with its own message (e.g. naming the config key) keeps it.
      if (!/^Too (big|small)/.test(issue.message)) return issue.message;
      const bound = issue.code === 'too_big' ? `at most ${String(issue.maximum)}` : `at least ${String(issue.minimum)}`;
      const limit = Number(issue.code === 'too_big' ? issue.maximum : issue.minimum);
      const unit = issue.origin === 'array' ? ['entry', 'entries'] : issue.origin === 'string' ? ['character', 'characters'] : null;
      const size = Array.isArray(input) ? input.length : typeof input === 'string' ? input.length : null;
      const of = (n: number) => (unit ? ` ${n === 1 ? unit[0] : unit[1]}` : '');
      return `expected ${bound}${of(limit)}, got ${size === null ? describe(input) : `${size}${of(size)}`}`;
    }
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describe(input)}`;
    default:
      return issue.message;
  }
}

/**
 * A field that takes several forms (a name or a list of names) fails as a union: report the issue
 * of the form the input was closest to — the branch that got past the input's type — at its own
 * path (so `groupBy: ["x"]` names `groupBy[0]`, not `groupBy`).
 */
function closest(issue: z.core.$ZodIssue): { path: PropertyKey[]; issue: z.core.$ZodIssue } {
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return { path: [...issue.path], issue };
  // Deeper is closer; at the same depth a bound or a custom check beats "not this type".
  const shapeOnly = new Set(['invalid_type', 'invalid_value', 'invalid_union']);
  const score = (branch: z.core.$ZodIssue[]) => (branch[0] ? branch[0].path.length * 10 + (shapeOnly.has(branch[0].code) ? 0 : 1) : -1);
  let best = issue.errors[0]!;
  for (const branch of issue.errors) if (score(branch) > score(best)) best = branch;
  if (!best[0]) return { path: [...issue.path], issue };
  const inner = closest(best[0]);
  return { path: [...issue.path, ...inner.path], issue: inner.issue };
}

/** The problems of a failed parse, unknown keys reported one per key. */
export function problemsOf(error: z.ZodError, allowedTopLevel?: readonly string[]): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const allowed = issue.path.length === 0 && allowedTopLevel ? `; allowed: ${allowedTopLevel.join(', ')}` : '';
      for (const key of issue.keys) out.push({ field: fieldPath([...issue.path, key]), reason: `unknown field${allowed}` });
    } else {
      const leaf = closest(issue);
      out.push({ field: fieldPath(leaf.path), reason: reasonOf(leaf.issue) });
    }
    if (out.length >= MAX_REPORTED) break;
  }
  return out;
}

/**
 * Parses `raw` with `schema`; throws a RequestError (`invalid`) naming every bad field.
 * @example parseWith(z.strictObject({ n: z.number() }), { n: 'x' }) // throws "`n`: expected number, got "x""
 */
export function parseWith<T>(schema: z.ZodType<T>, raw: unknown): T {
  const result = schema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const problems = problemsOf(result.error, topLevelKeys(schema));
  const first = problems[0] ?? { field: '(body)', reason: 'invalid request' };
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  // A list over a configured bound names its config key, e.g. "(maxFilterValues)".
  const code = /\(max[A-Z]\w*\)/.test(first.reason) ? 'LIMIT_EXCEEDED' : 'BAD_REQUEST';
  return thrown(new RequestError('invalid', code, `\`${first.field}\`: ${first.reason}${more}`, problems));
}

/** The keys of the object schema under any transforms/pipes (for "allowed: …" in messages). */
function topLevelKeys(schema: z.ZodType): string[] | undefined {
  let cur: unknown = schema;
  for (let depth = 0; depth < 8 && cur; depth++) {
    if (cur instanceof z.ZodObject) return Object.keys(cur.shape);
    cur = cur instanceof z.ZodPipe ? cur.in : undefined;
  }
  return undefined;
}

function thrown(err: Error): never {
  throw err;
}

/** Query-string parameters as an object of strings; a parameter given twice is a 400. */
export function queryParams(url: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of new URL(url).searchParams) {
    if (Object.hasOwn(out, key)) throw invalidField(key, 'given more than once');
    out[key] = value;
  }
  return out;
}
