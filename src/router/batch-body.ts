/**
 * The body of POST /ingest/batch: `{"events": [...]}` or `[...]`, parsed before its nesting is
 * scanned. Every JSON body is refused when it nests deeper than `maxJsonDepth`, and this route
 * keeps that rule and its error exactly, but proves a valid batch shallow for less than the
 * scan (`jsonDepthExceeded`, ~0.12-0.16 µs per event, a sixth of the HTTP thread's work):
 *
 *   1. `countOpenBrackets` counts the text's `[` and `{` (~0.015 µs per event);
 *   2. JSON.parse, which copes with any depth (nothing recursive walks the value before 4);
 *   3. validation (event-columns.ts) counts the arrays and objects of the events it accepts and
 *      checks their depth on the value, iteratively, before metadata is serialized;
 *   4. `confirmDepth`: when the value holds as many arrays and objects as the text holds brackets,
 *      the text nests exactly as deep as the value, which step 3 found within the limit. Anything
 *      else (a bracket inside a string, a duplicate key whose value JSON.parse dropped, an invalid
 *      event, a body of the wrong shape) scans the text as before, before any error is reported:
 *      a body too deep still gets the depth error first, naming the same character.
 */
import { badRequest } from './http-error.js';
import { countOpenBrackets, jsonDepthExceeded } from './json-depth.js';
import { parseJson, tooDeep } from './read-body.js';

export class BatchBody {
  private constructor(
    readonly raws: unknown[],
    /** levels above each event: 1 for `[...]`, 2 for `{"events": [...]}` */
    readonly above: number,
    private readonly text: string,
    private readonly maxDepth: number,
    /** the text's `[` and `{`, or -1 when its depth was scanned already */
    private readonly opens: number,
  ) {}

  /** Parses a batch body; throws the route's 400s (empty, too deep, malformed, wrong shape) as before. */
  static parse(text: string, maxDepth: number): BatchBody {
    const opens = countOpenBrackets(text);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return BatchBody.checked(text, maxDepth);
    }
    if (Array.isArray(body)) return new BatchBody(body, 1, text, maxDepth, opens);
    if (typeof body === 'object' && body !== null) {
      let onlyEvents = true;
      for (const key in body) if (key !== 'events') onlyEvents = false;
      const events = (body as { events?: unknown }).events;
      if (onlyEvents && Array.isArray(events)) return new BatchBody(events, 2, text, maxDepth, opens);
    }
    return BatchBody.checked(text, maxDepth);
  }

  /** The old way: depth scanned, then parsed, then the shape's errors. */
  private static checked(text: string, maxDepth: number): BatchBody {
    const body = parseJson(text, maxDepth);
    let raws: unknown;
    if (Array.isArray(body)) raws = body;
    else if (typeof body === 'object' && body !== null) {
      const keys = Object.keys(body);
      const extra = keys.filter((k) => k !== 'events');
      if (extra.length > 0) throw badRequest(`unknown field \`${extra[0]}\`; expected {"events": [...]}`, [{ field: extra[0]!, reason: 'unknown field' }]);
      raws = (body as { events?: unknown }).events;
    }
    if (!Array.isArray(raws)) throw badRequest('expected {"events": [...]} or a JSON array of events', [{ field: 'events', reason: 'missing or not an array' }]);
    return new BatchBody(raws, Array.isArray(body) ? 1 : 2, text, maxDepth, -1);
  }

  /** Levels an event's metadata may take: the limit less the body's levels and the event's own. */
  get metadataLevels(): number {
    return this.maxDepth - this.above - 1;
  }

  /**
   * Throws the depth error if the text nests deeper than `maxDepth`. `containers`: the arrays
   * and objects of the events, as validation counted them (within `metadataLevels`), or -1 when
   * validation did not accept them; the text is scanned unless the count proves it shallow.
   */
  confirmDepth(containers: number): void {
    if (this.opens < 0 || (containers >= 0 && this.above + containers === this.opens)) return;
    const deep = jsonDepthExceeded(this.text, this.maxDepth);
    if (deep >= 0) throw tooDeep(this.maxDepth, deep);
  }
}
