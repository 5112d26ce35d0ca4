/**
 * Worker side: the shard's segment files, from the log's point of view. The polars process
 * writes and reads the files (python/engine_polars/segments.py); this decides when, because
 * only the worker knows log positions:
 *
 * - at every (re)start, `open` has polars load the segments and answers where the log replay
 *   starts (everything before that position is in segment files) and the first row it holds;
 * - when an append's answer says the open rows reached `segmentRows`, `roll` has polars seal
 *   them into a segment file covering the log up to the last record sent to it (frames are
 *   handled in order, so that is exactly what it holds); once the file and the manifest are
 *   durable (polars answers only then) the log before that position is truncated, which the
 *   file log does by deleting whole files;
 * - with a retention, `retain` after each roll and every minute drops whole segments past it.
 *
 * Every request goes to the process that is live at the time; if it dies meanwhile the request
 * fails and nothing is truncated (its replacement reopens the files and sees what was committed).
 */
import type { PolarsProcess, PolarsReply } from './polars-process.js';
import type { ShardLog } from './log/shard-log.js';

type Level = 'debug' | 'info' | 'warn' | 'error';

export interface SegmentKeeperOptions {
  /** the shard's directory (the log's); polars keeps `<dir>/segments/` */
  shardDir: string;
  shardLog: ShardLog;
  segmentRows: number;
  retentionMs: number | null;
  say: (level: Level, msg: string, fields?: Record<string, unknown>) => void;
  noteError: (err: unknown) => void;
}

/** Where a replay starts after polars loaded the segment files. */
export interface OpenedSegments {
  /** log position from which records are not in segment files */
  logPosition: number;
  /** absolute index of the first row after the segments */
  nextRow: number;
  /** rows polars loaded from segment files */
  rows: number;
}

const RETENTION_EVERY_MS = 60_000;
/** loading every segment of a big shard takes seconds per ten million rows; a hang still ends */
const OPEN_TIMEOUT_MS = 15 * 60_000;
/** writing one segment (zstd, fsync) of a few million rows */
const ROLL_TIMEOUT_MS = 5 * 60_000;
/** after a failed roll (a full disk, say), the next try waits this long */
const ROLL_RETRY_MS = 10_000;

export class SegmentKeeper {
  readonly stats = {
    segments: 0,
    segmentBytes: 0,
    rowsInSegments: 0,
    lastRollMs: null as number | null,
    rowsDroppedByRetention: 0,
  };
  /** `next` of the last record sent to the current process: a roll covers the log before it */
  private sentEnd = 0;
  private rolling = false;
  /** open rows in the latest answer (an append's, or the roll's own: 0 right after it) */
  private openRows = 0;
  private retaining = false;
  private rollAfter = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SegmentKeeperOptions) {}

  /** Has a fresh process load the segment files; resolves with where the log replay starts. */
  async open(proc: PolarsProcess): Promise<OpenedSegments> {
    this.rolling = false;
    const reply = await proc.request('open', { dir: this.options.shardDir, log_start: this.options.shardLog.start }, undefined, { timeoutMs: OPEN_TIMEOUT_MS });
    const h = reply.header;
    this.noteStats(h);
    const opened = { logPosition: Number(h.log_position), nextRow: Number(h.next_row), rows: Number(h.rows) };
    this.sentEnd = opened.logPosition;
    const refused = (h.segments_refused as string[] | undefined) ?? [];
    if (refused.length > 0) {
      this.options.say('error', 'segment files refused (failed their checks)', { refused, rows_lost: h.rows_lost, replay_from: opened.logPosition });
    }
    if (opened.logPosition < this.options.shardLog.start) {
      this.options.say('error', 'the log was truncated past what the segment files hold: rows in between are lost', {
        segments_cover_to: opened.logPosition,
        log_starts_at: this.options.shardLog.start,
      });
    }
    if (opened.rows > 0) this.options.say('info', 'segment files loaded', { rows: opened.rows, segments: Number(h.segments) });
    return opened;
  }

  /** A record was written to the current process's pipe. */
  sent(next: number): void {
    this.sentEnd = next;
  }

  /** An append was acknowledged by `proc`: rolls when its open rows reached `segmentRows`. */
  afterAppend(reply: PolarsReply, proc: PolarsProcess): void {
    this.openRows = Number(reply.header.open_rows ?? 0);
    this.maybeRoll(proc);
  }

  private maybeRoll(proc: PolarsProcess): void {
    if (this.openRows < this.options.segmentRows || this.rolling || performance.now() < this.rollAfter || !proc.alive) return;
    void this.roll(proc, this.sentEnd);
  }

  private async roll(proc: PolarsProcess, position: number): Promise<void> {
    this.rolling = true;
    const started = performance.now();
    try {
      // A deadline, not a busy time: the frames sent after it are answered while it writes.
      const reply = await proc.request('roll', { log_position: position }, undefined, { deadline: performance.now() + ROLL_TIMEOUT_MS });
      // Answers are handled in order: appends answered after this one update it again.
      this.openRows = Number(reply.header.open_rows ?? 0);
      this.stats.lastRollMs = performance.now() - started;
      this.noteStats(reply.header);
      this.options.say('info', 'segment rolled', {
        segment: reply.header.segment,
        rows: reply.header.rolled_rows,
        bytes: reply.header.rolled_bytes,
        ms: Math.round(this.stats.lastRollMs),
        log_position: position,
      });
      // The segment and the manifest naming it are durable: the log before them may go.
      await this.options.shardLog.truncateBefore(position);
      if (this.options.retentionMs !== null) await this.retain(proc);
    } catch (err) {
      this.options.noteError(err);
      this.rollAfter = performance.now() + ROLL_RETRY_MS;
      if (proc.alive) this.options.say('error', `segment roll failed (retried in ${ROLL_RETRY_MS / 1000} s; the log still holds the rows): ${(err as Error).message}`);
    } finally {
      this.rolling = false;
    }
    // Appends answered while this roll ran may have filled another segment already.
    this.maybeRoll(proc);
  }

  /** Drops the segments past the retention (no-op without one). */
  async retain(proc: PolarsProcess): Promise<void> {
    if (this.options.retentionMs === null || this.retaining || !proc.alive) return;
    this.retaining = true;
    try {
      const reply = await proc.request('retain', { retention_ms: this.options.retentionMs, now_ms: Date.now() });
      this.noteStats(reply.header);
      const dropped = Number(reply.header.rows_dropped ?? 0);
      if (dropped > 0) {
        this.stats.rowsDroppedByRetention += dropped;
        this.options.say('info', 'retention dropped old segments', {
          rows: dropped,
          segments: reply.header.segments_dropped,
          older_than: new Date(Number(reply.header.cutoff)).toISOString(),
        });
      }
    } catch (err) {
      this.options.noteError(err);
      if (proc.alive) this.options.say('warn', `retention failed: ${(err as Error).message}`);
    } finally {
      this.retaining = false;
    }
  }

  /** Runs retention every minute on whatever process `live()` gives (none while restoring). */
  startRetention(live: () => PolarsProcess | null): void {
    if (this.options.retentionMs === null || this.timer) return;
    this.timer = setInterval(() => {
      const proc = live();
      if (proc) void this.retain(proc);
    }, RETENTION_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes the segment counts from a polars reply that carries them (open, roll, stats). */
  noteStats(h: Record<string, unknown>): void {
    if (typeof h.segments === 'number') this.stats.segments = h.segments;
    if (typeof h.segment_bytes === 'number') this.stats.segmentBytes = h.segment_bytes;
    if (typeof h.rows_in_segments === 'number') this.stats.rowsInSegments = h.rows_in_segments;
  }
}
