/** docs/API.md (with docs/api/*.md) documents exactly the routes the server serves (and nothing else). */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Hono } from 'hono';
import { makeIngestApp } from '../src/router/ingest-app.js';
import { makeQueryApp } from '../src/router/query-app.js';
import { addOpsRoutes } from '../src/router/ops-routes.js';
import type { EngineContext } from '../src/engine-context.js';

function servedRoutes(): Set<string> {
  // Building the apps touches no shard; route tables are all we read.
  const ctx = { config: {}, shards: [], writer: {}, metrics: {} } as unknown as EngineContext;
  const routes = new Set<string>();
  for (const app of [makeIngestApp(ctx), makeQueryApp(ctx)]) {
    const probe = new Hono().route('/', app);
    addOpsRoutes(probe, ctx);
    for (const r of probe.routes) if (r.method !== 'ALL') routes.add(`${r.method} ${r.path}`);
  }
  return routes;
}

function documentedRoutes(): Set<string> {
  const docs = join(import.meta.dirname, '..', 'docs');
  // docs/API.md plus one page per query kind in docs/api/.
  const pages = [join(docs, 'API.md'), ...readdirSync(join(docs, 'api')).filter((f) => f.endsWith('.md')).map((f) => join(docs, 'api', f))];
  const text = pages.map((p) => readFileSync(p, 'utf8')).join('\n');
  return new Set([...text.matchAll(/^### `(GET|POST|PUT|DELETE) ([^`]+)`/gm)].map((m) => `${m[1]} ${m[2]}`));
}

describe('docs/API.md', () => {
  it('documents every route the server serves, and only those', () => {
    const served = servedRoutes();
    const documented = documentedRoutes();
    expect(served.size).toBeGreaterThan(5);
    expect([...documented].sort()).toEqual([...served].sort());
  });
});
