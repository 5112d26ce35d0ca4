/** Routes of the `anomalies` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerAnomaliesRoutes(_app: Hono, _ctx: EngineContext): void {}
