/**
 * Routes served on both ports: /health, /ready, /stats/shards, and the operator's documents:
 * /metrics (Prometheus), /openapi.json and /docs (of the routes this port serves).
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../engine-context.js';
import { EngineMetrics } from './metrics/engine-metrics.js';
import { buildOpenApi } from './openapi/document.js';
import { renderDocsPage } from './openapi/docs-page.js';
import { limitsOf } from './query-app.js';

export function addOpsRoutes(app: Hono, ctx: EngineContext): void {
  // Liveness: 200 whenever the process serves HTTP, `degraded` naming the shards that are down
  // (readiness, which load balancers act on, is /ready's 503).
  app.get('/health', (c) => {
    const failing = ctx.shards.filter((s) => !s.isReady()).map((s) => ({ shard: s.shard, error: s.failure()?.message ?? 'not ready' }));
    return c.json({
      status: ctx.stopping ? 'stopping' : failing.length > 0 ? 'degraded' : 'healthy',
      timestamp: new Date().toISOString(),
      buffered: ctx.writer.buffered(),
      uptime: (Date.now() - ctx.startedAt) / 1000,
      shards: ctx.shards.length,
      failing_shards: failing,
    });
  });

  app.get('/ready', (c) => {
    const shards = ctx.shards.map((s) => ({ shard: s.shard, ready: s.isReady(), error: s.failure()?.message ?? null }));
    const ready = !ctx.stopping && shards.every((s) => s.ready);
    return c.json({ ready, stopping: ctx.stopping, shards }, ready ? 200 : 503);
  });

  app.get('/stats/shards', async (c) => {
    const shards = await Promise.all(
      ctx.shards.map(async (s) => {
        const ring = {
          ring_used_bytes: s.ring.usedBytes(),
          ring_capacity_bytes: s.ring.capacity(),
          ring_utilization: s.ring.usedBytes() / s.ring.capacity(),
          events_pushed: s.ring.pushed(),
        };
        try {
          return { ...(await s.request('stats', {}, 5000)), ...ring };
        } catch (err) {
          return { shard: s.shard, state: 'failed', error: (err as Error).message, ...ring };
        }
      }),
    );
    return c.json({ shards, timestamp: new Date().toISOString() });
  });

  addOperatorDocuments(app, ctx);
}

function addOperatorDocuments(app: Hono, ctx: EngineContext): void {
  app.get('/metrics', async (c) => {
    const { contentType, text } = await (ctx.prometheus ??= new EngineMetrics(ctx)).scrape();
    return c.body(text, 200, { 'content-type': contentType, 'cache-control': 'no-store' });
  });

  // Built on first request, when every route of this port's app is registered (`app.routes`).
  let doc: { json: string; html: string } | null = null;
  const documents = () => {
    if (doc) return doc;
    const document = buildOpenApi({ routes: app.routes, limits: limitsOf(ctx), tokens: (ctx.config.tokens ?? []).length > 0 });
    return (doc = { json: JSON.stringify(document), html: renderDocsPage(document) });
  };
  app.get('/openapi.json', (c) => c.body(documents().json, 200, { 'content-type': 'application/json' }));
  app.get('/docs', (c) => c.html(documents().html));
}
