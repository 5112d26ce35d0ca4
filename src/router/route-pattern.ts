/**
 * The route pattern a request matched (`/enrichment/:table`, never the raw path): what access
 * control looks up and what metrics label with, so neither sees user-chosen strings. Known in a
 * root middleware before `next()`: Hono matches every route (middleware and handlers) up front.
 */
import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';

/** The pattern of the first handler matched (middleware are registered as `ALL`), or null. */
export function routePatternOf(c: Context): string | null {
  for (const r of matchedRoutes(c)) if (r.method !== 'ALL') return r.path;
  return null;
}
