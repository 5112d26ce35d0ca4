/**
 * The OpenAPI descriptions of the routes that are not query kinds (ingest, enrichment,
 * operations, metrics, the live page), written by hand as JSON Schema next to the generator
 * (./document.ts), which takes the query kinds' request schemas from their zod schemas. Keyed
 * like the access table: `METHOD /pattern`. An entry for a kind's route adds to what the
 * generator made (the export kind's streamed answers).
 */
import { CUSTOM_NAME } from '../../kinds/custom.js';
import { ENRICHMENT_MAX_ROWS, ENRICHMENT_NAME } from '../routes/enrichment-request.js';
import { EVENT_FIELDS, MAX_EVENT_TYPE_CHARS, MAX_METADATA_BYTES, MAX_USER_ID_CHARS } from '../validate-event.js';

export type JsonSchema = Record<string, unknown>;

export interface RouteDoc {
  summary: string;
  description?: string;
  tag: 'ingest' | 'query' | 'enrichment' | 'operations' | 'page';
  parameters?: JsonSchema[];
  requestBody?: JsonSchema;
  /** success answers (status → OpenAPI Response Object) */
  responses?: Record<string, JsonSchema>;
  /** error statuses this route answers besides 500 (and 401/403 when tokens are configured) */
  errors?: number[];
}

const json = (schema: JsonSchema, description: string) => ({ description, content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const DATE_TIME = { type: 'string', format: 'date-time' };
const obj = (properties: Record<string, JsonSchema>, required: string[] = [], extra = true) => ({
  type: 'object',
  properties,
  ...(required.length > 0 ? { required } : {}),
  ...(extra ? {} : { additionalProperties: false }),
});

/** Schemas the route descriptions refer to (`#/components/schemas/<name>`). */
export const SHARED_SCHEMAS: Record<string, JsonSchema> = {
  Error: obj(
    {
      error: { type: 'string', description: 'stable error code (INVALID_EVENT, LIMIT_EXCEEDED, SHARD_BUSY, UNAUTHORIZED, …)' },
      message: { type: 'string', description: 'what is wrong, naming the field and the expected and actual value' },
      errors: {
        type: 'array',
        description: 'one entry per problem when there is more than one thing to fix',
        items: obj({ index: { type: 'integer', minimum: 0, description: 'the event or row index in a batch' }, field: { type: 'string' }, reason: { type: 'string' } }, ['field', 'reason']),
      },
      request_id: { type: 'string', description: 'the request\'s id (also in the x-request-id header and the engine log)' },
    },
    ['error', 'message', 'request_id'],
  ),
  Event: obj(
    {
      event_type: { type: 'string', minLength: 1, maxLength: MAX_EVENT_TYPE_CHARS },
      user_id: { type: 'string', minLength: 1, maxLength: MAX_USER_ID_CHARS, description: 'decides the shard' },
      timestamp: { anyOf: [{ type: 'integer', description: 'epoch milliseconds' }, { type: 'string', description: 'ISO-8601; no zone means UTC' }], description: 'absent: the time the server received it' },
      value: { type: ['number', 'null'] },
      metadata: { type: 'object', description: `at most ${MAX_METADATA_BYTES} bytes serialized` },
    },
    ['event_type', 'user_id'],
    false,
  ),
  IngestAccepted: obj(
    {
      accepted: { type: 'integer', description: 'events acknowledged' },
      buffered: { type: 'integer', description: 'events in the shard rings not yet taken by their shards' },
      timestamp: DATE_TIME,
      latency: { type: 'number', description: 'ms spent (batches)' },
      durable: { type: 'boolean', description: 'true on a ?wait=true answer (200)' },
    },
    ['accepted', 'buffered', 'timestamp'],
  ),
  QueryAnswer: obj({ query_time_ms: { type: 'number' }, timestamp: DATE_TIME }, ['query_time_ms', 'timestamp']),
};

// Sanity: the Event schema names exactly the fields the validator accepts.
if (Object.keys((SHARED_SCHEMAS.Event as { properties: object }).properties).sort().join() !== [...EVENT_FIELDS].sort().join()) {
  throw new Error('route-docs: the Event schema and validate-event.ts disagree on the event fields');
}

/** Path parameters by name. */
export const PATH_PARAMETERS: Record<string, JsonSchema> = {
  table: { type: 'string', pattern: ENRICHMENT_NAME.source, description: 'enrichment table name' },
  name: { type: 'string', pattern: CUSTOM_NAME.source, description: 'custom plugin name (python/engine_polars/custom/<name>.py)' },
};

const INGEST_ERRORS = [400, 408, 409, 413, 415, 422, 503, 504, 507];
const accepted = {
  '200': json(ref('IngestAccepted'), 'with ?wait=true: durable (every shard that took part synced it to its log); `durable: true`'),
  '202': json(ref('IngestAccepted'), 'acknowledged: in the rings, durable within about one flush interval'),
};
/** ?wait=true and Idempotency-Key (docs/API.md, "Acknowledgement and retries") */
const INGEST_PARAMETERS: JsonSchema[] = [
  { name: 'wait', in: 'query', required: false, schema: { type: 'string', enum: ['true', 'false'] }, description: 'true: answer 200 only once the events are durable (504 after waitTimeoutMs, 507 when a shard log cannot take them)' },
  {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    schema: { type: 'string', pattern: '^[A-Za-z0-9\\-_.:~+/=]{1,128}$' },
    description: 'a retry with the same key and body within idempotencyWindow gets the first answer again (header Idempotent-Replayed: true) and stores nothing; another body → 422; while the first is in flight → 409',
  },
];
const anyObject = (description: string) => json({ type: 'object' }, description);

export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'POST /ingest': {
    tag: 'ingest',
    summary: 'Ingest one event',
    requestBody: { required: true, content: { 'application/json': { schema: ref('Event') } } },
    parameters: INGEST_PARAMETERS,
    responses: accepted,
    errors: INGEST_ERRORS,
  },
  'POST /ingest/batch': {
    tag: 'ingest',
    summary: 'Ingest a batch of events, validated whole (one bad event rejects the batch)',
    requestBody: {
      required: true,
      content: { 'application/json': { schema: { anyOf: [obj({ events: { type: 'array', minItems: 1, items: ref('Event') } }, ['events'], false), { type: 'array', minItems: 1, items: ref('Event') }] } } },
    },
    parameters: INGEST_PARAMETERS,
    responses: accepted,
    errors: INGEST_ERRORS,
  },
  'POST /ingest/ndjson': {
    tag: 'ingest',
    summary: 'Ingest newline-delimited events (one JSON event per line)',
    requestBody: {
      required: true,
      content: Object.fromEntries(['application/x-ndjson', 'application/ndjson', 'application/jsonl'].map((t) => [t, { schema: { type: 'string', description: 'one Event object per line' } }])),
    },
    parameters: INGEST_PARAMETERS,
    responses: accepted,
    errors: INGEST_ERRORS,
  },
  'POST /ingest/arrow': {
    tag: 'ingest',
    summary: 'Ingest an Arrow IPC stream of events (columns), validated whole: the bulk route',
    description:
      'Columns: `timestamp` (Int64 epoch ms, Timestamp of any unit, or Date64), `event_type` and `user_id` (Utf8, LargeUtf8, Utf8View or a Dictionary of them), optional `value` (Float64, Float32, any integer type, or Null) and `metadata` (JSON object text as a string column, or Null). ' +
      'The event rules of the JSON routes hold per row; a bad row → 400 whose `errors[]` name the row `index` and the column. Uncompressed record batches only; one stream may hold several. ' +
      'Bounded by maxBodyBytes; a part larger than a shard\'s whole ring → 413. A request that finds a ring full waits up to 5 s for room, then 503.',
    requestBody: {
      required: true,
      content: { 'application/vnd.apache.arrow.stream': { schema: { type: 'string', format: 'binary', description: 'an Arrow IPC stream: schema message, record batches, optional end-of-stream marker' } } },
    },
    parameters: INGEST_PARAMETERS,
    responses: accepted,
    errors: INGEST_ERRORS,
  },
  'GET /metrics/ingestion': {
    tag: 'operations',
    summary: 'Ingestion counters, throughput and request latency percentiles',
    responses: {
      '200': json(
        obj({
          total_events: { type: 'integer' },
          rejected_events: { type: 'integer' },
          error_count: { type: 'integer' },
          requests: { type: 'integer' },
          uptime_seconds: { type: 'number' },
          throughput_per_second: { type: 'number' },
          latency: obj({ average_ms: { type: 'number' }, p50_ms: { type: 'number' }, p95_ms: { type: 'number' }, p99_ms: { type: 'number' } }),
        }),
        'ingestion metrics',
      ),
    },
  },
  'GET /status/buffer': {
    tag: 'operations',
    summary: 'Ring occupancy, total and per shard',
    responses: { '200': json(obj({ size: { type: 'integer' }, capacity: { type: 'integer' }, utilization: { type: 'number' }, buffered_events: { type: 'integer' }, shards: { type: 'array', items: { type: 'object' } } }), 'ring occupancy') },
  },
  'GET /health': {
    tag: 'operations',
    summary: 'Liveness: 200 while the process serves HTTP; `degraded` names the failing shards',
    responses: {
      '200': json(
        obj({
          status: { enum: ['healthy', 'degraded', 'stopping'] },
          timestamp: DATE_TIME,
          buffered: { type: 'integer' },
          uptime: { type: 'number' },
          shards: { type: 'integer' },
          failing_shards: { type: 'array', items: obj({ shard: { type: 'integer' }, error: { type: 'string' } }) },
        }),
        'alive',
      ),
    },
  },
  'GET /ready': {
    tag: 'operations',
    summary: 'Readiness: 200 only when every shard and its polars process are up',
    responses: {
      '200': json(obj({ ready: { type: 'boolean' }, stopping: { type: 'boolean' }, shards: { type: 'array', items: obj({ shard: { type: 'integer' }, ready: { type: 'boolean' }, error: { type: ['string', 'null'] } }) } }), 'ready'),
      '503': json(obj({ ready: { type: 'boolean' }, stopping: { type: 'boolean' }, shards: { type: 'array', items: { type: 'object' } } }), 'not ready (a shard is down or restoring, or the engine is stopping)'),
    },
  },
  'GET /stats/shards': {
    tag: 'operations',
    summary: 'Per-shard statistics: events, rows, batches, polars process, log, queries, ring',
    responses: { '200': json(obj({ shards: { type: 'array', items: { type: 'object' } }, timestamp: DATE_TIME }), 'per-shard stats') },
  },
  'GET /metrics': {
    tag: 'operations',
    summary: 'Prometheus metrics (text exposition format 0.0.4)',
    responses: { '200': { description: 'metrics', content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } } } },
  },
  'GET /openapi.json': {
    tag: 'operations',
    summary: 'This document: the routes this port serves (OpenAPI 3.1)',
    responses: { '200': anyObject('an OpenAPI 3.1 document') },
  },
  'GET /docs': {
    tag: 'operations',
    summary: 'The API reference rendered as one HTML page from this document',
    responses: { '200': { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
  },
  'GET /enrichment': {
    tag: 'enrichment',
    summary: 'The enrichment tables with their row counts and columns',
    responses: { '200': json({ allOf: [ref('QueryAnswer'), obj({ tables: { type: 'array', items: obj({ table: { type: 'string' }, rows: { type: 'integer' }, columns: { type: 'array', items: { type: 'string' } } }) } })] }, 'tables') },
    errors: [503],
  },
  'POST /enrichment/:table': {
    tag: 'enrichment',
    summary: 'Upsert rows into an enrichment table (joined to events on user_id)',
    requestBody: {
      required: true,
      content: {
        'application/json': {
          schema: obj(
            {
              key: { const: 'user_id' },
              rows: {
                type: 'array',
                minItems: 1,
                maxItems: ENRICHMENT_MAX_ROWS,
                items: { type: 'object', properties: { user_id: { type: 'string', minLength: 1, maxLength: MAX_USER_ID_CHARS } }, required: ['user_id'], additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
              },
            },
            ['rows'],
            false,
          ),
        },
      },
    },
    responses: { '200': json({ allOf: [ref('QueryAnswer'), obj({ table: { type: 'string' }, upserted: { type: 'integer' }, rows: { type: 'integer' }, columns: { type: 'array', items: { type: 'string' } }, shards: { type: 'integer' } })] }, 'upserted') },
    errors: [400, 413, 415, 503],
  },
  'DELETE /enrichment/:table': {
    tag: 'enrichment',
    summary: 'Drop an enrichment table',
    responses: { '200': json({ allOf: [ref('QueryAnswer'), obj({ table: { type: 'string' }, dropped: { type: 'boolean' }, rows: { type: 'integer' } })] }, 'dropped') },
    errors: [400, 404, 503],
  },
  'POST /query/aggregate': {
    tag: 'query',
    summary: 'Event count and metric statistics (sum, mean, min, max, stddev, or those named) per group',
    description:
      'With `"format": "arrow"`, or no `format` and an Accept header that prefers `application/vnd.apache.arrow.stream`, the same rows come as an Arrow IPC stream (query_time_ms and timestamp in the headers X-Query-Time-Ms and X-Timestamp); a `format` in the body wins over Accept; see docs/API.md.',
    responses: {
      '200': {
        description: 'the answer, with query_time_ms and timestamp; or with `format: "arrow"` (or Accept) its rows as an Arrow IPC stream',
        content: {
          'application/json': { schema: ref('QueryAnswer') },
          'application/vnd.apache.arrow.stream': { schema: { type: 'string', format: 'binary', description: 'an Arrow IPC stream: schema message, record batches of the answer rows, end-of-stream marker' } },
        },
      },
    },
  },
  'GET /query/export': {
    tag: 'query',
    summary: 'Streams the matching events as NDJSON or an Arrow IPC stream',
    description: 'The `format` parameter picks the body; without it, the type the Accept header prefers (NDJSON for none or `*/*`); see docs/api/export.md.',
    responses: {
      '200': {
        description: 'the events, streamed shard by shard',
        content: { 'application/x-ndjson': { schema: { type: 'string', description: 'one event per line' } }, 'application/vnd.apache.arrow.stream': {} },
      },
    },
  },
  'GET /': {
    tag: 'page',
    summary: 'The live dashboard page (HTML; with tokens, also takes `?token=`)',
    parameters: [{ name: 'token', in: 'query', required: false, schema: { type: 'string' }, description: 'a token with the query scope, for browsers that cannot send a header' }],
    responses: { '200': { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
  },
  'GET /dashboard/stream': {
    tag: 'page',
    summary: 'The live page\'s figures as Server-Sent Events (with tokens, also takes `?token=`)',
    parameters: [{ name: 'token', in: 'query', required: false, schema: { type: 'string' }, description: 'a token with the query scope (an EventSource cannot send headers)' }],
    responses: { '200': { description: 'an event stream: one JSON snapshot per event', content: { 'text/event-stream': { schema: { type: 'string' } } } } },
    errors: [503],
  },
  'GET /assets/page.js': {
    tag: 'page',
    summary: "The live page's script (an ES module)",
    responses: { '200': { description: "The live page's script (an ES module)", content: { 'text/javascript': { schema: { type: 'string' } } } } },
  },
  'GET /assets/page.css': {
    tag: 'page',
    summary: "The live page's style",
    responses: { '200': { description: "The live page's style", content: { 'text/css': { schema: { type: 'string' } } } } },
  },
  'GET /assets/uplot.min.js': {
    tag: 'page',
    summary: "uPlot's browser build, from the engine's node_modules",
    responses: { '200': { description: "uPlot's browser build, from the engine's node_modules", content: { 'text/javascript': { schema: { type: 'string' } } } } },
  },
  'GET /assets/uplot.min.css': {
    tag: 'page',
    summary: "uPlot's style",
    responses: { '200': { description: "uPlot's style", content: { 'text/css': { schema: { type: 'string' } } } } },
  },
};

/** Error answers by status, as `#/components/responses/<name>`. */
export const ERROR_RESPONSES: Record<number, { name: string; description: string }> = {
  400: { name: 'BadRequest', description: 'bad input: `message` and `errors[]` name the field (and the index in a batch); a query over one of its limits' },
  401: { name: 'Unauthorized', description: 'no token, a malformed Authorization header or an unknown token (`WWW-Authenticate: Bearer`)' },
  403: { name: 'Forbidden', description: 'the token lacks the scope this route needs' },
  404: { name: 'NotFound', description: 'no such table, plugin or route' },
  406: { name: 'NotAcceptable', description: 'the request names no `format` and its Accept header allows none of the route\'s answer types (the message lists them)' },
  408: { name: 'RequestIncomplete', description: 'the request did not arrive in full within requestTimeoutMs; nothing was stored' },
  413: { name: 'PayloadTooLarge', description: 'body over maxBodyBytes; the connection is closed' },
  409: { name: 'IdempotencyKeyInFlight', description: 'a request with this Idempotency-Key is still in progress; retry after `Retry-After` seconds' },
  415: { name: 'UnsupportedMediaType', description: 'wrong Content-Type' },
  422: { name: 'IdempotencyKeyReused', description: 'this Idempotency-Key was used for another body or route within idempotencyWindow' },
  429: { name: 'ShardBusy', description: 'a shard\'s query queue is full; retry after `Retry-After` seconds' },
  500: { name: 'Internal', description: 'a bug; the engine log has the error under `request_id`' },
  503: { name: 'Unavailable', description: 'rings full, a shard down or restoring, or the engine stopping; nothing was stored; retry after `Retry-After` seconds' },
  504: { name: 'Timeout', description: 'a shard did not answer within queryTimeoutMs; ingest with ?wait=true: the events were accepted but not confirmed durable within waitTimeoutMs (they may still be stored)' },
  507: { name: 'InsufficientStorage', description: 'a shard\'s log cannot be written (ENOSPC, EIO): `message` names the shard and the cause; the events it names were not stored' },
};

/** Errors every query kind may answer (plus 413/415 for those with a body, 404 for named plugins). */
export const QUERY_ERRORS = [400, 429, 503, 504];
