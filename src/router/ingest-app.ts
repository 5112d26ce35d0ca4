/**
 * The ingest API (default port 3000): POST /ingest, /ingest/batch, /ingest/ndjson, /ingest/arrow
 * (Arrow IPC: arrow-ingest/) plus the ingestion metrics. Thin: read, validate the whole request,
 * write it to the rings, answer 202 (with `?wait=true` 200 once durable, with an
 * `Idempotency-Key` at most once: ingest-ack.ts).
 */
import { Hono, type Context } from 'hono';
import type { EngineContext } from '../engine-context.js';
import type { EncodableEvent } from '../shards/ring-record.js';
import { badRequest, errorStatus, invalidEvents, unavailable, type FieldError } from './http-error.js';
import { BatchBody } from './batch-body.js';
import { scanBatch } from './batch-scan.js';
import { eventColumns, type EventColumns } from './event-columns.js';
import { jsonDepthExceeded } from './json-depth.js';
import { noteIngestEvents } from './metrics/http-metrics.js';
import { parseJson, readBodyBytes, readBodyText, requireContentType, tooDeep } from './read-body.js';
import { ARROW_STREAM_TYPE, routeArrowEvents, validateArrowEvents } from './arrow-ingest/arrow-events.js';
import { RingRoom } from './ring-room.js';
import { IngestAcks, type AckTicket, type IngestAnswer } from './ingest-ack.js';
import { MAX_REPORTED_ERRORS, validateBatch, validateEvent } from './validate-event.js';

/** One event per line; a line nested deeper than `maxDepth` rejects the request before any parse. */
function parseNdjson(text: string, maxDepth: number): { raws: unknown[]; errors: FieldError[] } {
  const raws: unknown[] = [];
  const errors: FieldError[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const deep = jsonDepthExceeded(line, maxDepth);
    if (deep >= 0) throw tooDeep(maxDepth, deep, { number: i + 1, index: raws.length });
    try {
      raws.push(JSON.parse(line));
    } catch (err) {
      if (errors.length < MAX_REPORTED_ERRORS) errors.push({ index: raws.length, field: '(line)', reason: `line ${i + 1} is not valid JSON: ${(err as Error).message}` });
      raws.push(undefined);
    }
  }
  return { raws, errors };
}

export function makeIngestApp(ctx: EngineContext): Hono {
  const app = new Hono();
  const { config, metrics, writer } = ctx;
  // ?wait=true and Idempotency-Key (ingest-ack.ts); without the engine's key store, keys answer 503
  const acks = ctx.acks ?? new IngestAcks(ctx, null);
  const answer = (c: Context, ack: AckTicket | null, body: IngestAnswer) => (ack ? ack.answer(c, body) : c.json(body, 202));

  app.use('*', async (c, next) => {
    if (ctx.stopping && c.req.path.startsWith('/ingest')) throw unavailable('engine is shutting down; nothing of this request was stored', 5);
    await next();
  });

  /**
   * Validates and writes; counts the outcome either way. `validated`: the events as columns
   * already (the batch route validates before counting them), or null when they are not valid.
   */
  const store = async (raws: unknown[], started: number, preErrors: FieldError[], ack: AckTicket | null, validated?: { columns: EventColumns | null; receivedAt: number; levels: number }): Promise<IngestAnswer> => {
    if (raws.length === 0) throw badRequest('no events in request', [{ field: 'events', reason: 'empty batch' }]);
    if (raws.length > config.maxBatchEvents) {
      metrics.recordRejected(raws.length, true);
      throw badRequest(`batch of ${raws.length} events exceeds maxBatchEvents (${config.maxBatchEvents})`, [
        { field: 'events', reason: `more than ${config.maxBatchEvents} events` },
      ]);
    }
    const receivedAt = validated?.receivedAt ?? Date.now();
    // Valid events go straight into column blocks (event-columns.ts); a request with any invalid
    // event is validated again by validateBatch, which names every error.
    const levels = validated?.levels ?? config.maxJsonDepth - 1;
    const columnsOf = () => eventColumns(raws, receivedAt, config.maxFutureSkew, ctx.shards.length, levels);
    const columns = validated ? validated.columns : preErrors.length === 0 ? columnsOf() : null;
    const result = columns === null ? validateBatch(raws, receivedAt, config.maxFutureSkew) : null;
    if (preErrors.length > 0 || (result !== null && 'errors' in result)) {
      const errors = [...preErrors, ...(result !== null && 'errors' in result ? result.errors.filter((e) => raws[e.index ?? -1] !== undefined) : [])];
      metrics.recordRejected(raws.length, true);
      // An unparseable NDJSON line is one error, reported as the line's error instead of '(event)'.
      throw invalidEvents(errors.slice(0, MAX_REPORTED_ERRORS), result !== null && 'errors' in result ? result.total : preErrors.length);
    }
    // (validateBatch accepting what eventColumns refused would be a bug there: still stored, the old way)
    if (columns === null) return written(raws.length, started, () => writer.write((result as { events: EncodableEvent[] }).events, ack?.opts));
    return pushColumns(raws.length, started, ack, (first) => (first ? columns : columnsOf()!));
  };

  // Bulk requests that find a ring full wait for room a little (ring-room.ts): Arrow and JSON batches.
  const room = new RingRoom(ctx.shards.map((s) => s.ring), ctx.config.ringWaitMs);

  /**
   * Pushes a JSON request's valid events as column blocks: `columns(true)` gives them as made
   * for validation, `columns(false)` makes them again after a wait (columns and staging are
   * scratch shared by every request). A request that finds a ring without room for its part
   * waits for it as an Arrow request does, first come first served (ring-room.ts), then is
   * pushed or refused with the writer's 503. One with an Idempotency-Key (its key's state may
   * move while it waits), or whose part is larger than a whole ring, gets its 503 at once.
   */
  const pushColumns = async (count: number, started: number, ack: AckTicket | null, columns: (first: boolean) => EventColumns): Promise<IngestAnswer> => {
    let total = writer.stageColumns([columns(true)], ack?.opts);
    const need = writer.stagedBytes();
    if (!ack?.opts.keyed && (room.waiting > 0 || !room.fits(need)) && room.canEverFit(need)) {
      await room.wait(need);
      if (ctx.stopping) {
        metrics.recordRejected(count, false);
        throw unavailable('engine is shutting down; nothing of this request was stored', 5);
      }
      total = writer.stageColumns([columns(false)], ack?.opts);
    }
    return written(count, started, () => writer.commitStaged(total, ack?.opts ?? {}, false));
  };

  /** Writes `count` valid events (`write` pushes them) and counts the outcome either way. */
  const written = (count: number, started: number, write: () => number): IngestAnswer => {
    let pushed: number;
    try {
      pushed = write();
    } catch (err) {
      metrics.recordRejected(count, false);
      throw err;
    }
    const latency = performance.now() - started;
    metrics.recordAccepted(pushed, latency);
    return { accepted: count, buffered: writer.buffered(), timestamp: new Date().toISOString(), latency };
  };

  app.post('/ingest', async (c) => {
    const started = performance.now();
    requireContentType(c, ['application/json']);
    const text = await readBodyText(c, config.maxBodyBytes);
    const ack = acks.begin(c, '/ingest', text);
    if (ack instanceof Response) return ack;
    const body = parseJson(text, config.maxJsonDepth);
    noteIngestEvents(c, 1);
    const errors: FieldError[] = [];
    const event = validateEvent(body, Date.now(), errors, undefined, config.maxFutureSkew);
    if (!event) {
      metrics.recordRejected(1, true);
      throw invalidEvents(errors, errors.length);
    }
    metrics.recordAccepted(writer.write([event], ack?.opts), performance.now() - started);
    return answer(c, ack, { accepted: 1, buffered: writer.buffered(), timestamp: new Date().toISOString() });
  });

  app.post('/ingest/batch', async (c) => {
    const started = performance.now();
    requireContentType(c, ['application/json']);
    const bytes = await readBodyBytes(c, config.maxBodyBytes);
    // as text only when needed (a key's hash, the parse path): the scan path reads the bytes
    let text: string | undefined;
    const textOf = () => (text ??= bytes.toString('utf8'));
    const ack = acks.begin(c, '/ingest/batch', textOf);
    if (ack instanceof Response) return ack;
    const receivedAt = Date.now();
    // The bodies clients send most are read straight into columns (batch-scan.ts) ...
    const scanned = scanBatch(bytes, receivedAt, config.maxFutureSkew, ctx.shards.length, config.maxJsonDepth);
    const count = scanned?.order.order.length ?? 0;
    if (scanned !== null && count <= config.maxBatchEvents) {
      noteIngestEvents(c, count);
      const scanAgain = () => scanBatch(bytes, receivedAt, config.maxFutureSkew, ctx.shards.length, config.maxJsonDepth)!;
      return answer(c, ack, await pushColumns(count, started, ack, (first) => (first ? scanned : scanAgain())));
    }
    // ... others are parsed before their depth is known: validation proves it shallow, or the
    // text is scanned before anything is refused or counted (batch-body.ts)
    const batch = BatchBody.parse(textOf(), config.maxJsonDepth);
    const { raws } = batch;
    const columns = raws.length > 0 && raws.length <= config.maxBatchEvents ? eventColumns(raws, receivedAt, config.maxFutureSkew, ctx.shards.length, batch.metadataLevels) : null;
    batch.confirmDepth(columns?.containers ?? -1);
    noteIngestEvents(c, raws.length);
    return answer(c, ack, await store(raws, started, [], ack, { columns, receivedAt, levels: batch.metadataLevels }));
  });

  app.post('/ingest/ndjson', async (c) => {
    const started = performance.now();
    requireContentType(c, ['application/x-ndjson', 'application/ndjson', 'application/jsonl']);
    const text = await readBodyText(c, config.maxBodyBytes);
    const ack = acks.begin(c, '/ingest/ndjson', text);
    if (ack instanceof Response) return ack;
    const { raws, errors } = parseNdjson(text, config.maxJsonDepth);
    noteIngestEvents(c, raws.length);
    return answer(c, ack, await store(raws, started, errors, ack));
  });

  app.post('/ingest/arrow', async (c) => {
    const started = performance.now();
    requireContentType(c, [ARROW_STREAM_TYPE]);
    const body = await readBodyBytes(c, config.maxBodyBytes);
    let ack = acks.begin(c, '/ingest/arrow', body);
    if (ack instanceof Response) return ack;
    let routed;
    try {
      routed = routeArrowEvents(body, ctx.shards.length);
    } catch (err) {
      metrics.recordRejected(0, true);
      throw err;
    }
    noteIngestEvents(c, routed.rows);
    let decoded;
    try {
      if (room.waiting > 0 || !room.fits(routed.minBytes)) {
        await room.wait(routed.minBytes);
        if (ctx.stopping) throw unavailable('engine is shutting down; nothing of this request was stored', 5);
        // the key may have moved on while this request waited: read it again (nothing awaits from here to the write)
        ack = acks.begin(c, '/ingest/arrow', body);
        if (ack instanceof Response) return ack;
      }
      writer.checkRoom(routed.minBytes, ack?.opts);
      decoded = validateArrowEvents(routed, { receivedAt: Date.now(), maxFutureSkewMs: config.maxFutureSkew, maxJsonDepth: config.maxJsonDepth });
    } catch (err) {
      // refused for room, or a shard down or out of storage: nothing checked, nothing stored
      metrics.recordRejected(routed.rows, errorStatus(err) < 500);
      throw err;
    }
    if ('invalid' in decoded) {
      metrics.recordRejected(decoded.rows, true);
      throw decoded.invalid;
    }
    let written: number;
    try {
      written = writer.writeColumns(decoded.chunks, ack?.opts);
    } catch (err) {
      metrics.recordRejected(decoded.rows, false);
      throw err;
    }
    const latency = performance.now() - started;
    metrics.recordAccepted(written, latency);
    return answer(c, ack, { accepted: decoded.rows, buffered: writer.buffered(), timestamp: new Date().toISOString(), latency });
  });

  app.get('/metrics/ingestion', (c) => c.json(metrics.snapshot()));

  app.get('/status/buffer', (c) => {
    const shards = ctx.shards.map((s) => ({
      shard: s.shard,
      size: s.ring.usedBytes(),
      capacity: s.ring.capacity(),
      utilization: s.ring.usedBytes() / s.ring.capacity(),
      events: s.ring.pushed() - s.ring.consumed(),
    }));
    const size = shards.reduce((n, s) => n + s.size, 0);
    const capacity = shards.reduce((n, s) => n + s.capacity, 0);
    return c.json({ size, capacity, utilization: size / capacity, buffered_events: writer.buffered(), shards });
  });

  return app;
}
