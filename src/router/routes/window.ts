/** Routes of the `window` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerWindowRoutes(_app: Hono, _ctx: EngineContext): void {}
