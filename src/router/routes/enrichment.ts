/**
 * Enrichment tables: POST /enrichment/:table upserts rows (each routed to the shard that owns its
 * user, so the join on user_id is shard-local and exact), GET /enrichment lists the tables with
 * row counts and columns, DELETE /enrichment/:table drops one. Tables live in the polars
 * processes' memory only (not durable yet). Queries name their columns as `<table>.<column>`.
 */
import { Table, Utf8, makeData, makeVector, tableToIPC, type Vector } from 'apache-arrow';
import type { Context, Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import { EnrichmentTables } from '../../query/enrichment-catalog.js';
import { ENRICHMENT_MAX_TABLES, parseEnrichmentUpsert, parseTableName, type EnrichmentUpsert } from '../../query/enrichment-request.js';
import { badRequest, notFound, unavailable } from '../http-error.js';
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

function requireShardsUp(ctx: EngineContext): void {
  const down = ctx.shards.find((s) => !s.isReady());
  if (down) throw unavailable(`shard ${down.shard} is not ready${down.failure() ? `: ${down.failure()!.message}` : ''}`);
}

const encoder = new TextEncoder();

/**
 * A Utf8 vector built straight from the strings (offsets + one UTF-8 buffer + validity bits):
 * apache-arrow's generic `vectorFromArray` builder costs ~10 µs a string, a second per 100k rows.
 */
function utf8Vector(values: Array<string | null>): Vector {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  const validity = new Uint8Array((n + 7) >> 3);
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += values[i] === null ? 0 : values[i]!.length * 3;
  const data = new Uint8Array(bytes);
  let at = 0;
  let nulls = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) nulls++;
    else {
      validity[i >> 3]! |= 1 << (i & 7);
      let ascii = true;
      for (let j = 0; j < v.length; j++) {
        const code = v.charCodeAt(j);
        if (code >= 0x80) {
          ascii = false;
          break;
        }
        data[at + j] = code;
      }
      at += ascii ? v.length : encoder.encodeInto(v, data.subarray(at)).written;
    }
    offsets[i + 1] = at;
  }
  return makeVector(makeData({ type: new Utf8(), length: n, nullCount: nulls, nullBitmap: nulls > 0 ? validity : null, valueOffsets: offsets, data: data.subarray(0, at) }));
}

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
    const body = await readJsonBody(c, ctx.config.maxBodyBytes);
    return catalog.exclusive(async () => {
      const upsert = parseEnrichmentUpsert(table, body, catalog.columns(table));
      if (!catalog.has(table) && catalog.size >= ENRICHMENT_MAX_TABLES) {
        throw badRequest(`\`table\`: at most ${ENRICHMENT_MAX_TABLES} enrichment tables; drop one first`, [{ field: 'table', reason: 'too many tables' }]);
      }
      requireShardsUp(ctx);
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
    requireShardsUp(ctx);
    const partials = await Promise.all(ctx.shards.map(async (s) => (await s.enrichList(ctx.config.queryTimeoutMs)).ipc));
    const columns = Object.fromEntries(catalog.list().map((t) => [t.table, t.columns]));
    const { tables } = await ctx.mergePool.merge({ kind: 'enrichment', spec: { columns }, partials });
    return c.json({ tables, ...stamp(started) });
  });

  app.delete('/enrichment/:table', async (c: Context) => {
    const started = performance.now();
    const catalog = catalogOf(ctx);
    const table = parseTableName(c.req.param('table')!);
    return catalog.exclusive(async () => {
      if (!catalog.has(table)) throw notFound(`no enrichment table \`${table}\``);
      requireShardsUp(ctx);
      const results = await Promise.all(ctx.shards.map((s) => s.enrichDrop(table, ctx.config.queryTimeoutMs)));
      catalog.drop(table);
      return c.json({ table, dropped: true, rows: results.reduce((n, r) => n + r.rows, 0), ...stamp(started) });
    });
  });
}
