/** Routes of the `topn` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerTopNRoutes(_app: Hono, _ctx: EngineContext): void {}
