/** Routes of the `export` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerExportRoutes(_app: Hono, _ctx: EngineContext): void {}
