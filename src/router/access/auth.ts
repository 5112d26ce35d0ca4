/**
 * Bearer-token access control, installed on every port's root app when `tokens` are configured.
 * The request's route pattern picks the scopes it needs (./route-scopes.ts); the token comes
 * from `Authorization: Bearer <token>`, or from `?token=` on the two routes a browser opens
 * without custom headers (the live page and its EventSource). 401 (with `WWW-Authenticate:
 * Bearer`) without a token or with an unknown one, 403 with a token lacking the scope.
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { TokenConfig } from '../../config/schema.js';
import { HttpError } from '../http-error.js';
import { routePatternOf } from '../route-pattern.js';
import { QUERY_TOKEN_ROUTES, grants, routeAccess } from './route-scopes.js';
import { TokenBook } from './tokens.js';

const REALM = 'Bearer realm="shardlytics"';
const BEARER = /^Bearer +([^ ]+) *$/i;

function unauthorized(c: Context, message: string, invalidToken: boolean): HttpError {
  c.header('WWW-Authenticate', invalidToken ? `${REALM}, error="invalid_token"` : REALM);
  return new HttpError(401, 'UNAUTHORIZED', message);
}

/** The presented token: the Authorization header, else `?token=` where the route allows it. */
function presentedToken(c: Context, routeKey: string): string | undefined | { malformed: true } {
  const header = c.req.header('authorization');
  if (header !== undefined) {
    const m = BEARER.exec(header);
    return m ? m[1]! : { malformed: true };
  }
  if (QUERY_TOKEN_ROUTES.has(routeKey)) return c.req.query('token');
  return undefined;
}

export function authMiddleware(tokens: readonly TokenConfig[]): MiddlewareHandler {
  const book = new TokenBook(tokens);
  return async (c, next) => {
    const pattern = routePatternOf(c);
    const method = c.req.method === 'HEAD' ? 'GET' : c.req.method;
    const access = routeAccess(method, pattern);
    if (access === 'open') return next();
    const routeKey = `${method} ${pattern ?? c.req.path}`;
    const presented = presentedToken(c, pattern === null ? '' : routeKey);
    if (presented === undefined) {
      const where = QUERY_TOKEN_ROUTES.has(routeKey) ? 'an `Authorization: Bearer <token>` header or `?token=<token>`' : 'an `Authorization: Bearer <token>` header';
      throw unauthorized(c, `this route needs a token: send ${where}`, false);
    }
    if (typeof presented !== 'string') throw unauthorized(c, 'the Authorization header is not `Bearer <token>`', false);
    const scopes = book.scopesOf(presented);
    if (scopes === null) throw unauthorized(c, 'unknown token', true);
    if (!grants(scopes, access)) {
      c.header('WWW-Authenticate', `${REALM}, error="insufficient_scope", scope="${access.join(' ')}"`);
      throw new HttpError(403, 'FORBIDDEN', `${routeKey} needs a token with scope ${access.join(' or ')}; this token has ${scopes.join(', ')}`);
    }
    await next();
  };
}
