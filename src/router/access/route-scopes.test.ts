import { describe, expect, it } from 'vitest';
import { QUERY_TOKEN_ROUTES, ROUTE_SCOPES, grants, routeAccess } from './route-scopes.js';

describe('route scopes', () => {
  it('leaves only /health and the page\'s static assets open', () => {
    const open = Object.entries(ROUTE_SCOPES).filter(([, a]) => a === 'open').map(([r]) => r).sort();
    expect(open).toEqual(['GET /assets/page.css', 'GET /assets/page.js', 'GET /assets/uplot.min.css', 'GET /assets/uplot.min.js', 'GET /health']);
  });

  it('needs admin for enrichment writes, deletes and the plugin listing; query for the kinds; ingest for ingest', () => {
    expect(routeAccess('POST', '/enrichment/:table')).toEqual(['admin']);
    expect(routeAccess('DELETE', '/enrichment/:table')).toEqual(['admin']);
    expect(routeAccess('GET', '/query/custom')).toEqual(['admin']);
    expect(routeAccess('POST', '/query/custom/:name')).toEqual(['query']);
    expect(routeAccess('GET', '/enrichment')).toEqual(['query']);
    expect(routeAccess('POST', '/ingest/ndjson')).toEqual(['ingest']);
    expect(routeAccess('GET', '/metrics')).toEqual(['query', 'admin']);
  });

  it('treats HEAD as GET, an unlisted route as admin-only and an unmatched request as needing any token', () => {
    expect(routeAccess('HEAD', '/health')).toBe('open');
    expect(routeAccess('GET', '/some/new/route')).toEqual(['admin']);
    expect(routeAccess('GET', null)).toEqual(['ingest', 'query', 'admin']);
  });

  it('lets admin do everything, and a scope only what needs it', () => {
    expect(grants(['admin'], ['ingest'])).toBe(true);
    expect(grants(['admin'], ['query'])).toBe(true);
    expect(grants(['query'], ['query', 'admin'])).toBe(true);
    expect(grants(['ingest'], ['query', 'admin'])).toBe(false);
    expect(grants(['ingest', 'query'], ['admin'])).toBe(false);
    expect(grants([], 'open')).toBe(true);
  });

  it('takes ?token= only on the live page and its stream', () => {
    expect([...QUERY_TOKEN_ROUTES].sort()).toEqual(['GET /', 'GET /dashboard/stream']);
  });
});
