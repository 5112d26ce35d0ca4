/**
 * Content negotiation for the kinds that write more than one answer format (`QueryKind.formats`):
 * which of the offered media types a request's `Accept` header prefers. Hono parses the header
 * (`hono/accepts`: quoted strings, parameters, `q`); the choice among the offered types is made
 * here, after RFC 9110 §12.5.1, because Hono's default match lets `*` win over a type the client
 * refused by name (`*\/*, application/json;q=0` would still give JSON).
 */
import type { Context } from 'hono';
import { accepts } from 'hono/accepts';

/** One media range of an Accept header as Hono parses it (its `Accept`, not exported). */
export interface AcceptRange {
  type: string;
  /** in header order, `q` and any accept-ext included */
  params: Record<string, string>;
  q: number;
}

/** The range of `ranges` that decides `offered` (the most specific that matches it), or null. */
function decidingRange(ranges: readonly AcceptRange[], offered: string): { q: number; specificity: number; position: number } | null {
  const [type, subtype] = offered.split('/') as [string, string];
  let best: { q: number; specificity: number; position: number } | null = null;
  ranges.forEach((range, position) => {
    const [rType = '', rSub = ''] = range.type.toLowerCase().split('/');
    let specificity: number;
    if (rType === type && rSub === subtype) specificity = 3;
    else if (rType === type && rSub === '*') specificity = 2;
    else if (rType === '*' && rSub === '*') specificity = 1;
    else return;
    // Media type parameters (those before `q`) must hold for the offered type, which has none:
    // only `charset=utf-8` does (every answer that has text is UTF-8). Later ones are accept-ext.
    for (const [key, value] of Object.entries(range.params)) {
      const k = key.toLowerCase();
      if (k === 'q') break;
      if (k !== 'charset' || value.toLowerCase() !== 'utf-8') return;
      specificity += 0.5;
    }
    if (best === null || specificity > best.specificity) best = { q: range.q, specificity, position };
  });
  return best;
}

/**
 * The offered type the ranges prefer: highest `q` (0 refuses), then the more specific range,
 * then the range the client listed first, then the order of `offered` (its first is the default,
 * so `*\/*` gets it). Null when none is acceptable. Pure.
 */
export function preferredType(ranges: readonly AcceptRange[], offered: readonly string[]): string | null {
  let best: { type: string; q: number; specificity: number; position: number } | null = null;
  for (const type of offered) {
    const range = decidingRange(ranges, type.toLowerCase());
    if (range === null || range.q <= 0) continue;
    const better =
      best === null ||
      range.q > best.q ||
      (range.q === best.q && (range.specificity > best.specificity || (range.specificity === best.specificity && range.position < best.position)));
    if (better) best = { type, ...range };
  }
  return best?.type ?? null;
}

/**
 * The offered type this request's `Accept` prefers; the first offered when it sends none (or an
 * empty one); null when it allows none of them.
 * @example acceptedType(c, ['application/json', 'application/vnd.apache.arrow.stream'])
 *   // Accept: application/json;q=0.5, application/vnd.apache.arrow.stream → the Arrow type
 */
export function acceptedType(c: Context, offered: readonly string[]): string | null {
  const NONE = '';
  const chosen = accepts(c, { header: 'Accept', supports: [...offered], default: offered[0]!, match: (ranges) => preferredType(ranges, offered) ?? NONE });
  return chosen === NONE ? null : chosen;
}
