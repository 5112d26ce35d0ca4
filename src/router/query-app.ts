/**
 * The analytics API (default port 3001): one loop over the query kinds (src/kinds/registry.ts)
 * gives every kind the same envelope — read the input (JSON body bounded by maxBodyBytes and
 * maxJsonDepth, or the query string), validate it with the kind's schema, check the enrichment
 * columns it names, run it with a runtime bounded by queryTimeoutMs, and answer JSON with
 * `query_time_ms` and `timestamp` (bounded by maxResponseBytes) or the kind's stream. Errors are
 * thrown and rendered by the one `onError` (http-error.ts). Enrichment management routes are
 * added beside the kinds (routes/enrichment.ts).
 */
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { EngineContext } from '../engine-context.js';
import { answerBody, boundedBytes, cancelFeeds, serializeAnswer, type SerializedAnswer } from '../kinds/answer.js';
import { EnrichmentTables } from '../kinds/enrichment-catalog.js';
import { BytesAnswer, isStreamAnswer, type QueryKind } from '../kinds/kind.js';
import type { RequestLimits } from '../kinds/limits.js';
import { parseWith, queryParams } from '../kinds/parse-request.js';
import { KINDS } from '../kinds/registry.js';
import { checkDimensions, makeRuntime, type QueryServices } from '../kinds/runtime.js';
import { readJsonBody } from './read-body.js';
import { AnswerBudget } from './answer-budget.js';
import { requestLog } from './request-id.js';
import { errorStatus, notAcceptable, overloaded } from './http-error.js';
import { acceptedType } from './accept.js';
import { QueryTimings } from './query-timings.js';
import { QueryStages } from '../kinds/query-stages.js';
import { registerEnrichmentRoutes } from './routes/enrichment.js';
import { registerPageRoutes } from './page/routes.js';

/** The request bounds the kinds' schemas are built with (also for the OpenAPI document). */
export function limitsOf(ctx: Pick<EngineContext, 'config'>): RequestLimits {
  const c = ctx.config;
  return {
    maxFilterValues: c.maxFilterValues,
    maxGroupByKeys: c.maxGroupByKeys,
    maxResultCells: c.maxResultCells,
    maxPlanBytes: c.maxPlanBytes,
    maxResponseBytes: c.maxResponseBytes,
    maxJsonDepth: c.maxJsonDepth,
    queryTimeoutMs: c.queryTimeoutMs,
  };
}

function servicesOf(ctx: EngineContext): QueryServices {
  ctx.enrichment ??= new EnrichmentTables();
  return {
    shards: ctx.shards,
    mergePool: ctx.mergePool,
    limits: limitsOf(ctx),
    catalog: ctx.enrichment,
    logger: ctx.logger,
    ingestion: () => {
      const s = ctx.metrics.snapshot();
      return { total_events: Number(s.total_events), throughput_per_second: Number(s.throughput_per_second), rejected_events: Number(s.rejected_events), buffered: ctx.writer.buffered() };
    },
  };
}

/**
 * The kind's request from the HTTP input, validated by its schema (built on first use). For a
 * kind with several answer formats, a request that names no `format` gets the one its Accept
 * header prefers (406 when it allows none of them); a named `format` wins over Accept.
 */
async function readRequest(kind: QueryKind, schema: () => z.ZodType, c: Context, ctx: EngineContext): Promise<unknown> {
  const { config } = ctx;
  const raw: unknown = kind.input === 'body' ? await readJsonBody(c, config.maxBodyBytes, config.maxJsonDepth) : kind.input === 'query' ? queryParams(c.req.url) : {};
  if (kind.formats && typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const input = raw as Record<string, unknown>;
    if (input.format == null) {
      const type = acceptedType(c, Object.values(kind.formats));
      if (type === null) throw notAcceptable(c.req.header('accept') ?? '', kind.formats);
      input.format = Object.keys(kind.formats).find((f) => kind.formats![f] === type);
    }
  }
  return parseWith(schema(), raw);
}

/**
 * A JSON (or binary) answer with its length: a streamed body is sent with a Content-Length too,
 * not chunked. Its bytes count against `budget` until its socket has taken them or closed; a
 * socket that takes nothing for `stallMs` is destroyed (answer-budget.ts).
 */
function sendAnswer(c: Context, answer: SerializedAnswer, budget: AnswerBudget, stallMs: number, log: Logger, headers: Record<string, string> = { 'content-type': 'application/json' }): Response {
  const res = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
  if (res) {
    if (!budget.reserve(answer.bytes)) {
      cancelFeeds(answer.pieces);
      throw overloaded(`answers waiting for their clients hold ${budget.held} bytes; this one (${answer.bytes} bytes) would pass maxAnswerBytesInFlight (${budget.maxBytes}): retry`);
    }
    // 'close' comes once, when the response has gone out or its connection has closed
    res.once('close', () => budget.release(answer.bytes));
    res.setTimeout(stallMs, () => {
      budget.stalled++;
      log.warn({ bytes: answer.bytes, sendStallTimeoutMs: stallMs }, 'answer cut off: its client took nothing for sendStallTimeoutMs');
      res.destroy();
    });
  }
  // written to the socket by @hono/node-server: a streamed field's buffers can be reused (ChunkRing)
  const body = answerBody(answer, (err) => log.error({ err }, 'answer failed while it was sent; connection cut'), res !== undefined);
  return c.body(body, 200, { ...headers, 'content-length': String(answer.bytes) });
}

export function makeQueryApp(ctx: EngineContext): Hono {
  const app = new Hono();
  const timings = (ctx.queryTimings ??= new QueryTimings());
  const answers = (ctx.answers ??= new AnswerBudget(ctx.config.maxAnswerBytesInFlight));
  let services: QueryServices | null = null;
  for (const kind of KINDS) {
    let schema: z.ZodType | null = null;
    const schemaOf = () => (schema ??= kind.schema(limitsOf(ctx)));
    app.on(kind.method, kind.path, async (c) => {
      const started = performance.now();
      let status = 500;
      const log = requestLog(c);
      // Per-stage timings (query-stages.ts) only when they will be logged.
      const stages = log.isLevelEnabled('debug') ? new QueryStages() : null;
      try {
        services ??= servicesOf(ctx);
        const req = await readRequest(kind, schemaOf, c, ctx);
        if (kind.dimensions) await checkDimensions(kind.dimensions(req), services.catalog);
        stages?.read(performance.now() - started);
        const rt = makeRuntime(services, { deadline: Date.now() + ctx.config.queryTimeoutMs, params: c.req.param() as Record<string, string>, logger: log, stages });
        const answer = await kind.run(req, rt);
        const ran = performance.now();
        const { maxResponseBytes, sendStallTimeoutMs } = ctx.config;
        // the answer's format may have come from Accept: caches must key on it
        if (kind.formats) c.header('Vary', 'Accept', { append: true });
        const res = isStreamAnswer(answer)
          ? c.body(answer.stream, 200, { 'content-type': answer.contentType, 'cache-control': 'no-store' })
          : answer instanceof BytesAnswer
            ? sendAnswer(c, boundedBytes(answer.pieces, answer.bytes, maxResponseBytes), answers, sendStallTimeoutMs, log, {
                'content-type': answer.contentType,
                // the envelope of a JSON answer, in headers
                'x-query-time-ms': String(performance.now() - started),
                'x-timestamp': new Date().toISOString(),
              })
            : sendAnswer(c, serializeAnswer(answer, started, maxResponseBytes), answers, sendStallTimeoutMs, log);
        stages?.serialized(performance.now() - ran);
        status = 200;
        return res;
      } catch (err) {
        status = errorStatus(err);
        throw err;
      } finally {
        const ms = performance.now() - started;
        timings.record({ kind: kind.name, ms, status });
        if (stages) log.debug({ kind: kind.name, status, ms: Math.round(ms * 100) / 100, ...stages.fields() }, 'query stages');
      }
    });
  }
  registerEnrichmentRoutes(app, ctx);
  registerPageRoutes(app, ctx);
  return app;
}
