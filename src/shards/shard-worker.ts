/**
 * Shard actor: the worker-thread entry. Owns its ring (consumer side), its column builder, its
 * log and its polars process (through polars-supervisor.ts); all state here is touched only by
 * this thread. Requests arrive as messages (protocol.ts) and are handled between drain passes,
 * so they never race the drain loop.
 *
 * Never imports main-thread modules: only the ring, the record codec, the builder, the log, the
 * polars client and the protocol types.
 */
import { resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { ColumnBuilder } from './column-builder.js';
import { IdleCollector } from '../workers/idle-gc.js';
import { FileShardLog } from './log/file-log.js';
import { checkDataDir } from './log/data-dir.js';
import { passStartGate } from './start-gate.js';
import { LogRecordType, encodeEnrichDrop, encodeEnrichUpsert, type ShardLog } from './log/shard-log.js';
import { nextRowOf } from './log/row-numbers.js';
import { PolarsSupervisor } from './polars-supervisor.js';
import { SegmentKeeper } from './segment-keeper.js';
import { RECORD_KIND_COLUMNS, RECORD_KIND_KEYED_PART, decodeKeyedPart, decodeRecord } from './ring-record.js';
import { decodeBlock } from './ring-block.js';
import { BatchKeys, keysOfBatchRecord } from './batch-keys.js';
import { DurableSettler } from './durable-settler.js';
import { ShardRing, ShardState } from './shard-ring.js';
import { ShardError, shardRestoring, shardTimeout } from './shard-errors.js';
import type { CustomListResult, ShardEvent, ShardRequest, ShardResponse, ShardWorkerData, ShardWorkerStats, StoredKey } from './protocol.js';

const data = workerData as ShardWorkerData;
const port = parentPort!;
const ring = new ShardRing(data.buffers);
const builder = new ColumnBuilder();
// Sealed batches (each one buffer: its log record and the pipe take it as it is) are garbage V8
// does not collect while the thread idles after a burst: collect once it goes quiet (workers/idle-gc.ts).
const idleGc = new IdleCollector();

// Pop scratch: records never straddle a push, but a pop of `scratch.length` bytes can end in the
// middle of one, so an incomplete tail is moved to the front and completed by the next pop.
const scratch = new Uint8Array(1 << 20);
const scratchView = new DataView(scratch.buffer);
let scratchLen = 0;

let log: ShardLog | null = null;
// Absolute row numbers (log order, from 0 across restarts): the first record this worker takes
// from its ring is row `runBase`, its n-th is `runBase + n`. The producer counts the same
// records in the ring's `pushed`, so a query's cut (a `pushed` value) maps to `runBase + cut`.
let runBase = 0;
/** records taken from the ring into the builder by this worker */
let ringRows = 0;
let polars: PolarsSupervisor | null = null;
let segments: SegmentKeeper | null = null;
// Idempotency keys of the parts in the builder (never sealed half-way), and what is settled.
const batchKeys = new BatchKeys();
const settler = new DurableSettler(ring, (event) => emit(event), (level, msg, fields) => say(level, msg, fields));
// Woken when polars acknowledges logged bytes: the loop waits for it while over the in-flight cap.
let progressWaiter: (() => void) | null = null;

const stats = {
  eventsReceived: 0,
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

function say(level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
  emit(fields ? { type: 'log', level, msg, fields } : { type: 'log', level, msg });
}

function noteError(err: unknown): void {
  stats.errors++;
  stats.lastError = err instanceof Error ? err.message : String(err);
}

function overCap(): boolean {
  return polars !== null && polars.inflightBytes > data.maxInflightBytes;
}

/**
 * When a drain last emptied the ring: every record pushed before it was taken, so a record
 * drained later was pushed (acknowledged) after it. Taken as the time of the builder's oldest row
 * when the builder gets its first row (`oldestPushedAfter`): sealing by the time a row was
 * drained instead let an acknowledged event wait up to two flush intervals (one asleep, one in
 * the builder) before it was sealed, logged and synced.
 */
let ringEmptiedAt = Date.now();
/** A time before which the builder's oldest row was not pushed (meaningless while it is empty). */
let oldestPushedAfter = 0;

/**
 * Pops and decodes what the ring holds. Stops while more than `maxInflightBytes` are logged and
 * not yet acknowledged by polars (a slow, hung or restoring polars fills the ring, and ingest
 * answers 503 rather than the shard buffering without bound); with `all`, ignores that cap.
 */
function drain(all: boolean): void {
  const startedAt = Date.now();
  const empty = builder.rows === 0;
  drainRing(all);
  if (empty && builder.rows > 0) oldestPushedAfter = ringEmptiedAt;
  if (ring.usedBytes() === 0) ringEmptiedAt = startedAt;
}

function drainRing(all: boolean): void {
  for (;;) {
    if (!all && overCap()) return;
    const popped = ring.ring.pop(scratch, scratch.length - scratchLen, scratchLen);
    if (popped === 0) return;
    const end = scratchLen + popped;
    let offset = 0;
    let records = 0;
    for (;;) {
      const rec = decodeRecord(scratchView, offset, end);
      if (rec === null) break;
      if (rec.kind === RECORD_KIND_KEYED_PART) {
        batchKeys.begin(decodeKeyedPart(scratch, scratchView, offset));
        offset = rec.next;
        continue;
      }
      if (rec.kind === RECORD_KIND_COLUMNS) {
        // Many events as columns (POST /ingest/arrow): copied into the builder whole.
        const block = decodeBlock(scratchView, offset, rec.body);
        builder.appendBlock(scratch, block);
        batchKeys.events(block.rows);
        ringRows += block.rows;
        records += block.rows;
        offset = rec.next;
        if (builder.rows >= data.maxBatchRows && !batchKeys.inPart) seal();
        continue;
      }
      builder.append(scratch, rec);
      batchKeys.event();
      ringRows++;
      records++;
      offset = rec.next;
      if (builder.rows >= data.maxBatchRows && !batchKeys.inPart) seal();
    }
    scratch.copyWithin(0, offset, end);
    scratchLen = end - offset;
    stats.eventsReceived += records;
    ring.addConsumed(records);
  }
}

/**
 * Seals the builder's rows into a batch and logs it; `commit()` syncs and hands it to polars.
 * Never in the middle of an Idempotency-Key part (the rest of it is in the ring: the next drain
 * completes it). A batch the log cannot take is dropped and reported (DurableSettler).
 */
function seal(): void {
  if (batchKeys.inPart) return;
  const started = performance.now();
  const now = Date.now();
  const batch = builder.seal(batchKeys.take());
  if (!batch) return;
  stats.batchesSealed++;
  stats.lastSealAgeMs = now - batch.firstRowAt;
  idleGc.note(batch.payload.byteLength);
  try {
    polars!.appendBatch(batch.payload, batch.rows, runBase + ringRows - batch.rows);
    settler.appended(log!.end, ringRows);
  } catch (err) {
    // the supervisor took back what was logged since the last sync (and told the settler)
    settler.dropped(ringRows, err);
  }
  stats.lastSealMs = performance.now() - started;
}

/** One sync for everything logged (group commit), then tells the main thread what is durable. */
async function commit(): Promise<void> {
  try {
    await polars!.commit();
  } catch (err) {
    // INSUFFICIENT_STORAGE: already taken back and reported; queries go on with what polars has
    if (!(err instanceof ShardError && err.code === 'INSUFFICIENT_STORAGE')) throw err;
  }
  settler.synced(polars!.durablePosition);
}

/** While the log fails: about once a second, checks whether it takes writes again. */
async function probeStorage(): Promise<void> {
  if (!settler.probeDue()) return;
  try {
    await polars!.probeStorage();
    settler.recovered();
  } catch {
    settler.probeFailed();
  }
}

/**
 * A query's visibility cut as an absolute row number (`rows_upto`: polars runs the plan over the
 * rows numbered below it). `cut` counts event records pushed into this ring, as `ringRows` counts
 * those taken out, so after a full drain every record below the cut is sealed and the cut is row
 * `runBase + cut`. Rows sealed later (by this query's drain or while it waits in polars' queue)
 * have higher numbers and stay out. Without a cut: everything drained so far.
 */
function cutRows(cut: number | undefined): number {
  if (cut === undefined) return runBase + ringRows;
  if (cut > ringRows) throw new ShardError('INTERNAL', `shard ${data.shard}: query cut at event ${cut} of the ring, but only ${ringRows} were taken from it`);
  return runBase + cut;
}

/**
 * Everything in the ring and the builder is logged, synced and acknowledged by polars. Returns
 * the ms spent draining, sealing and syncing (the rest is polars taking the appends).
 */
async function handOver(): Promise<number> {
  const started = performance.now();
  drain(true);
  seal();
  await commit();
  const synced = performance.now() - started;
  await polars!.waitAcked(log!.end);
  return synced;
}

/** Whether the rows in the builder are to be sealed at the end of this pass: the oldest may have been acknowledged a flush interval ago. */
function sealDue(): boolean {
  return builder.rows > 0 && Date.now() - oldestPushedAfter >= data.flushIntervalMs;
}

/** How long the loop may sleep: until the builder's oldest row may be a flush interval old. */
function sleepMs(): number {
  if (builder.rows === 0) return data.flushIntervalMs;
  return Math.max(1, data.flushIntervalMs - (Date.now() - oldestPushedAfter));
}

/**
 * Wakes every flushIntervalMs (or earlier when the producer finds the ring over a quarter full),
 * decodes everything in the ring into the builder, and seals it once its oldest row may have
 * been acknowledged a flush interval ago (`oldestPushedAfter`: at every pass when the shard only
 * wakes on its timer), at `maxBatchRows` (in `drain`), or at once when a producer asked (a
 * ?wait=true request: URGENT in shard-ring.ts); then commits (one sync per pass: group commit).
 * So an event is durable and in polars about one flush interval after it was acknowledged, as
 * when every pass sealed; but under load, when the ring's quarter-full wake-ups made passes every few ms, polars
 * got a batch per pass (median ~20,000 rows in bench:ingest's Arrow mode) and paid its fixed cost
 * per append each time (docs/PERFORMANCE.md). Queries don't wait for this: they drain and seal
 * on arrival (handOver).
 */
async function loop(): Promise<void> {
  // a producer's request for a seal, kept until everything drained up to it is sealed
  let urgent = false;
  while (running) {
    const seen = ring.signal();
    if (ring.takeUrgent()) urgent = true;
    drain(false);
    if (urgent || sealDue()) {
      seal();
      // not yet when the drain stopped at the in-flight cap (the waited-for records may still be
      // in the ring) or a keyed part is still coming
      if (builder.rows === 0 && ring.usedBytes() === 0) urgent = false;
    }
    await commit();
    if (overCap()) {
      await new Promise<void>((resolve) => (progressWaiter = resolve));
      progressWaiter = null;
      continue;
    }
    if (ring.usedBytes() * 4 > ring.capacity()) continue;
    if (settler.faulty) await probeStorage();
    await ring.waitForSignal(seen, sleepMs());
  }
}

function stateName(): ShardWorkerStats['state'] {
  switch (ring.state()) {
    case ShardState.READY:
      return 'ready';
    case ShardState.RESTORING:
      return 'restoring';
    case ShardState.FAILED:
      return 'failed';
    case ShardState.STOPPED:
      return 'stopped';
    default:
      return 'starting';
  }
}

function requirePolars(): PolarsSupervisor {
  if (!polars || !polars.serving) throw shardRestoring(data.shard, ring.state() === ShardState.STARTING ? 'starting' : 'polars process is being replaced');
  return polars;
}

/** Rejects with SHARD_TIMEOUT when `work` is not done by `deadline` (performance.now() ms). */
async function before<T>(work: Promise<T>, deadline: number, kind: string, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(shardTimeout(data.shard, kind, timeoutMs)), Math.max(0, deadline - performance.now()));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function workerStats(): Promise<ShardWorkerStats> {
  const p = polars ? await polars.processStats() : { pid: null, rss: null, chunks: null, partialCacheBytes: null };
  const c = polars?.counters;
  const l = log?.stats();
  return {
    shard: data.shard,
    state: stateName(),
    events_received: stats.eventsReceived,
    rows_held: c?.rowsHeld ?? 0,
    rows_handed_to_polars: c?.rowsHanded ?? 0,
    batches_sealed: stats.batchesSealed,
    last_seal_ms: stats.lastSealMs,
    last_seal_age_ms: stats.lastSealAgeMs,
    polars_pid: p.pid,
    polars_rss_bytes: p.rss,
    polars_chunks: p.chunks,
    polars_partial_cache_bytes: p.partialCacheBytes,
    polars_restarts: c?.restarts ?? 0,
    last_restore_ms: c?.lastRestoreMs ?? null,
    rows_restored: c?.rowsRestored ?? 0,
    log_bytes: l?.bytes ?? 0,
    log_records: l?.records ?? 0,
    torn_tail_records_cut: l?.tornRecordsCut ?? 0,
    last_fsync_ms: l?.lastSyncMs ?? null,
    segments: segments?.stats.segments ?? 0,
    segment_bytes: segments?.stats.segmentBytes ?? 0,
    rows_in_segments: segments?.stats.rowsInSegments ?? 0,
    rows_dropped_by_retention: segments?.stats.rowsDroppedByRetention ?? 0,
    last_roll_ms: segments?.stats.lastRollMs ?? null,
    events_durable: settler.eventsSettled,
    events_dropped_storage: settler.eventsDropped,
    storage_error: settler.error,
    queries_served: stats.queriesServed,
    queries_cancelled: c?.queriesCancelled ?? 0,
    errors: stats.errors,
    last_error: stats.lastError,
  };
}

async function handle(req: ShardRequest): Promise<ShardResponse> {
  switch (req.kind) {
    case 'query':
    case 'query_many': {
      // The deadline counts from here: the main thread sent what was left after its queue.
      const started = performance.now();
      const deadline = started + req.timeoutMs;
      const p = requirePolars();
      const syncMs = await before(handOver(), deadline, req.kind, req.timeoutMs);
      const rowsUpto = cutRows(req.cut);
      const sent = performance.now();
      const reply =
        req.kind === 'query'
          ? await p.query('query', { ...req.plan, rows_upto: rowsUpto }, req.body, deadline)
          : await p.query('query_many', req.plans.map((plan) => ({ ...plan, rows_upto: rowsUpto })), undefined, deadline);
      stats.queriesServed++;
      const timing = { handover_ms: sent - started, sync_ms: syncMs, polars_ms: performance.now() - sent, op_ms: Number(reply.header.op_ms ?? 0), op_cpu_ms: Number(reply.header.op_cpu_ms ?? 0) };
      if (req.kind === 'query') return { type: 'response', id: req.id, ok: true, result: { ipc: reply.body, rows: Number(reply.header.rows ?? 0), timing } };
      return { type: 'response', id: req.id, ok: true, result: { ipc: reply.body, parts: (reply.header.parts as number[]) ?? [], timing } };
    }
    case 'stats':
      return { type: 'response', id: req.id, ok: true, result: await workerStats() };
    case 'enrich_upsert': {
      const reply = await requirePolars().enrichment(LogRecordType.ENRICH_UPSERT, encodeEnrichUpsert(req.table, req.ipc));
      const h = reply.header;
      return { type: 'response', id: req.id, ok: true, result: { table: String(h.table), upserted: Number(h.upserted), rows: Number(h.rows), columns: h.columns as string[] } };
    }
    case 'enrich_drop': {
      const h = (await requirePolars().enrichment(LogRecordType.ENRICH_DROP, encodeEnrichDrop(req.table))).header;
      return { type: 'response', id: req.id, ok: true, result: { table: String(h.table), dropped: h.dropped === true, rows: Number(h.rows) } };
    }
    case 'enrich_list': {
      const reply = await requirePolars().request('enrich_list');
      return { type: 'response', id: req.id, ok: true, result: { ipc: reply.body, rows: Number(reply.header.tables ?? 0) } };
    }
    case 'custom_list': {
      const h = (await requirePolars().request('custom_list')).header;
      return { type: 'response', id: req.id, ok: true, result: { plugins: (h.plugins ?? []) as CustomListResult['plugins'], errors: (h.errors ?? []) as CustomListResult['errors'] } };
    }
    case 'shutdown': {
      running = false;
      progressWaiter?.();
      let rowsHeld = polars?.counters.rowsHeld ?? 0;
      if (polars) {
        drain(true);
        seal();
        await commit();
        rowsHeld = (await polars.shutdown(data.polarsTimeoutMs)) ?? rowsHeld;
      }
      ring.setState(ShardState.STOPPED);
      const rowsHanded = polars?.counters.rowsHanded ?? 0;
      say('info', 'shard stopped', { events_received: stats.eventsReceived, rows_handed_to_polars: rowsHanded, rows_held: rowsHeld });
      return {
        type: 'response',
        id: req.id,
        ok: true,
        result: { events_received: stats.eventsReceived, rows_handed_to_polars: rowsHanded, rows_held: rowsHeld, batches_sealed: stats.batchesSealed },
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

function fail(code: string, message: string): void {
  ring.setState(ShardState.FAILED);
  emit({ type: 'failed', code, message });
}

/** Data dir check, log open (cutting a torn tail), first polars process; then the replay runs on. */
async function start(): Promise<void> {
  if (data.startGate && !(await passStartGate(data.startGate))) throw new ShardError('SHARD_DOWN', `shard ${data.shard}: not started, the data dir could not be re-partitioned`);
  const dir = checkDataDir(data.dataDir, data.shards, data.shard);
  const storedKeys = new Map<string, StoredKey>();
  const opened = await FileShardLog.open({
    dir,
    maxFileBytes: data.logFileBytes,
    onCut: (cut) => say('warn', 'shard log: torn or corrupt tail cut at the last good record', { ...cut }),
    onRecord: (type, payload) => {
      for (const k of keysOfBatchRecord(type, payload)) storedKeys.set(k.key, k);
    },
  });
  // Sent before `started`: the main thread knows which logged requests had a key before it serves.
  emit({ type: 'keys', keys: [...storedKeys.values()] });
  storedKeys.clear();
  log = opened;
  runBase = await nextRowOf(opened);
  const s = opened.stats();
  if (s.records > 0) say('info', 'shard log opened', { log_records: s.records, log_bytes: s.bytes });
  segments = new SegmentKeeper({
    shardDir: resolve(dir),
    shardLog: opened,
    segmentRows: data.segmentRows,
    retentionMs: data.retentionMs,
    say,
    noteError,
  });
  polars = new PolarsSupervisor({
    shard: data.shard,
    shardLog: opened,
    polarsTimeoutMs: data.polarsTimeoutMs,
    partialCache: data.partialCache ?? true,
    fsync: data.fsync === 'batch',
    onState: (state, pid) => {
      if (ring.state() === ShardState.STOPPED || ring.state() === ShardState.FAILED) return;
      ring.setState(state === 'ready' ? ShardState.READY : ShardState.RESTORING);
      emit({ type: 'state', state, pid });
    },
    onProgress: () => {
      idleGc.note(0); // acknowledged appends: their buffers are garbage now
      progressWaiter?.();
    },
    onStorageError: (cause, durableEnd) => settler.failed(cause, durableEnd),
    say,
    noteError,
    segments,
  });
  const supervisor = polars;
  segments.startRetention(() => supervisor.liveProcess);
  const state = await polars.start();
  if (state === 'ready') ring.setState(ShardState.READY);
  emit({ type: 'started', pid: polars.pid ?? undefined });
  loop().catch((err: unknown) => {
    noteError(err);
    fail('INTERNAL', `drain loop crashed: ${(err as Error).message}`);
  });
}

start().catch((err: unknown) => {
  noteError(err);
  fail(err instanceof ShardError ? err.code : 'INTERNAL', err instanceof Error ? err.message : String(err));
});
