/** Routes of the `funnel` query. (Stub: registers nothing yet.) */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';

export function registerFunnelRoutes(_app: Hono, _ctx: EngineContext): void {}
