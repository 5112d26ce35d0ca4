/**
 * Access to the engine: CORS for the configured origins, then bearer tokens with scopes. One
 * list of middleware the root app installs on every port, in this order (a preflight is
 * answered before a token is asked for, and 401/403 answers carry the CORS headers the browser
 * needs to read them).
 */
import type { MiddlewareHandler } from 'hono';
import type { EngineConfig } from '../../config/schema.js';
import { authMiddleware } from './auth.js';
import { corsMiddleware } from './cors.js';

export function accessMiddleware(config: Pick<EngineConfig, 'tokens' | 'corsOrigins'> | undefined): MiddlewareHandler[] {
  const out: MiddlewareHandler[] = [];
  if (config?.corsOrigins && config.corsOrigins.length > 0) out.push(corsMiddleware(config.corsOrigins));
  if (config?.tokens && config.tokens.length > 0) out.push(authMiddleware(config.tokens));
  return out;
}
