/** Routes of the `summary` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerSummaryRoutes(_app: Hono, _ctx: EngineContext): void {}
