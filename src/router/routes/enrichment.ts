/**
 * Enrichment tables: POST /enrichment/:table upserts rows (each routed to the shard that owns its
 * user, so the join on user_id is shard-local and exact), GET /enrichment lists the tables with
 * row counts and columns, DELETE /enrichment/:table drops one. Tables live in the polars
 * processes' memory only (not durable yet). Queries name their columns as `<table>.<column>`.
 */
import { Table, tableToIPC, type Vector } from 'apache-arrow';
import type { Context, Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { EnrichmentTables } from '../../kinds/enrichment-catalog.js';
import { utf8Vector } from '../../merge/arrow-build.js';
import enrichmentMerge from '../../merge/enrichment.js';
import { ENRICHMENT_MAX_TABLES, parseEnrichmentUpsert, parseTableName, type EnrichmentUpsert } from './enrichment-request.js';
import { requireAllReady } from '../../kinds/fanout.js';
import { badRequest, notFound } from '../http-error.js';
import { readJsonBody } from '../read-body.js';
import { shardForUserBytes } from '../route-hash.js';
import type { EnrichUpsertResult } from '../../shards/protocol.js';

function catalogOf(ctx: EngineContext): EnrichmentTables {
  // The engine creates it; a bare context (e.g. a route-table probe) gets one on first use.
  return (ctx.enrichment ??= new EnrichmentTables());
}

function stamp(started: number) {
  return { query_time_ms: performance.now() - started, timestamp: new Date().toISOString() };
}


const encoder = new TextEncoder();

/** One Arrow IPC stream per shard that owns at least one of the rows: `user_id` then the columns. */
export function encodeShardRows(upsert: EnrichmentUpsert, shards: number): Map<number, Uint8Array> {
  const perShard = new Map<number, Array<EnrichmentUpsert['rows'][number]>>();
  const scratch = new Uint8Array(4 * 1024); // user ids are ≤ 128 characters, ≤ 384 UTF-8 bytes
  for (const row of upsert.rows) {
    const s = shardForUserBytes(scratch.subarray(0, encoder.encodeInto(row.userId, scratch).written), shards);
    let list = perShard.get(s);
    if (!list) perShard.set(s, (list = []));
    list.push(row);
  }
  const out = new Map<number, Uint8Array>();
  for (const [shard, rows] of perShard) {
    const vectors: Record<string, Vector> = { user_id: utf8Vector(rows.map((r) => r.userId)) };
    upsert.columns.forEach((c, i) => (vectors[c] = utf8Vector(rows.map((r) => r.values[i] ?? null))));
    out.set(shard, tableToIPC(new Table(vectors), 'stream'));
  }
  return out;
}

export function registerEnrichmentRoutes(app: Hono, ctx: EngineContext): void {
  app.post('/enrichment/:table', async (c: Context) => {
    const started = performance.now();
    const catalog = catalogOf(ctx);
    const table = parseTableName(c.req.param('table')!);
    const body = await readJsonBody(c, ctx.config.maxBodyBytes, ctx.config.maxJsonDepth);
    return catalog.exclusive(async () => {
      const upsert = parseEnrichmentUpsert(table, body, catalog.columns(table));
      if (!catalog.has(table) && catalog.size >= ENRICHMENT_MAX_TABLES) {
        throw badRequest(`\`table\`: at most ${ENRICHMENT_MAX_TABLES} enrichment tables; drop one first`, [{ field: 'table', reason: 'too many tables' }]);
      }
      requireAllReady(ctx.shards);
      const streams = encodeShardRows(upsert, ctx.shards.length);
      const settled = await Promise.allSettled(
        [...streams].map(async ([shard, ipc]) => ({ shard, result: await ctx.shards[shard]!.enrichUpsert(table, ipc, ctx.config.queryTimeoutMs) })),
      );
      // Whatever the shards did is recorded, so the catalog matches them even after a failure.
      let upserted = 0;
      const failures: unknown[] = [];
      for (const s of settled) {
        if (s.status === 'rejected') {
          failures.push(s.reason);
          continue;
        }
        const { shard, result } = s.value as { shard: number; result: EnrichUpsertResult };
        catalog.noteShard(table, shard, result.columns, result.rows);
        upserted += result.upserted;
      }
      if (failures.length > 0) throw failures[0];
      const info = catalog.list().find((t) => t.table === table)!;
      return c.json({ table, upserted, rows: info.rows, columns: info.columns, shards: streams.size, ...stamp(started) });
    });
  });

  app.get('/enrichment', async (c: Context) => {
    const started = performance.now();
    const catalog = catalogOf(ctx);
    requireAllReady(ctx.shards);
    const partials = await Promise.all(ctx.shards.map(async (s) => (await s.enrichList(ctx.config.queryTimeoutMs)).ipc));
    const columns = Object.fromEntries(catalog.list().map((t) => [t.table, t.columns]));
    const { tables } = await ctx.mergePool.merge(enrichmentMerge, { columns }, partials);
    return c.json({ tables, ...stamp(started) });
  });

  app.delete('/enrichment/:table', async (c: Context) => {
    const started = performance.now();
    const catalog = catalogOf(ctx);
    const table = parseTableName(c.req.param('table')!);
    return catalog.exclusive(async () => {
      if (!catalog.has(table)) throw notFound(`no enrichment table \`${table}\``);
      requireAllReady(ctx.shards);
      const results = await Promise.all(ctx.shards.map((s) => s.enrichDrop(table, ctx.config.queryTimeoutMs)));
      catalog.drop(table);
      return c.json({ table, dropped: true, rows: results.reduce((n, r) => n + r.rows, 0), ...stamp(started) });
    });
  });
}
