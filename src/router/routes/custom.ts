/** Routes of the `custom` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerCustomRoutes(_app: Hono, _ctx: EngineContext): void {}
