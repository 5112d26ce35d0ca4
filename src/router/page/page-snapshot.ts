/**
 * One snapshot of what the live page shows: ingest totals and rate, each shard's ring fill and
 * rows, query latency by kind, and the dashboard kind's answer (events in the last 15 minutes by
 * type, top users and event types, stored events). The live feed calls `next()` once per tick for
 * every connected page together, so the engine does the same work with one page open or thirty.
 *
 * Costs are bounded per tick whatever the engine is doing: shard stats are asked at most once a
 * second per shard and the dashboard fan-out runs at most once at a time; while either is still
 * out, the snapshot carries the last answer (with its time) instead of queueing another. A shard
 * that does not answer, or a fan-out refused (busy, restoring), is reported in the snapshot, never
 * thrown: the page keeps showing what it has.
 */
import type { EngineContext } from '../../engine-context.js';
import dashboard from '../../kinds/dashboard.js';
import { EnrichmentTables } from '../../kinds/enrichment-catalog.js';
import { makeRuntime, type QueryServices } from '../../kinds/runtime.js';
import type { KindTimings } from '../query-timings.js';
import type { ShardStats } from '../../shards/protocol.js';

/** Longest a shard's stats request or the page's dashboard fan-out may take. */
const STATS_TIMEOUT_MS = 2000;
const DASHBOARD_TIMEOUT_MS = 10_000;

export interface PageShard {
  shard: number;
  ready: boolean;
  state: string;
  ring_used_bytes: number;
  ring_capacity_bytes: number;
  /** ring_used_bytes / ring_capacity_bytes, 0..1 */
  ring_fill: number;
  events_pushed: number;
  events_consumed: number;
  /** from the shard's last stats answer (null before the first) */
  rows_held: number | null;
  events_received: number | null;
  queries_running: number | null;
  polars_restarts: number | null;
  /** why the last stats request failed, null when it answered */
  stats_error: string | null;
}

/** The dashboard kind's answer, as the page reads it. */
export interface PageEvents {
  /** epoch ms the answer was computed at */
  as_of: number;
  stored_events: number;
  distinct_users: number;
  top_users: Array<{ user_id: string; count: number }>;
  top_events: Array<{ event_type: string; count: number }>;
  recent_windows: { window_ms: number; window_starts: number[]; rows: Array<{ window_start: number; event_type: string; count: number }> };
}

export interface PageSnapshot {
  /** epoch ms */
  at: number;
  /** pages connected to the stream */
  viewers: number;
  ingest: { total_events: number; rejected_events: number; error_count: number; throughput_per_second: number; buffered: number; uptime_seconds: number };
  shards: PageShard[];
  queries: KindTimings[];
  /** null until the first dashboard answer */
  events: PageEvents | null;
  /** why the last dashboard fan-out failed (shown on the page), null when it answered */
  events_error: string | null;
}

type DashboardAnswer = Pick<PageEvents, 'top_users' | 'top_events' | 'recent_windows'> & { summary: { count: number; distinct_users: number } };

interface ShardStatsCache {
  last: ShardStats | null;
  error: string | null;
  askedAt: number;
  inFlight: boolean;
}

/** Makes the snapshot function for one engine; `next(viewers)` is called once per tick. */
export function makePageSnapshots(ctx: EngineContext): { next(viewers: number): Promise<PageSnapshot> } {
  const stats: ShardStatsCache[] = ctx.shards.map(() => ({ last: null, error: null, askedAt: 0, inFlight: false }));
  let events: PageEvents | null = null;
  let eventsError: string | null = null;
  let eventsInFlight: Promise<void> | null = null;
  let services: QueryServices | null = null;

  const servicesOf = (): QueryServices =>
    (services ??= {
      shards: ctx.shards,
      mergePool: ctx.mergePool,
      limits: ctx.config,
      catalog: (ctx.enrichment ??= new EnrichmentTables()),
      logger: ctx.logger,
      ingestion: () => ({ total_events: ctx.metrics.totalEvents, throughput_per_second: 0, rejected_events: ctx.metrics.rejectedEvents, buffered: ctx.writer.buffered() }),
    });

  function refreshStats(now: number): void {
    ctx.shards.forEach((s, i) => {
      const c = stats[i]!;
      if (c.inFlight || now - c.askedAt < 1000) return;
      c.inFlight = true;
      c.askedAt = now;
      s.stats(STATS_TIMEOUT_MS).then(
        (st) => {
          c.last = st;
          c.error = null;
        },
        (err: Error) => {
          c.error = err.message;
        },
      ).finally(() => {
        c.inFlight = false;
      });
    });
  }

  /** One dashboard fan-out; never rejects (a failure is kept for the page). */
  async function askDashboard(): Promise<void> {
    const started = Date.now();
    try {
      const timeout = Math.min(ctx.config.queryTimeoutMs, DASHBOARD_TIMEOUT_MS);
      const rt = makeRuntime(servicesOf(), { deadline: started + timeout, params: {}, logger: ctx.logger });
      const answer = (await dashboard.run({}, rt)) as unknown as DashboardAnswer;
      events = {
        as_of: started,
        stored_events: answer.summary.count,
        distinct_users: answer.summary.distinct_users,
        top_users: answer.top_users,
        top_events: answer.top_events,
        recent_windows: {
          window_ms: answer.recent_windows.window_ms,
          window_starts: answer.recent_windows.window_starts,
          rows: answer.recent_windows.rows.map((r) => ({ window_start: r.window_start, event_type: r.event_type, count: r.count })),
        },
      };
      eventsError = null;
    } catch (err) {
      eventsError = (err as Error).message;
    }
  }

  /** Starts the dashboard fan-out unless one is out; resolves when it settles. */
  function refreshEvents(): Promise<void> {
    if (!eventsInFlight) {
      const p = askDashboard().finally(() => {
        if (eventsInFlight === p) eventsInFlight = null;
      });
      eventsInFlight = p;
    }
    return eventsInFlight;
  }

  /** Resolves when `p` settles or after `ms`, whichever is first; clears its timer. */
  async function settledWithin(p: Promise<void>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  return {
    async next(viewers: number): Promise<PageSnapshot> {
      const now = Date.now();
      if (!ctx.stopping) {
        refreshStats(now);
        // Wait for this tick's answer up to about a tick; a slower one lands in a later snapshot.
        await settledWithin(refreshEvents(), 800);
      }
      const m = ctx.metrics.snapshot();
      return {
        at: now,
        viewers,
        ingest: {
          total_events: Number(m.total_events),
          rejected_events: Number(m.rejected_events),
          error_count: Number(m.error_count),
          throughput_per_second: Number(m.throughput_per_second),
          buffered: ctx.writer.buffered(),
          uptime_seconds: Number(m.uptime_seconds),
        },
        shards: ctx.shards.map((s, i): PageShard => {
          const c = stats[i]!;
          const used = s.ring.usedBytes();
          const capacity = s.ring.capacity();
          return {
            shard: s.shard,
            ready: s.isReady(),
            state: c.last?.state ?? (s.isReady() ? 'ready' : 'starting'),
            ring_used_bytes: used,
            ring_capacity_bytes: capacity,
            ring_fill: capacity > 0 ? used / capacity : 0,
            events_pushed: s.ring.pushed(),
            events_consumed: s.ring.consumed(),
            rows_held: c.last?.rows_held ?? null,
            events_received: c.last?.events_received ?? null,
            queries_running: c.last?.queries_running ?? null,
            polars_restarts: c.last?.polars_restarts ?? null,
            stats_error: c.error,
          };
        }),
        queries: ctx.queryTimings?.snapshot() ?? [],
        events,
        events_error: eventsError,
      };
    },
  };
}
