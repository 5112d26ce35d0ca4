/**
 * GET /query/export: streams the matching events, shard by shard, page by page, as NDJSON or an
 * Arrow IPC stream, with chunked transfer.
 *
 * Query parameters: `format` (ndjson | arrow), `limit` (most events in all), `pageSize`
 * (exportMinPage..exportMaxPage, default 50,000), and the common filter: `from`, `to`,
 * `event_type`, `user_id`.
 *
 * Memory stays flat: the body is a pull-based ReadableStream (high-water mark 0), so the next
 * page is asked of a shard only when the previous one has been handed to the socket. At most one
 * page is held at a time, whatever the export's size. Each page is a query plan like any other
 * (the shard drains its ring before answering it) with its own `queryTimeoutMs`.
 *
 * Errors before the first byte (bad parameters, a shard not ready, the first page failing) are
 * ordinary JSON errors. A failure after the body started aborts the connection, so a client sees
 * a truncated transfer (no final chunk), never a silently short export.
 *
 * Partial (python/engine_polars/ops/export.py): one page of events, columns as stored:
 * `timestamp` Int64, `event_type` LargeUtf8, `user_id` LargeUtf8, `value` Float64 (nullable),
 * `metadata` LargeUtf8 (nullable), in (timestamp, arrival) order; the Arrow answer has the
 * strings as Utf8 (src/merge/export.ts). Pages are keyed, not offset: `after` =
 * (timestamp of the last event returned, events at exactly that timestamp returned so far).
 */
import exportMerge from '../merge/export.js';
import { z } from 'zod';
import { ARROW_EOS, type ExportPageOut } from '../merge/export.js';
import { defineKind, type KindRuntime } from './kind.js';
import { BUILTIN, type RequestLimits } from './limits.js';
import { fromQueryNumber, queryFilter, queryFilterFields, type PlanFilter } from './schemas.js';

export const EXPORT_FORMATS = ['ndjson', 'arrow'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_DEFAULT_PAGE = 50_000;
/** By format, the default first. */
const CONTENT_TYPES = { ndjson: 'application/x-ndjson', arrow: 'application/vnd.apache.arrow.stream' } as const satisfies Record<ExportFormat, string>;

export interface ExportCursor {
  timestamp: number;
  /** Events at exactly `timestamp` already returned. */
  skip: number;
}

export interface ExportPlan {
  kind: 'export';
  filter: PlanFilter;
  limit: number;
  after: ExportCursor | null;
}

export interface ExportRequest {
  format: ExportFormat;
  filter: PlanFilter;
  /** Most events in the whole export; null for all. */
  limit: number | null;
  pageSize: number;
}

/** Counters for tests and stats: exports started, pages fetched, rows streamed, largest page. */
export const exportCounters = { exports: 0, pages: 0, rows: 0, largestPage: 0 };

function schema(limits: RequestLimits) {
  return z
    .strictObject({
      format: z.enum(EXPORT_FORMATS).optional(),
      limit: fromQueryNumber(z.int().min(1).max(Number.MAX_SAFE_INTEGER)).optional(),
      pageSize: fromQueryNumber(z.int().min(BUILTIN.exportMinPage).max(BUILTIN.exportMaxPage)).optional(),
      ...queryFilterFields(limits),
    })
    .transform(
      (q, ctx): ExportRequest => ({ format: q.format ?? 'ndjson', filter: queryFilter(q, ctx), limit: q.limit ?? null, pageSize: q.pageSize ?? EXPORT_DEFAULT_PAGE }),
    );
}

export type ExportInput = z.input<ReturnType<typeof schema>>;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}

/** Pages of every shard in turn; each `next()` fetches one page (or reports the end). */
class ExportPager {
  private shard = 0;
  private cursor: ExportCursor | null = null;
  private sent = 0;
  schema: Uint8Array | null = null;

  constructor(
    private readonly rt: KindRuntime,
    private readonly req: ExportRequest,
  ) {}

  async next(): Promise<ExportPageOut | null> {
    const { rt, req } = this;
    while (this.shard < rt.shardCount) {
      const remaining = req.limit === null ? Infinity : req.limit - this.sent;
      if (remaining <= 0) return null;
      const limit = Math.min(req.pageSize, remaining);
      const deadline = Date.now() + rt.limits.queryTimeoutMs;
      const plan: ExportPlan = { kind: 'export', filter: req.filter, limit, after: this.cursor };
      const ipc = await rt.queryShard(this.shard, plan, deadline);
      const page = await rt.merge(exportMerge, { format: req.format }, [ipc], deadline);
      exportCounters.pages++;
      exportCounters.rows += page.rows;
      exportCounters.largestPage = Math.max(exportCounters.largestPage, page.rows);
      this.sent += page.rows;
      if (page.schema) {
        this.schema ??= page.schema;
        if (!sameBytes(this.schema, page.schema)) throw new Error(`export: shard ${this.shard} answered a page with a different Arrow schema`);
      }
      if (page.rows < limit) {
        // A short page is this shard's last.
        this.shard++;
        this.cursor = null;
      } else {
        const carried = this.cursor !== null && page.lastRun === page.rows && this.cursor.timestamp === page.last ? this.cursor.skip : 0;
        this.cursor = { timestamp: page.last!, skip: page.lastRun + carried };
      }
      rt.logger.debug({ shard: this.shard, rows: page.rows, sent: this.sent }, 'export page');
      if (page.rows > 0 || page.schema) return page;
    }
    return null;
  }
}

export default defineKind<ExportRequest>({
  name: 'export',
  method: 'GET',
  path: '/query/export',
  input: 'query',
  summary: 'Streams the matching events as NDJSON or an Arrow IPC stream',
  formats: CONTENT_TYPES,
  schema,
  async run(req, rt) {
    rt.requireAllReady();
    exportCounters.exports++;
    const pager = new ExportPager(rt, req);
    // The first page is fetched before answering, so its failure is a proper error response.
    let pending: ExportPageOut | null = await pager.next();
    let schemaSent = false;
    let done = false;
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          try {
            // Enqueue something (or close) before returning: with a high-water mark of 0 the
            // stream does not call pull again for a pull that enqueued nothing.
            let enqueued = false;
            while (!enqueued && !done) {
              const page = pending ?? (await pager.next());
              pending = null;
              if (req.format === 'arrow' && !schemaSent && pager.schema) {
                controller.enqueue(pager.schema);
                schemaSent = enqueued = true;
              }
              if (page === null) {
                done = true;
                if (req.format === 'arrow') controller.enqueue(ARROW_EOS);
                controller.close();
              } else if (page.bytes.byteLength > 0) {
                controller.enqueue(page.bytes);
                enqueued = true;
              }
            }
          } catch (err) {
            rt.logger.warn({ err }, 'export aborted after the response started');
            done = true;
            controller.error(err);
          }
        },
        cancel() {
          done = true;
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, contentType: CONTENT_TYPES[req.format] };
  },
});
