/**
 * Tokens and CORS on a real engine (two ports, real shards): the token matrix runs every route
 * the engine serves — read from its apps' route tables, so a new route is covered without
 * editing this file — × {no token, unknown token, a token without the scope, the right scope,
 * admin}; then ?token=, unmatched routes and CORS preflights.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import type { Scope } from '../../src/config/schema.js';
import { ROUTE_SCOPES, routeAccess } from '../../src/router/access/route-scopes.js';
import { startEngine, type RunningEngine } from '../helpers/engine-harness.js';

const TOKENS: Record<string, { token: string; scopes: Scope[] }> = {
  ingest: { token: 'ingest-only-token-0001', scopes: ['ingest'] },
  query: { token: 'query-only-token-00001', scopes: ['query'] },
  ingestQuery: { token: 'ingest-and-query-token', scopes: ['ingest', 'query'] },
  admin: { token: 'admin-token-0000000001', scopes: ['admin'] },
};
const ORIGIN = 'https://app.example.com';
const PATH_VALUES: Record<string, string> = { table: 'users', name: 'no_such_plugin' };

let engine: RunningEngine;

interface Route {
  method: string;
  pattern: string;
  base: string;
}

function routesOf(app: Hono, base: string): Route[] {
  const seen = new Set<string>();
  const out: Route[] = [];
  for (const r of app.routes) {
    if (r.method === 'ALL' || seen.has(`${r.method} ${r.path}`)) continue;
    seen.add(`${r.method} ${r.path}`);
    out.push({ method: r.method, pattern: r.path, base });
  }
  return out;
}

function urlOf(r: Route, query = ''): string {
  return r.base + r.pattern.replace(/:([A-Za-z_]\w*)/g, (_m, name: string) => PATH_VALUES[name] ?? 'x') + query;
}

/** Status and headers only: a stream's body (SSE, export) is cancelled at once. */
async function call(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; body: any }> {
  const res = await fetch(url, init);
  const type = res.headers.get('content-type') ?? '';
  let body: unknown = null;
  if (type.startsWith('application/json')) body = await res.json();
  else await res.body?.cancel();
  return { status: res.status, headers: res.headers, body };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** A token that lacks every scope in `needed` (and is not admin). */
function wrongScopeToken(needed: readonly Scope[]): string {
  const t = Object.values(TOKENS).find((t) => !t.scopes.includes('admin') && !t.scopes.some((s) => needed.includes(s)));
  if (!t) throw new Error(`no test token lacks ${needed.join(', ')}`);
  return t.token;
}

function rightScopeToken(needed: readonly Scope[]): string {
  return Object.values(TOKENS).find((t) => t.scopes.length === 1 && t.scopes[0] === needed[0])!.token;
}

beforeAll(async () => {
  engine = await startEngine({ shards: 2, tokens: Object.values(TOKENS), corsOrigins: [ORIGIN, 'http://localhost:5173'] });
});

afterAll(async () => {
  await engine?.stop();
});

function servedRoutes(): Route[] {
  return [...routesOf(engine.engine.apps.ingest, engine.ingestUrl), ...routesOf(engine.engine.apps.query, engine.queryUrl)];
}

describe('bearer tokens', () => {
  it('has a scope entry for every route the engine serves', () => {
    const routes = servedRoutes();
    expect(routes.length).toBeGreaterThan(30);
    const missing = routes.map((r) => `${r.method} ${r.pattern}`).filter((k) => !(k in ROUTE_SCOPES));
    expect(missing).toEqual([]);
  });

  it('answers every route × {no token, unknown token, wrong scope, right scope, admin} with 401/401/403/neither/neither', async () => {
    const results: string[] = [];
    for (const r of servedRoutes()) {
      const access = routeAccess(r.method, r.pattern);
      const label = `${r.method} ${r.pattern} @${r.base === engine.ingestUrl ? 'ingest' : 'query'}`;
      const none = await call(urlOf(r), { method: r.method });
      if (access === 'open') {
        expect(none.status, label).not.toBe(401);
        expect(none.status, label).not.toBe(403);
        results.push(`${label}: open ${none.status}`);
        continue;
      }
      expect(none.status, `${label} without a token`).toBe(401);
      expect(none.headers.get('www-authenticate'), label).toMatch(/^Bearer realm="shardlytics"/);
      expect(none.body, label).toMatchObject({ error: 'UNAUTHORIZED', request_id: expect.any(String) });

      const unknown = await call(urlOf(r), { method: r.method, headers: bearer('not-a-configured-token-01') });
      expect(unknown.status, `${label} with an unknown token`).toBe(401);
      expect(unknown.headers.get('www-authenticate'), label).toContain('error="invalid_token"');

      const wrong = await call(urlOf(r), { method: r.method, headers: bearer(wrongScopeToken(access)) });
      expect(wrong.status, `${label} with a token lacking ${access.join('/')}`).toBe(403);
      expect(wrong.body, label).toMatchObject({ error: 'FORBIDDEN' });
      expect(wrong.body.message, label).toContain(access[0]);

      const allowed: number[] = [];
      for (const token of [rightScopeToken(access), TOKENS.admin!.token]) {
        const ok = await call(urlOf(r), { method: r.method, headers: bearer(token) });
        expect([401, 403], `${label} with scope ${access[0]} → ${ok.status} ${JSON.stringify(ok.body)}`).not.toContain(ok.status);
        allowed.push(ok.status);
      }
      results.push(`${label}: ${access.join('|')} ${none.status}/${unknown.status}/${wrong.status}/${allowed.join('/')}`);
    }
    expect(results.length).toBe(servedRoutes().length);
  });

  it('keeps GET /health open on both ports', async () => {
    for (const base of [engine.ingestUrl, engine.queryUrl]) expect((await call(`${base}/health`)).status).toBe(200);
  });

  it('takes ?token= on the live page and its stream only', async () => {
    const q = TOKENS.query!.token;
    expect((await call(`${engine.queryUrl}/?token=${q}`)).status).toBe(200);
    expect((await call(`${engine.queryUrl}/dashboard/stream?token=${q}`)).status).toBe(200);
    expect((await call(`${engine.queryUrl}/?token=${TOKENS.ingest!.token}`)).status).toBe(403);
    expect((await call(`${engine.queryUrl}/?token=not-a-configured-token-01`)).status).toBe(401);
    const stats = await call(`${engine.queryUrl}/stats/shards?token=${q}`);
    expect(stats.status).toBe(401);
    expect(stats.body.message).toContain('Authorization: Bearer');
    const ingest = await call(`${engine.ingestUrl}/ingest?token=${TOKENS.ingest!.token}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(ingest.status).toBe(401);
  });

  it('refuses a malformed Authorization header and keeps unmatched routes behind a token', async () => {
    const basic = await call(`${engine.queryUrl}/stats/shards`, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expect(basic.status).toBe(401);
    expect(basic.body.message).toContain('Bearer');
    expect((await call(`${engine.queryUrl}/no/such/route`)).status).toBe(401);
    expect((await call(`${engine.queryUrl}/no/such/route`, { headers: bearer(TOKENS.ingest!.token) })).status).toBe(404);
    // A lower-case scheme is still Bearer (RFC 7235: case-insensitive).
    expect((await call(`${engine.queryUrl}/stats/shards`, { headers: { authorization: `bearer ${TOKENS.query!.token}` } })).status).toBe(200);
  });

  it('ingests with an ingest token and answers the query with a query token', async () => {
    const events = [{ event_type: 'click', user_id: 'u1', value: 2 }, { event_type: 'click', user_id: 'u2', value: 3 }];
    const put = await call(`${engine.ingestUrl}/ingest/batch`, { method: 'POST', headers: { ...bearer(TOKENS.ingest!.token), 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
    expect(put.status).toBe(202);
    const q = await call(`${engine.queryUrl}/query/aggregate`, { method: 'POST', headers: { ...bearer(TOKENS.query!.token), 'content-type': 'application/json' }, body: '{"metrics":["value"]}' });
    expect(q.status).toBe(200);
    expect(q.body.results[0]).toMatchObject({ count: 2, value_sum: 5 });
  });
});

describe('CORS', () => {
  const preflight = (origin: string, method = 'POST', headers = 'authorization,content-type,idempotency-key,x-request-id') =>
    call(`${engine.queryUrl}/query/aggregate`, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } });

  it('answers a preflight from an allowed origin with 204 and the methods and headers, without a token', async () => {
    const res = await preflight(ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(res.headers.get('access-control-allow-methods')!.split(',')).toEqual(expect.arrayContaining(['GET', 'POST', 'DELETE']));
    const allowed = res.headers.get('access-control-allow-headers')!.toLowerCase().split(',');
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'x-request-id']));
    expect(res.headers.get('vary')).toContain('Origin');
  });

  it('refuses a preflight from another origin, with no CORS headers', async () => {
    const res = await preflight('https://evil.example.com');
    expect(res.status).toBe(403);
    expect(res.body.error).toBe('CORS_ORIGIN_NOT_ALLOWED');
    expect([...res.headers.keys()].filter((h) => h.startsWith('access-control-'))).toEqual([]);
  });

  it('adds the allow-origin and exposed headers to answers for an allowed origin only, errors included', async () => {
    const ok = await call(`${engine.queryUrl}/stats/shards`, { headers: { origin: ORIGIN, ...bearer(TOKENS.query!.token) } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(ok.headers.get('access-control-expose-headers')!.toLowerCase().split(',')).toEqual(expect.arrayContaining(['x-request-id', 'retry-after']));
    // A browser can read the 401 (and its request id) only with the CORS headers on it.
    const denied = await call(`${engine.queryUrl}/stats/shards`, { headers: { origin: ORIGIN } });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    const other = await call(`${engine.queryUrl}/stats/shards`, { headers: { origin: 'https://evil.example.com', ...bearer(TOKENS.query!.token) } });
    expect(other.status).toBe(200);
    expect([...other.headers.keys()].filter((h) => h.startsWith('access-control-'))).toEqual([]);
  });
});
