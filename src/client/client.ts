/**
 * A typed client for shardlytics: batched ingest with retries, and one method per query kind.
 *
 * @example
 * const client = new ShardlyticsClient({ ingestUrl: 'http://localhost:3000', queryUrl: 'http://localhost:3001' });
 * client.track({ event_type: 'click', user_id: 'alice', value: 3 });
 * await client.flush();
 * const { results } = await client.aggregate({ groupBy: ['event_type'] });
 * await client.close();
 *
 * Ingest: `track` queues an event; a batch goes out at `batchSize` events or `flushIntervalMs`
 * after its first event, one batch at a time. Each batch carries an `Idempotency-Key` (a UUID
 * kept across its retries), so once the engine keeps keys (the segment store) a retried batch is
 * stored once. Retries: see ./retry.ts (503/429 after `Retry-After` with backoff and jitter,
 * never another 4xx).
 */
import { EventBatcher, type BatcherStats } from './event-batcher.js';
import { send, ShardlyticsError, type RetryInfo } from './http.js';
import { KIND_ROUTES, type KindName } from './kind-routes.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import type { RecordBatch } from 'apache-arrow';
import type {
  AggregateAnswer,
  ArrowAnswer,
  AggregateRequest,
  AnomaliesAnswer,
  AnomaliesParams,
  CustomAnswer,
  CustomListAnswer,
  CustomRequest,
  DashboardAnswer,
  ExportParams,
  ExportRow,
  FunnelAnswer,
  FunnelRequest,
  IngestAnswer,
  PercentilesAnswer,
  PercentilesParams,
  QueryValue,
  SummaryAnswer,
  SummaryParams,
  TopNAnswer,
  TopNRequest,
  TrackEvent,
  WindowAnswer,
  WindowRequest,
} from './types.js';

export interface ShardlyticsClientOptions {
  /** the ingest API, e.g. http://localhost:3000 */
  ingestUrl: string;
  /** the analytics API, e.g. http://localhost:3001 (the same URL on a one-port setup) */
  queryUrl: string;
  /** bearer token (scopes `ingest` and/or `query`) */
  token?: string;
  /** events per batch, 1..10,000 (the engine's default maxBatchEvents); default 500 */
  batchSize?: number;
  /** longest an event waits before its batch is sent; default 1000 ms */
  flushIntervalMs?: number;
  /** retries of one request after its first attempt; default 5 */
  maxRetries?: number;
  /** first backoff step (doubled per retry); default 100 ms */
  baseDelayMs?: number;
  /** no wait between attempts is longer; default 30 s */
  maxDelayMs?: number;
  /** events waiting or being sent at most; `track` throws BUFFER_FULL beyond; default 100,000 */
  maxBufferedEvents?: number;
  /** time limit of one attempt (not of an export's streaming); default 60 s */
  requestTimeoutMs?: number;
  /** a batch that failed for good (the next `flush()` rejects with it too) */
  onError?: (err: ShardlyticsError, events: TrackEvent[]) => void;
  /** called before every retry */
  onRetry?: (info: RetryInfo) => void;
  /** the fetch to use (default: the global one) */
  fetch?: typeof fetch;
}

const MAX_BATCH = 10_000;
/** The content type of the engine's Arrow answers. */
const ARROW_STREAM = 'application/vnd.apache.arrow.stream';

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** Query-string form of a value: lists comma-separated, dates as ISO-8601. */
function queryText(v: QueryValue): string {
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.join(',');
  return String(v);
}

function queryString(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, queryText(v as QueryValue));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export class ShardlyticsClient {
  private readonly ingestUrl: string;
  private readonly queryUrl: string;
  private readonly retry: RetryPolicy;
  private readonly batcher: EventBatcher;

  constructor(private readonly options: ShardlyticsClientOptions) {
    this.ingestUrl = trimSlash(options.ingestUrl);
    this.queryUrl = trimSlash(options.queryUrl);
    const batchSize = options.batchSize ?? 500;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) throw new RangeError(`batchSize: expected an integer in 1..${MAX_BATCH}, got ${batchSize}`);
    this.retry = {
      maxRetries: options.maxRetries ?? DEFAULT_RETRY.maxRetries,
      baseDelayMs: options.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
      maxDelayMs: options.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
    };
    this.batcher = new EventBatcher({
      batchSize,
      flushIntervalMs: options.flushIntervalMs ?? 1000,
      maxBufferedEvents: options.maxBufferedEvents ?? 100_000,
      sendBatch: (events) => this.sendBatch(events).then(() => undefined),
      onError: options.onError,
    });
  }

  // ---- ingest ----------------------------------------------------------------------------------

  /** Queues one event; it is sent with its batch (see `flush`). Throws BUFFER_FULL or CLIENT_CLOSED. */
  track(event: TrackEvent): void {
    this.batcher.track(event);
  }

  /** Sends every queued event; rejects with the first batch that failed since the last flush. */
  flush(): Promise<void> {
    return this.batcher.flush();
  }

  /** Sends what is queued, then refuses further events. */
  close(): Promise<void> {
    return this.batcher.close();
  }

  /** Events tracked, sent, failed and batches sent. */
  get stats(): Readonly<BatcherStats> {
    return this.batcher.stats;
  }

  /** Sends one batch now (retried as a tracked batch is), bypassing the queue. */
  async sendBatch(events: TrackEvent[], idempotencyKey: string = crypto.randomUUID()): Promise<IngestAnswer> {
    const res = await send(
      `${this.ingestUrl}/ingest/batch`,
      { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKey }, body: JSON.stringify({ events }) },
      this.http(),
    );
    return (await res.json()) as IngestAnswer;
  }

  // ---- queries: one method per kind (src/client/kind-routes.ts) --------------------------------

  aggregate(req: AggregateRequest = {}): Promise<AggregateAnswer> {
    return this.query('aggregate', req);
  }

  /**
   * The aggregate as Arrow: the rows, columns and order of `aggregate`'s `results` in an
   * apache-arrow Table (counts as BigInt), the IPC stream's bytes, and `query_time_ms` and
   * `timestamp` from the answer's headers. For large groupings it is the cheaper form (about half
   * the bytes of JSON, docs/API.md). apache-arrow is loaded on the first call.
   *
   * @example
   * const { table } = await client.aggregateArrow({ groupBy: ['event_type', 'user_id'] });
   * const sums = table.getChild('value_sum')!.toArray(); // Float64Array, one per group
   */
  async aggregateArrow(req: AggregateRequest = {}): Promise<ArrowAnswer> {
    const { method, path } = KIND_ROUTES.aggregate;
    const init = { method, headers: { 'content-type': 'application/json', accept: ARROW_STREAM }, body: JSON.stringify({ ...req, format: 'arrow' }) };
    const res = expectType(await send(`${this.queryUrl}${path}`, init, this.http()), ARROW_STREAM);
    const bytes = new Uint8Array(await res.arrayBuffer());
    const { tableFromIPC } = await import('apache-arrow');
    return { table: tableFromIPC(bytes), bytes, query_time_ms: Number(res.headers.get('x-query-time-ms')), timestamp: res.headers.get('x-timestamp') ?? '' };
  }

  window(req: WindowRequest): Promise<WindowAnswer> {
    return this.query('window', req);
  }

  percentiles(params: PercentilesParams = {}): Promise<PercentilesAnswer> {
    return this.query('percentiles', params);
  }

  topN(req: TopNRequest): Promise<TopNAnswer> {
    return this.query('topn', req);
  }

  anomalies(params: AnomaliesParams = {}): Promise<AnomaliesAnswer> {
    return this.query('anomalies', params);
  }

  funnel(req: FunnelRequest): Promise<FunnelAnswer> {
    return this.query('funnel', req);
  }

  summary(params: SummaryParams = {}): Promise<SummaryAnswer> {
    return this.query('summary', params);
  }

  /** The operator's installed Python plugins (needs the `admin` scope when tokens are on). */
  customList(): Promise<CustomListAnswer> {
    return this.query('custom_list', {});
  }

  /** Runs the operator's plugin `name` (python/engine_polars/custom/). */
  custom(name: string, body: CustomRequest = {}): Promise<CustomAnswer> {
    return this.query('custom', body, { name });
  }

  dashboard(): Promise<DashboardAnswer> {
    return this.query('dashboard', {});
  }

  /**
   * The matching events, row by row, streamed as NDJSON (the engine's memory stays flat; so does
   * the client's). Leaving the loop early cancels the download.
   *
   * @example for await (const row of client.export({ event_type: 'purchase' })) total += row.value ?? 0;
   */
  async *export(params: ExportParams = {}): AsyncGenerator<ExportRow, void, undefined> {
    const { method, path } = KIND_ROUTES.export;
    const res = await send(`${this.queryUrl}${path}${queryString({ ...params, format: 'ndjson' })}`, { method }, this.http(false));
    if (!res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        rest += value;
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (line.trim() !== '') yield JSON.parse(line) as ExportRow;
        }
      }
      if (rest.trim() !== '') yield JSON.parse(rest) as ExportRow;
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  /**
   * The matching events as Arrow record batches, read as they arrive (memory stays flat, as for
   * `export`): columns `timestamp` Int64, `event_type`, `user_id` Utf8, `value` Float64 and
   * `metadata` (JSON text), docs/api/export.md. Leaving the loop early cancels the download.
   *
   * @example for await (const batch of client.exportArrow({ event_type: 'purchase' })) rows += batch.numRows;
   */
  async *exportArrow(params: ExportParams = {}): AsyncGenerator<RecordBatch, void, undefined> {
    const { method, path } = KIND_ROUTES.export;
    const res = expectType(await send(`${this.queryUrl}${path}${queryString({ ...params, format: 'arrow' })}`, { method, headers: { accept: ARROW_STREAM } }, this.http(false)), ARROW_STREAM);
    if (!res.body) return;
    const { RecordBatchReader } = await import('apache-arrow');
    const reader = await RecordBatchReader.from(res.body);
    try {
      for await (const batch of reader) yield batch;
    } finally {
      await reader.cancel();
      await res.body.cancel().catch(() => undefined);
    }
  }

  // ---- plumbing --------------------------------------------------------------------------------

  private http(timed = true) {
    return {
      fetch: this.options.fetch ?? globalThis.fetch,
      retry: this.retry,
      token: this.options.token,
      timeoutMs: timed ? (this.options.requestTimeoutMs ?? 60_000) : undefined,
      onRetry: this.options.onRetry,
    };
  }

  private async query<T>(kind: KindName, input: object, pathParams: Record<string, string> = {}): Promise<T> {
    const route = KIND_ROUTES[kind];
    const path = route.path.replace(/:(\w+)/g, (_, p: string) => encodeURIComponent(pathParams[p] ?? ''));
    // Accept: the JSON answer, whatever a wrapping fetch would ask for (aggregate negotiates)
    const res =
      route.method === 'GET'
        ? await send(`${this.queryUrl}${path}${queryString(input)}`, { method: 'GET', headers: { accept: 'application/json' } }, this.http())
        : await send(`${this.queryUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(input) }, this.http());
    return (await res.json()) as T;
  }
}

/** The response, when it is of `type` (a proxy's HTML page, say, is an error, not an answer). */
function expectType(res: Response, type: string): Response {
  const got = res.headers.get('content-type') ?? '';
  if (got.split(';')[0]!.trim().toLowerCase() === type) return res;
  void res.body?.cancel();
  throw new ShardlyticsError(`expected a ${type} answer from ${res.url}, got ${got || 'no content type'}`, res.status, 'UNEXPECTED_CONTENT_TYPE', 1, undefined, res.headers.get('x-request-id') ?? undefined);
}
