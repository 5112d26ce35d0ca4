/** Routes of the `enrichment` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerEnrichmentRoutes(_app: Hono, _ctx: EngineContext): void {}
