/**
 * Worker side: keeps one polars process fed from the shard log, and rebuilds it from the log
 * when it dies (crash, kill -9 from outside, or killed by us to cancel a query or end a hang).
 *
 * The log is the truth; polars holds a copy. Every record (sealed event batch, enrichment upsert
 * or drop) is appended to the log, made durable by one sync per drain pass (group commit), and
 * only then sent to polars, in log order. Positions tell what polars has:
 *
 *   log.start ........ ackedEnd ........ durableEnd ........ log.end
 *                 acknowledged     sent or waiting      not yet synced
 *
 * Records logged but not yet sent to the current process wait in `queued` (in memory, bounded
 * by the shard's in-flight cap). A restore spawns a process, replays the log from its start up
 * to the first queued record (everything before it is in the file and was sent to an earlier
 * process, acknowledged or not), then sends the queue: every record reaches the new process
 * exactly once and in order, whatever arrived while it was replaying. `ackedEnd` only grows, so
 * bytes in flight (the ingest backpressure) are released only when some polars process has
 * acknowledged them, directly or through a replay.
 */
import { readFileSync } from 'node:fs';
import { PolarsProcess, type PolarsExit, type PolarsReply } from './polars-process.js';
import { ShardError, insufficientStorage, shardRestoring } from './shard-errors.js';
import type { SidecarOp } from './sidecar-protocol.js';
import { LogRecordType, decodeEnrichDrop, decodeEnrichUpsert, decodeNumberedBatch, numberedBatchIn, type LogRecordTypeValue, type ShardLog } from './log/shard-log.js';
import { RowNumbering } from './log/row-numbers.js';
import type { SegmentKeeper } from './segment-keeper.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

export interface PolarsSupervisorOptions {
  shard: number;
  shardLog: ShardLog;
  /** busy-time limit of appends, enrichment ops, stats and ping (a hang), ms */
  polarsTimeoutMs: number;
  /** the polars processes keep cached partials (config `partialCache`); absent: true */
  partialCache?: boolean;
  /** fdatasync the log before handing records to polars */
  fsync: boolean;
  onState: (state: 'restoring' | 'ready', pid: number | undefined) => void;
  /** acknowledged bytes went down: the drain loop may go on */
  onProgress: () => void;
  /**
   * A log write or sync failed: everything logged after `durableEnd` was taken back (it never
   * reached polars) and the log ends there again.
   */
  onStorageError?: (cause: unknown, durableEnd: number) => void;
  say: (level: Level, msg: string, fields?: Record<string, unknown>) => void;
  noteError: (err: unknown) => void;
  /**
   * The segment files: every (re)start loads them first and replays only the log after them;
   * appends' answers may trigger a roll (segment-keeper.ts). Without it the whole log is replayed.
   */
  segments?: SegmentKeeper;
}

interface Outcome {
  resolve: (r: PolarsReply) => void;
  reject: (e: Error) => void;
}

/** A record in the log, as the supervisor sends it. */
interface Sendable {
  position: number;
  next: number;
  type: LogRecordTypeValue;
  payload: Uint8Array;
  /** who waits for polars' answer to this record (enrichment requests) */
  outcome?: Outcome;
  /** a legacy EVENT_BATCH's first row number, counted by the replay (NUMBERED_BATCH carries its own) */
  firstRow?: number;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;
const HEALTHY_MS = 60_000;
const PING_TIMEOUT_MS = 60_000;
/** replay keeps at most this many bytes written to the pipe and not acknowledged */
const REPLAY_WINDOW_BYTES = 32 * 1024 * 1024;
const PROGRESS_EVERY_MS = 1000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function requestFor(rec: Sendable): { op: SidecarOp; plan?: unknown; body?: Uint8Array; fields?: Record<string, unknown> } {
  switch (rec.type) {
    case LogRecordType.NUMBERED_BATCH: {
      const { firstRow, ipc } = decodeNumberedBatch(rec.payload);
      return { op: 'append', body: ipc, fields: { first_row: firstRow } };
    }
    case LogRecordType.EVENT_BATCH:
      return { op: 'append', body: rec.payload, fields: { first_row: rec.firstRow ?? 0 } };
    case LogRecordType.ENRICH_UPSERT: {
      const { table, ipc } = decodeEnrichUpsert(rec.payload);
      return { op: 'enrich_upsert', plan: { table }, body: ipc };
    }
    case LogRecordType.ENRICH_DROP:
      return { op: 'enrich_drop', plan: decodeEnrichDrop(rec.payload) };
  }
}

const isBatch = (type: LogRecordTypeValue) => type === LogRecordType.NUMBERED_BATCH || type === LogRecordType.EVENT_BATCH;

/** An error that means polars never processed the request (as opposed to answering an error). */
const unanswered = (err: unknown) => err instanceof ShardError && (err.code === 'POLARS_DIED' || err.code === 'POLARS_TIMEOUT');

function rssOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export class PolarsSupervisor {
  private proc: PolarsProcess | null = null;
  /** the current process has the whole log up to what was sent to it: new records go straight on */
  private live = false;
  /** bumped at every death: a restore or a callback of an older process sees it and stops */
  private generation = 0;
  private readonly queued: Sendable[] = [];
  /** records logged this run and not acknowledged yet (bytes in flight, rows for the stats) */
  private readonly unacked: Array<{ next: number; bytes: number; rows: number }> = [];
  private unackedBytes = 0;
  private ackedEnd: number;
  private durableEnd: number;
  private waiters: Array<{ position: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private backoffMs = FIRST_BACKOFF_MS;
  private liveSince = 0;
  private stopping = false;
  /** a failed write or sync left bytes after `durableEnd` that could not be cut yet: nothing may be appended */
  private unrepaired: unknown = null;
  private chunks: number | null = null;
  private partialCacheBytes: number | null = null;
  readonly counters = {
    restarts: 0,
    lastRestoreMs: null as number | null,
    rowsRestored: 0,
    rowsHanded: 0,
    rowsHeld: 0,
    queriesCancelled: 0,
  };

  constructor(private readonly options: PolarsSupervisorOptions) {
    // What an earlier run logged counts as acknowledged: it is durable, and holding ingest back
    // until a long start-up replay reaches it would only stall the ring.
    this.ackedEnd = options.shardLog.end;
    this.durableEnd = options.shardLog.end;
  }

  /** Bytes of records logged and not yet acknowledged by polars. */
  get inflightBytes(): number {
    return this.unackedBytes;
  }

  /** Restored and serving: queries may go to polars. */
  get serving(): boolean {
    return this.live && this.proc !== null;
  }

  get pid(): number | null {
    return this.proc?.pid ?? null;
  }

  /** The process, while it is restored and serving (null while restoring). */
  get liveProcess(): PolarsProcess | null {
    return this.live && this.proc?.alive ? this.proc : null;
  }

  /**
   * Spawns the first process and waits for its first answer (a failure here fails the shard's
   * start-up), then replays the log into it in the background. Resolves once polars answers:
   * `'ready'` when the log was empty, `'restoring'` while the replay runs.
   */
  async start(): Promise<'ready' | 'restoring'> {
    const gen = this.generation;
    const proc = this.spawn(gen);
    try {
      await proc.request('ping', undefined, undefined, { timeoutMs: PING_TIMEOUT_MS });
    } catch (err) {
      // start-up failure: the shard fails, nothing is respawned
      this.stopping = true;
      proc.abandon();
      throw err;
    }
    if (this.options.shardLog.end === this.options.shardLog.start && !this.options.segments) {
      this.goLive(gen, 0, 0, performance.now(), false);
      return 'ready';
    }
    void this.replay(gen, performance.now());
    return 'restoring';
  }

  /**
   * Logs a sealed batch (`payload`: its IPC stream behind `NUMBERED_HEAD_BYTES` of room, see
   * `SealedBatch`) whose first row has the absolute number `firstRow`; it reaches polars (as an
   * `append` carrying `first_row`) after the next `commit()`. The head is written into the room:
   * the stream is not copied.
   */
  appendBatch(payload: Uint8Array, rows: number, firstRow: number): void {
    this.logRecord(LogRecordType.NUMBERED_BATCH, numberedBatchIn(payload, firstRow, rows), rows);
  }

  /**
   * Logs an enrichment op, commits, and resolves with polars' answer to it. Refused while
   * restoring (the client retries; nothing is logged then).
   */
  async enrichment(type: typeof LogRecordType.ENRICH_UPSERT | typeof LogRecordType.ENRICH_DROP, payload: Uint8Array): Promise<PolarsReply> {
    this.requireServing();
    const reply = new Promise<PolarsReply>((resolve, reject) => this.logRecord(type, payload, 0, { resolve, reject }));
    await this.commit();
    return reply;
  }

  /** Position up to which the log is synced (fsync "off": written); records before it reach polars. */
  get durablePosition(): number {
    return this.durableEnd;
  }

  /**
   * Group commit: one sync for everything logged so far, then hands the durable records to
   * polars. A failed sync takes back everything logged since the last good one and throws
   * INSUFFICIENT_STORAGE.
   */
  async commit(): Promise<void> {
    const target = this.options.shardLog.end;
    if (target <= this.durableEnd) return;
    if (this.options.fsync) {
      try {
        await this.options.shardLog.sync();
      } catch (err) {
        throw this.storageFailed(err);
      }
    }
    if (target > this.durableEnd) this.durableEnd = target;
    this.pump();
  }

  /** Resolves when polars has acknowledged everything logged before `position`; rejects if it dies first. */
  waitAcked(position: number): Promise<void> {
    if (this.ackedEnd >= position) return Promise.resolve();
    if (!this.live) return Promise.reject(shardRestoring(this.options.shard, 'polars process is being replaced'));
    return new Promise((resolve, reject) => this.waiters.push({ position, resolve, reject }));
  }

  /** A query (or query_many) with an absolute deadline; polars is killed if it is not answered by then. */
  async query(op: 'query' | 'query_many', plan: unknown, body: Uint8Array | undefined, deadline: number): Promise<PolarsReply> {
    const proc = this.requireServing();
    try {
      return await proc.request(op, plan, body, { deadline });
    } catch (err) {
      throw this.asRestoring(err);
    }
  }

  /** A request that touches no log record (enrich_list, custom_list, ping). */
  async request(op: SidecarOp, plan?: unknown, timeoutMs?: number): Promise<PolarsReply> {
    const proc = this.requireServing();
    try {
      return await proc.request(op, plan, undefined, timeoutMs === undefined ? {} : { timeoutMs });
    } catch (err) {
      throw this.asRestoring(err);
    }
  }

  /** pid, RSS (read from /proc, so it answers while polars is busy) and chunks (asked only when idle). */
  async processStats(): Promise<{ pid: number | null; rss: number | null; chunks: number | null; partialCacheBytes: number | null }> {
    const proc = this.proc;
    if (proc && this.live && proc.alive && proc.waiting === 0) {
      try {
        const reply = await proc.request('stats');
        this.chunks = Number(reply.header.chunks);
        this.partialCacheBytes = typeof reply.header.partial_cache_bytes === 'number' ? reply.header.partial_cache_bytes : null;
        this.counters.rowsHeld = Number(reply.header.rows);
        this.options.segments?.noteStats(reply.header);
      } catch (err) {
        this.options.noteError(err);
      }
    }
    return { pid: proc?.pid ?? null, rss: rssOf(proc?.pid), chunks: this.chunks, partialCacheBytes: this.partialCacheBytes };
  }

  /**
   * Engine stop: waits (up to `timeoutMs`) until polars has everything, asks it to exit and
   * closes the log. A shard that is restoring just stops: its data is in the log.
   * @returns the rows polars held at the end, or null when it was not serving.
   */
  async shutdown(timeoutMs: number): Promise<number | null> {
    this.stopping = true;
    this.options.segments?.stop();
    const proc = this.proc;
    let rows: number | null = null;
    if (proc && this.live) {
      try {
        await Promise.race([
          this.waitAcked(this.options.shardLog.end),
          sleep(timeoutMs).then(() => Promise.reject(new Error(`polars did not acknowledge the log within ${timeoutMs} ms`))),
        ]);
        const reply = await proc.shutdown(timeoutMs);
        if (reply) rows = this.counters.rowsHeld = Number(reply.header.rows);
      } catch (err) {
        this.options.say('warn', `polars did not shut down cleanly: ${(err as Error).message}`);
        proc.abandon();
      }
    } else {
      proc?.abandon();
    }
    this.generation++;
    this.live = false;
    if (this.options.fsync) await this.options.shardLog.sync();
    await this.options.shardLog.close();
    return rows;
  }

  private requireServing(): PolarsProcess {
    if (!this.live || !this.proc || !this.proc.alive) throw shardRestoring(this.options.shard, 'polars process is being replaced');
    return this.proc;
  }

  private asRestoring(err: unknown): unknown {
    if (err instanceof ShardError && err.code === 'POLARS_DIED' && !this.stopping) return shardRestoring(this.options.shard, err.message);
    return err;
  }

  /**
   * After a storage error: resolves once the log takes writes again (cuts what a failed write
   * left, then writes and syncs a probe). Rejects while it still fails.
   */
  async probeStorage(): Promise<void> {
    if (this.unrepaired !== null) {
      await this.options.shardLog.discardFrom(this.durableEnd);
      this.unrepaired = null;
    }
    await this.options.shardLog.probe();
  }

  /**
   * A write or sync failed. What was logged after the last good sync never reached polars (only
   * durable records are sent): take it back from the queue, the in-flight count and the log, so
   * none of it is replayed or counted as durable, and tell whoever waits for it. The fsync
   * semantics of Linux after a failed fdatasync (dirty pages may be dropped, a second fdatasync
   * may report success) are why nothing after `durableEnd` is ever synced "again".
   */
  private storageFailed(cause: unknown): ShardError {
    const keep = this.durableEnd;
    const error = insufficientStorage(this.options.shard, cause);
    while (this.queued.length > 0 && this.queued[this.queued.length - 1]!.position >= keep) this.queued.pop()!.outcome?.reject(error);
    while (this.unacked.length > 0 && this.unacked[this.unacked.length - 1]!.next > keep) this.unackedBytes -= this.unacked.pop()!.bytes;
    this.unrepaired = cause;
    // The file log cuts synchronously; a rejection means the cut itself failed (then probeStorage retries it).
    this.options.shardLog.discardFrom(keep).then(
      () => {
        if (this.unrepaired === cause) this.unrepaired = null;
      },
      (err: unknown) => this.options.say('error', `shard log: could not cut what a failed write left: ${(err as Error).message}`, { position: keep }),
    );
    this.options.onStorageError?.(cause, keep);
    return error;
  }

  private logRecord(type: LogRecordTypeValue, payload: Uint8Array, rows: number, outcome?: Outcome): void {
    if (this.unrepaired !== null) throw insufficientStorage(this.options.shard, this.unrepaired);
    let position: number;
    try {
      position = this.options.shardLog.append(type, payload);
    } catch (err) {
      throw this.storageFailed(err);
    }
    const next = this.options.shardLog.end;
    this.queued.push({ position, next, type, payload, ...(outcome ? { outcome } : {}) });
    this.unacked.push({ next, bytes: payload.byteLength, rows });
    this.unackedBytes += payload.byteLength;
  }

  /** Sends queued durable records, in order, while the process is live. */
  private pump(): void {
    if (!this.live || !this.proc) return;
    while (this.queued.length > 0 && this.queued[0]!.next <= this.durableEnd) this.send(this.queued.shift()!, this.proc);
  }

  private send(rec: Sendable, proc: PolarsProcess): Promise<void> {
    const { op, plan, body, fields } = requestFor(rec);
    this.options.segments?.sent(rec.next);
    return proc.request(op, plan, body, fields ? { fields } : {}).then(
      (reply) => {
        this.acked(rec, reply);
        rec.outcome?.resolve(reply);
        if (isBatch(rec.type)) this.options.segments?.afterAppend(reply, proc);
      },
      (err: unknown) => {
        if (unanswered(err)) {
          // not processed: it stays unacknowledged and the next replay sends it again
          rec.outcome?.reject(this.asRestoring(err) as Error);
          return;
        }
        // polars answered with an error: processed (and a replay would answer the same)
        this.options.noteError(err);
        if (isBatch(rec.type)) this.options.say('error', `polars refused a logged batch: ${(err as Error).message}`, { position: rec.position });
        this.acked(rec, null);
        rec.outcome?.reject(err as Error);
      },
    );
  }

  private acked(rec: Sendable, reply: PolarsReply | null): void {
    const appended = reply && isBatch(rec.type) ? Number(reply.header.appended ?? 0) : 0;
    if (reply && isBatch(rec.type)) this.counters.rowsHeld = Number(reply.header.rows);
    if (rec.next <= this.ackedEnd) {
      this.counters.rowsRestored += appended;
      return;
    }
    this.ackedEnd = rec.next;
    let released = false;
    while (this.unacked.length > 0 && this.unacked[0]!.next <= this.ackedEnd) {
      const u = this.unacked.shift()!;
      this.unackedBytes -= u.bytes;
      this.counters.rowsHanded += u.rows;
      released = true;
    }
    if (this.waiters.length > 0) {
      const still = [];
      for (const w of this.waiters) if (w.position <= this.ackedEnd) w.resolve();
      else still.push(w);
      this.waiters = still;
    }
    if (released) this.options.onProgress();
  }

  private spawn(gen: number): PolarsProcess {
    const proc = new PolarsProcess({
      shard: this.options.shard,
      timeoutMs: this.options.polarsTimeoutMs,
      partialCache: this.options.partialCache ?? true,
      onStderr: (line) => this.options.say('info', 'polars', { line }),
      onExit: (exit) => this.died(exit, gen),
      // Not ready from the moment we kill it: nothing more is sent to a process on its way out.
      onKill: () => {
        if (gen !== this.generation || !this.live) return;
        this.live = false;
        this.options.onState('restoring', undefined);
      },
    });
    this.proc = proc;
    return proc;
  }

  private died(exit: PolarsExit, gen: number): void {
    if (gen !== this.generation) return;
    this.generation++;
    this.live = false;
    this.proc = null;
    this.chunks = null;
    this.partialCacheBytes = null;
    const err = this.stopping ? exit.error : shardRestoring(this.options.shard, exit.error.message);
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
    // Queued records stay queued (the next process gets them after its replay); whoever waits
    // for their answer is told to retry now rather than wait for the whole replay.
    for (const q of this.queued) {
      q.outcome?.reject(err);
      delete q.outcome;
    }
    if (this.stopping) return;
    const cancel = exit.timedOut === 'query' || exit.timedOut === 'query_many';
    if (cancel) this.counters.queriesCancelled++;
    if (this.liveSince > 0 && performance.now() - this.liveSince >= HEALTHY_MS) this.backoffMs = FIRST_BACKOFF_MS;
    // A kill that cancels a query is not a crash: respawn at once. Anything else backs off.
    const delay = cancel ? 0 : this.backoffMs;
    if (!cancel) this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.counters.restarts++;
    this.options.noteError(exit.error);
    this.options.say(cancel ? 'warn' : 'error', `${exit.error.message}; restoring from the log in ${delay} ms`, {
      code: exit.error.code,
      restart: this.counters.restarts,
      bytes_not_acknowledged: this.unackedBytes,
    });
    this.options.onState('restoring', undefined);
    void this.respawn(this.generation, delay);
  }

  private async respawn(gen: number, delay: number): Promise<void> {
    if (delay > 0) await sleep(delay);
    if (gen !== this.generation || this.stopping) return;
    const started = performance.now();
    const proc = this.spawn(gen);
    try {
      await proc.request('ping', undefined, undefined, { timeoutMs: PING_TIMEOUT_MS });
    } catch {
      return; // it died or hung (and was killed): `died` schedules the next try
    }
    await this.replay(gen, started);
  }

  /**
   * Has the current process load the segment files (if any), replays the log from where they
   * end (or from its start) up to the first queued record, then goes live (sends the queue).
   * Stops quietly if the process dies meanwhile.
   */
  private async replay(gen: number, started: number): Promise<void> {
    const proc = this.proc!;
    const log = this.options.shardLog;
    const end = this.queued.length > 0 ? this.queued[0]!.position : log.end;
    this.options.onState('restoring', proc.pid);
    // Segment files first: the replay starts where they end, its rows numbered from there.
    let from = log.start;
    let replayFirstRow = 0;
    const rowsBefore = this.counters.rowsRestored + this.counters.rowsHanded;
    if (this.options.segments) {
      try {
        const opened = await this.options.segments.open(proc);
        from = Math.max(opened.logPosition, log.start);
        replayFirstRow = opened.nextRow;
        this.counters.rowsRestored += opened.rows;
      } catch (err) {
        if (gen !== this.generation || !proc.alive) return;
        // Serving without them would answer from part of the data: retried by a new process.
        this.options.noteError(err);
        this.options.say('error', `polars could not load the segment files: ${(err as Error).message}`);
        proc.kill('could not load the segment files');
        return;
      }
      if (gen !== this.generation || !proc.alive) return;
    }
    const total = end - from;
    this.options.say('info', 'restoring: replaying the log into polars', { polars_pid: proc.pid, log_bytes: total });
    let records = 0;
    let bytes = 0;
    let window: Array<{ sent: Promise<void>; bytes: number }> = [];
    let windowBytes = 0;
    let lastProgress = performance.now();
    const numbering = new RowNumbering(replayFirstRow);
    try {
      for await (const rec of log.readFrom(from)) {
        if (rec.position >= end) break;
        if (gen !== this.generation) return;
        const firstRow = numbering.next(rec);
        const sendable = rec.type === LogRecordType.EVENT_BATCH && firstRow !== null ? { ...rec, firstRow } : rec;
        window.push({ sent: this.send(sendable, proc), bytes: rec.payload.byteLength });
        windowBytes += rec.payload.byteLength;
        records++;
        bytes = rec.next - from;
        while (windowBytes > REPLAY_WINDOW_BYTES) {
          const oldest = window.shift()!;
          await oldest.sent;
          windowBytes -= oldest.bytes;
        }
        if (performance.now() - lastProgress >= PROGRESS_EVERY_MS) {
          lastProgress = performance.now();
          this.options.say('info', 'restoring', { records, bytes, of_bytes: total, rows: this.counters.rowsRestored + this.counters.rowsHanded - rowsBefore });
        }
      }
      await Promise.all(window.map((w) => w.sent));
      window = [];
    } catch (err) {
      // An unreadable record past the open-time check (the disk changed under us): polars keeps
      // what came before; the next restart's open cuts the log there.
      this.options.noteError(err);
      this.options.say('error', `log replay stopped: ${(err as Error).message}`);
    }
    if (gen !== this.generation || !proc.alive) return;
    this.goLive(gen, records, this.counters.rowsRestored + this.counters.rowsHanded - rowsBefore, started, true);
  }

  private goLive(gen: number, records: number, rows: number, started: number, replayed: boolean): void {
    if (gen !== this.generation) return;
    this.live = true;
    this.liveSince = performance.now();
    this.pump();
    const ms = performance.now() - started;
    if (replayed) {
      this.counters.lastRestoreMs = ms;
      this.options.say('info', 'restored: polars serves again', { polars_pid: this.proc?.pid, records, rows_restored: rows, ms: Math.round(ms) });
    }
    this.options.onState('ready', this.proc?.pid);
  }
}
