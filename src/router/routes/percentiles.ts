/** Routes of the `percentiles` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerPercentilesRoutes(_app: Hono, _ctx: EngineContext): void {}
