/**
 * Shard actor: the worker-thread entry. Owns its ring (consumer side), its column builder and
 * its polars process; all state here is touched only by this thread. Requests arrive as messages
 * (protocol.ts) and are handled between drain passes, so they never race the drain loop.
 *
 * Never imports main-thread modules: only the ring, the record codec, the builder, the polars
 * client and the protocol types.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ColumnBuilder } from './column-builder.js';
import { PolarsProcess } from './polars-process.js';
import { decodeRecord } from './ring-record.js';
import { ShardRing, ShardState } from './shard-ring.js';
import { ShardError } from './shard-errors.js';
import type { CustomListResult, ShardEvent, ShardRequest, ShardResponse, ShardStats, ShardWorkerData } from './protocol.js';

const data = workerData as ShardWorkerData;
const port = parentPort!;
const ring = new ShardRing(data.buffers);
const builder = new ColumnBuilder();

// Pop scratch: records never straddle a push, but a pop of `scratch.length` bytes can end in the
// middle of one, so an incomplete tail is moved to the front and completed by the next pop.
const scratch = new Uint8Array(1 << 20);
const scratchView = new DataView(scratch.buffer);
let scratchLen = 0;

// Rows sealed but not yet acknowledged by polars. Above this many bytes the loop stops draining,
// so a slow polars process fills the ring and ingest answers 503 instead of buffering unboundedly.
const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;
let inflightBytes = 0;
let inflight: Promise<unknown> = Promise.resolve();
let inflightDone: (() => void) | null = null;

const stats = {
  eventsReceived: 0,
  rowsHeld: 0,
  rowsHanded: 0,
  batchesSealed: 0,
  lastSealMs: null as number | null,
  lastSealAgeMs: null as number | null,
  queriesServed: 0,
  errors: 0,
  lastError: null as string | null,
};
let running = true;

function emit(event: ShardEvent): void {
  port.postMessage(event);
}

function log(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
  emit(fields ? { type: 'log', level, msg, fields } : { type: 'log', level, msg });
}

function noteError(err: unknown): void {
  stats.errors++;
  stats.lastError = err instanceof Error ? err.message : String(err);
}

const polars = new PolarsProcess({
  shard: data.shard,
  timeoutMs: data.polarsTimeoutMs,
  onStderr: (line) => log('info', 'polars', { line }),
  onExit: (err) => {
    noteError(err);
    ring.setState(ShardState.FAILED);
    const unsent = builder.rows + (ring.pushed() - ring.consumed());
    log('error', err.message, { code: err.code, rows_not_handed_to_polars: unsent });
    emit({ type: 'failed', code: err.code, message: err.message });
  },
});

/** Pops and decodes what the ring holds. With `all`, ignores the in-flight limit. */
function drain(all: boolean): void {
  for (;;) {
    if (!all && inflightBytes > MAX_INFLIGHT_BYTES) return;
    const popped = ring.ring.pop(scratch, scratch.length - scratchLen, scratchLen);
    if (popped === 0) return;
    const end = scratchLen + popped;
    let offset = 0;
    let records = 0;
    for (;;) {
      const rec = decodeRecord(scratchView, offset, end);
      if (rec === null) break;
      builder.append(scratch, rec);
      records++;
      offset = rec.next;
      if (builder.rows >= data.maxBatchRows) seal();
    }
    scratch.copyWithin(0, offset, end);
    scratchLen = end - offset;
    stats.eventsReceived += records;
    ring.addConsumed(records);
  }
}

/** Seals the builder's rows and hands them to polars (answered in order, not awaited here). */
function seal(): void {
  const started = performance.now();
  const now = Date.now();
  const batch = builder.seal();
  if (!batch) return;
  stats.batchesSealed++;
  stats.lastSealAgeMs = now - batch.firstRowAt;
  stats.lastSealMs = performance.now() - started;
  const bytes = batch.ipc.byteLength;
  inflightBytes += bytes;
  const sent = polars.request('append', undefined, batch.ipc).then(
    (reply) => {
      stats.rowsHeld = Number(reply.header.rows);
      stats.rowsHanded += batch.rows;
    },
    (err: unknown) => noteError(err),
  );
  inflight = Promise.all([inflight, sent]).then(() => undefined);
  void sent.finally(() => {
    inflightBytes -= bytes;
    inflightDone?.();
  });
}

/** Everything in the ring and the builder goes to polars; resolves when polars has it. */
async function handOver(): Promise<void> {
  drain(true);
  seal();
  await inflight;
}

/**
 * Wakes every flushIntervalMs (or earlier when the producer finds the ring over a quarter full),
 * decodes everything in the ring and seals it, so an event reaches polars at most about one
 * flush interval after it was acknowledged. Queries don't wait for this: they drain on arrival.
 */
async function loop(): Promise<void> {
  while (running) {
    const seen = ring.signal();
    drain(false);
    seal();
    if (inflightBytes > MAX_INFLIGHT_BYTES) {
      await new Promise<void>((resolve) => (inflightDone = resolve));
      inflightDone = null;
      continue;
    }
    if (ring.usedBytes() * 4 > ring.capacity()) continue;
    await ring.waitForSignal(seen, data.flushIntervalMs);
  }
}

async function polarsStats(): Promise<{ pid: number | null; rss: number | null; chunks: number | null }> {
  if (!polars.alive) return { pid: null, rss: null, chunks: null };
  try {
    const reply = await polars.request('stats', undefined, undefined, Math.min(5000, data.polarsTimeoutMs));
    stats.rowsHeld = Number(reply.header.rows);
    return { pid: Number(reply.header.pid), rss: Number(reply.header.rss_bytes), chunks: Number(reply.header.chunks) };
  } catch (err) {
    noteError(err);
    return { pid: polars.pid ?? null, rss: null, chunks: null };
  }
}

function stateName(): ShardStats['state'] {
  switch (ring.state()) {
    case ShardState.READY:
      return 'ready';
    case ShardState.FAILED:
      return 'failed';
    case ShardState.STOPPED:
      return 'stopped';
    default:
      return 'starting';
  }
}

/** Enrichment and plugin ops go straight to polars: they touch no event rows, so no hand-over. */
function sidecar(op: 'enrich_upsert' | 'enrich_drop' | 'enrich_list' | 'custom_list', plan?: unknown, body?: Uint8Array) {
  if (!polars.alive) throw new ShardError('SHARD_DOWN', `shard ${data.shard}: polars process is not running`);
  return polars.request(op, plan, body);
}

async function handle(req: ShardRequest): Promise<ShardResponse> {
  switch (req.kind) {
    case 'query': {
      await handOver();
      if (!polars.alive) throw new ShardError('SHARD_DOWN', `shard ${data.shard}: polars process is not running`);
      const reply = await polars.request('query', req.plan);
      stats.queriesServed++;
      return { type: 'response', id: req.id, ok: true, result: { ipc: reply.body, rows: Number(reply.header.rows ?? 0) } };
    }
    case 'query_many': {
      await handOver();
      if (!polars.alive) throw new ShardError('SHARD_DOWN', `shard ${data.shard}: polars process is not running`);
      const reply = await polars.request('query_many', req.plans);
      stats.queriesServed++;
      return { type: 'response', id: req.id, ok: true, result: { ipc: reply.body, parts: (reply.header.parts as number[]) ?? [] } };
    }
    case 'flush': {
      await handOver();
      return { type: 'response', id: req.id, ok: true, result: { rows_handed_to_polars: stats.rowsHanded, rows_held: stats.rowsHeld } };
    }
    case 'stats': {
      const p = await polarsStats();
      const result: ShardStats = {
        shard: data.shard,
        state: stateName(),
        events_received: stats.eventsReceived,
        rows_held: stats.rowsHeld,
        rows_handed_to_polars: stats.rowsHanded,
        batches_sealed: stats.batchesSealed,
        last_seal_ms: stats.lastSealMs,
        last_seal_age_ms: stats.lastSealAgeMs,
        polars_pid: p.pid,
        polars_rss_bytes: p.rss,
        polars_chunks: p.chunks,
        queries_served: stats.queriesServed,
        errors: stats.errors,
        last_error: stats.lastError,
      };
      return { type: 'response', id: req.id, ok: true, result };
    }
    case 'enrich_upsert': {
      const reply = await sidecar('enrich_upsert', { table: req.table }, req.ipc);
      const h = reply.header;
      return { type: 'response', id: req.id, ok: true, result: { table: String(h.table), upserted: Number(h.upserted), rows: Number(h.rows), columns: h.columns as string[] } };
    }
    case 'enrich_drop': {
      const h = (await sidecar('enrich_drop', { table: req.table })).header;
      return { type: 'response', id: req.id, ok: true, result: { table: String(h.table), dropped: h.dropped === true, rows: Number(h.rows) } };
    }
    case 'enrich_list': {
      const reply = await sidecar('enrich_list');
      return { type: 'response', id: req.id, ok: true, result: { ipc: reply.body, rows: Number(reply.header.tables ?? 0) } };
    }
    case 'custom_list': {
      const h = (await sidecar('custom_list')).header;
      return { type: 'response', id: req.id, ok: true, result: { plugins: (h.plugins ?? []) as CustomListResult['plugins'], errors: (h.errors ?? []) as CustomListResult['errors'] } };
    }
    case 'shutdown': {
      running = false;
      await handOver();
      const reply = await polars.shutdown(data.polarsTimeoutMs);
      if (reply) stats.rowsHeld = Number(reply.header.rows);
      ring.setState(ShardState.STOPPED);
      log('info', 'shard stopped', { events_received: stats.eventsReceived, rows_handed_to_polars: stats.rowsHanded, rows_held: stats.rowsHeld });
      return {
        type: 'response',
        id: req.id,
        ok: true,
        result: {
          events_received: stats.eventsReceived,
          rows_handed_to_polars: stats.rowsHanded,
          rows_held: stats.rowsHeld,
          batches_sealed: stats.batchesSealed,
        },
      };
    }
  }
}

port.on('message', (req: ShardRequest) => {
  handle(req).then(
    (res) => {
      if (res.ok && (req.kind === 'query' || req.kind === 'query_many' || req.kind === 'enrich_list')) {
        const ipc = (res.result as { ipc: Uint8Array }).ipc;
        port.postMessage(res, [ipc.buffer as ArrayBuffer]);
      } else {
        port.postMessage(res);
      }
    },
    (err: unknown) => {
      noteError(err);
      const code = err instanceof ShardError ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      port.postMessage({ type: 'response', id: req.id, ok: false, error: { code, message } } satisfies ShardResponse);
    },
  );
});

polars
  .request('ping', undefined, undefined, 60_000)
  .then(() => {
    ring.setState(ShardState.READY);
    emit({ type: 'ready', pid: polars.pid });
  })
  .catch((err: unknown) => {
    noteError(err);
    ring.setState(ShardState.FAILED);
    emit({ type: 'failed', code: err instanceof ShardError ? err.code : 'INTERNAL', message: String((err as Error).message ?? err) });
  });

loop().catch((err: unknown) => {
  noteError(err);
  ring.setState(ShardState.FAILED);
  emit({ type: 'failed', code: 'INTERNAL', message: `drain loop crashed: ${(err as Error).message}` });
});
