/**
 * POST /query/funnel: conversion funnels, computed per user on each shard (users live on one
 * shard) and merged by adding the per-step counts (src/merge/funnel.ts); exact.
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { fanOut } from '../../query/fanout.js';
import { parseFunnelRequest } from '../../query/funnel-request.js';
import { readJsonBody } from '../read-body.js';

export function registerFunnelRoutes(app: Hono, ctx: EngineContext): void {
  app.post('/query/funnel', async (c) => {
    const started = performance.now();
    const plan = parseFunnelRequest(await readJsonBody(c, ctx.config.maxBodyBytes), ctx.enrichment);
    const partials = await fanOut(ctx, plan);
    const answer = await ctx.mergePool.merge({ kind: 'funnel', spec: { steps: plan.steps }, partials });
    return c.json({
      ...answer,
      window_ms: plan.window_ms,
      mode: plan.mode,
      query_time_ms: performance.now() - started,
      timestamp: new Date().toISOString(),
    });
  });
}
