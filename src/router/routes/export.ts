/**
 * GET /query/export: streams the matching events, shard by shard, page by page, as NDJSON or an
 * Arrow IPC stream, with chunked transfer.
 *
 * Memory stays flat: the body is a pull-based ReadableStream (high-water mark 0), so the next
 * page is asked of a shard only when the previous one has been handed to the socket, and
 * @hono/node-server waits for `drain` before reading again. At most one page (≤ pageSize rows)
 * is held at a time, whatever the export's size. Each page is a query plan like any other, so
 * the shard drains its ring before answering it.
 *
 * Errors before the first byte (bad parameters, a shard not ready, the first page failing) are
 * ordinary JSON errors. A failure after the body started aborts the connection, so a client sees
 * a truncated transfer (no final chunk), never a silently short export.
 */
import type { Hono } from 'hono';
import type { EngineContext } from '../../engine-context.js';
import type { ExportPageOut } from '../../merge/export.js';
import { ARROW_EOS } from '../../merge/export.js';
import { exportPagePlan, parseExportRequest, type ExportCursor, type ExportRequest } from '../../query/export-request.js';
import { unavailable } from '../http-error.js';

const CONTENT_TYPES = { ndjson: 'application/x-ndjson', arrow: 'application/vnd.apache.arrow.stream' } as const;

/** Counters for tests and stats: exports started, pages fetched, rows streamed, largest page. */
export const exportCounters = { exports: 0, pages: 0, rows: 0, largestPage: 0 };

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
    private readonly ctx: EngineContext,
    private readonly req: ExportRequest,
  ) {}

  async next(): Promise<ExportPageOut | null> {
    const { ctx, req } = this;
    while (this.shard < ctx.shards.length) {
      const remaining = req.limit === null ? Infinity : req.limit - this.sent;
      if (remaining <= 0) return null;
      const limit = Math.min(req.pageSize, remaining);
      const { ipc } = await ctx.shards[this.shard]!.query(exportPagePlan(req, this.cursor, limit), ctx.config.queryTimeoutMs);
      const page = (await ctx.mergePool.merge({ kind: 'export', spec: { format: req.format }, partials: [ipc] })) as ExportPageOut;
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
      ctx.logger.debug({ shard: this.shard, rows: page.rows, sent: this.sent }, 'export page');
      if (page.rows > 0 || page.schema) return page;
    }
    return null;
  }
}

export function registerExportRoutes(app: Hono, ctx: EngineContext): void {
  app.get('/query/export', async (c) => {
    const req = parseExportRequest(c.req.url);
    const down = ctx.shards.find((s) => !s.isReady());
    if (down) throw unavailable(`shard ${down.shard} is not ready${down.failure() ? `: ${down.failure()!.message}` : ''}`);
    exportCounters.exports++;
    const pager = new ExportPager(ctx, req);
    // The first page is fetched before answering, so its failure is a proper error response.
    let pending: ExportPageOut | null = await pager.next();
    let schemaSent = false;
    let done = false;
    const body = new ReadableStream<Uint8Array>(
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
            ctx.logger.warn({ err }, 'export aborted after the response started');
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
    return c.body(body, 200, { 'content-type': CONTENT_TYPES[req.format], 'cache-control': 'no-store' });
  });
}
