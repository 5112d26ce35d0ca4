/**
 * Per-shard series, read when Prometheus scrapes. Ring bytes and query admission are main-thread
 * reads and always present; rows, polars restarts, log bytes and the last fsync come from the
 * shard's `stats()`, asked with a 1 s limit: a shard that fails or is slow to answer has those
 * series left out of this scrape rather than failing or stalling it.
 *
 * Counters that live in the shard (polars restarts, busy rejections) are copied in at each scrape
 * (reset, then set to the shard's own count), so they keep counter semantics for `rate()`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ShardHandle } from '../../shards/shard-handle.js';
import type { ShardStats } from '../../shards/protocol.js';

export const SHARD_STATS_TIMEOUT_MS = 1000;

type ShardLabel = 'shard';

/** The shard's stats, or null when they fail or are not there within `ms` (whatever the handle's own timer does). */
function statsWithin(s: Pick<ShardHandle, 'stats'>, ms: number): Promise<ShardStats | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    s.stats(ms).then(
      (stats) => {
        clearTimeout(timer);
        resolve(stats);
      },
      () => {
        clearTimeout(timer);
        resolve(null);
      },
    );
  });
}

export class ShardGauges {
  private readonly ringUsed: Gauge<ShardLabel>;
  private readonly ringCapacity: Gauge<ShardLabel>;
  private readonly ready: Gauge<ShardLabel>;
  private readonly rows: Gauge<ShardLabel>;
  private readonly logBytes: Gauge<ShardLabel>;
  private readonly lastFsync: Gauge<ShardLabel>;
  private readonly queriesRunning: Gauge<ShardLabel>;
  private readonly queriesQueued: Gauge<ShardLabel>;
  private readonly polarsRestarts: Counter<ShardLabel>;
  private readonly rejectedBusy: Counter<ShardLabel>;
  private readonly statsFailures: Counter<ShardLabel>;
  /** One collection at a time: concurrent scrapes share it (a reset between two sets would double). */
  private inFlight: Promise<void> | null = null;

  constructor(
    registry: Registry,
    prefix: string,
    private readonly shards: readonly ShardHandle[],
  ) {
    const gauge = (name: string, help: string) => new Gauge({ name: prefix + name, help, labelNames: ['shard'], registers: [registry] });
    const counter = (name: string, help: string) => new Counter({ name: prefix + name, help, labelNames: ['shard'], registers: [registry] });
    this.ringUsed = gauge('ring_used_bytes', 'Bytes in the shard ring not yet drained by the shard');
    this.ringCapacity = gauge('ring_capacity_bytes', 'Usable bytes of the shard ring');
    this.ready = gauge('shard_ready', '1 when the shard answers queries, 0 while it starts, restores or is down');
    this.rows = gauge('shard_rows', 'Rows held in the shard\'s polars DataFrame');
    this.logBytes = gauge('shard_log_bytes', 'Bytes of the shard\'s write-ahead log on disk');
    this.lastFsync = gauge('last_fsync_seconds', 'Duration of the shard log\'s last fdatasync');
    this.queriesRunning = gauge('queries_running', 'Queries running on the shard now');
    this.queriesQueued = gauge('queries_queued', 'Queries waiting for a slot on the shard');
    this.polarsRestarts = counter('polars_restarts_total', 'Polars processes started after the shard\'s first (crash, kill, timeout)');
    this.rejectedBusy = counter('queries_rejected_busy_total', 'Queries refused with 429 because the shard\'s queue was full');
    this.statsFailures = counter('shard_stats_failures_total', 'Scrapes that left out a shard\'s stats because it failed or took over 1 s to answer');
  }

  /** Reads every shard (stats in parallel, each bounded) and sets the series. */
  collect(): Promise<void> {
    this.inFlight ??= this.read().finally(() => (this.inFlight = null));
    return this.inFlight;
  }

  private async read(): Promise<void> {
    const stats = await Promise.all(this.shards.map((s) => statsWithin(s, SHARD_STATS_TIMEOUT_MS)));
    // Set in one synchronous pass, so a scrape never sees half of it.
    for (const m of [this.ringUsed, this.ringCapacity, this.ready, this.rows, this.logBytes, this.lastFsync, this.queriesRunning, this.queriesQueued, this.polarsRestarts, this.rejectedBusy]) m.reset();
    this.shards.forEach((s, i) => this.set(s, stats[i] ?? null));
  }

  private set(s: ShardHandle, stats: ShardStats | null): void {
    const l = { shard: String(s.shard) };
    this.ringUsed.set(l, s.ring.usedBytes());
    this.ringCapacity.set(l, s.ring.capacity());
    this.ready.set(l, s.isReady() ? 1 : 0);
    const admission = s.admission();
    this.queriesRunning.set(l, admission.queries_running);
    this.queriesQueued.set(l, admission.queries_queued);
    this.rejectedBusy.inc(l, admission.queries_rejected_busy);
    if (stats === null) {
      this.statsFailures.inc(l);
      return;
    }
    this.rows.set(l, stats.rows_held);
    this.logBytes.set(l, stats.log_bytes);
    if (stats.last_fsync_ms !== null) this.lastFsync.set(l, stats.last_fsync_ms / 1000);
    this.polarsRestarts.inc(l, stats.polars_restarts);
  }
}
