/**
 * The engine's Prometheus metrics (prom-client), in a registry of its own (never the global
 * default: tests run many engines in one process). One prefix, base units (seconds, bytes), and
 * labels drawn from fixed sets only — route patterns, methods, status codes, error codes, kind
 * names, shard numbers — never a user id, path parameter or other client-chosen string.
 *
 * Fed by: the HTTP middleware (requests, durations, ingest events by outcome), the query app's
 * timings (`ctx.queryTimings.subscribe`), the shards at scrape time (./shard-gauges.ts), and
 * prom-client's default process metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EngineContext } from '../../engine-context.js';
import { QueryTimings } from '../query-timings.js';
import { ShardGauges } from './shard-gauges.js';

export const METRIC_PREFIX = 'shardlytics_';

// 0.5 ms … 60 s: ingest requests take about a millisecond, queries up to queryTimeoutMs.
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const QUERY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class EngineMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route' | 'method'>;
  readonly ingestEvents: Counter<'route'>;
  readonly ingestRejected: Counter<'route' | 'reason'>;
  readonly queryDuration: Histogram<'kind'>;
  private readonly shardGauges: ShardGauges;
  private readonly unsubscribe: () => void;

  constructor(ctx: Pick<EngineContext, 'shards' | 'queryTimings' | 'answers'>) {
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.httpRequests = new Counter({ name: `${p}http_requests_total`, help: 'HTTP requests answered, by route pattern, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.httpDuration = new Histogram({
      name: `${p}http_request_duration_seconds`,
      help: 'Time from a request\'s arrival to its answer\'s headers (a streamed body is not included), by route pattern and method',
      labelNames: ['route', 'method'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.ingestEvents = new Counter({ name: `${p}ingest_events_total`, help: 'Events acknowledged by the ingest routes', labelNames: ['route'], registers });
    this.ingestRejected = new Counter({
      name: `${p}ingest_rejected_events_total`,
      help: 'Events of ingest requests refused whole, by route and error code (INVALID_EVENT, OVERLOADED, …)',
      labelNames: ['route', 'reason'],
      registers,
    });
    this.queryDuration = new Histogram({ name: `${p}query_duration_seconds`, help: 'Query time by kind, whatever the outcome', labelNames: ['kind'], buckets: QUERY_BUCKETS, registers });
    // Read at scrape time from the query app's answer budget (src/router/answer-budget.ts).
    new Gauge({
      name: `${p}answer_bytes_in_flight`,
      help: 'Bytes of JSON answers held until their clients take them (bounded by maxAnswerBytesInFlight)',
      registers,
      collect() {
        this.set(ctx.answers?.held ?? 0);
      },
    });
    let counted = { refused: 0, stalled: 0 };
    new Counter({
      name: `${p}answers_refused_total`,
      help: 'Query answers refused (503) or cut off, by reason: budget (maxAnswerBytesInFlight), stalled (sendStallTimeoutMs)',
      labelNames: ['reason'],
      registers,
      collect() {
        const now = { refused: ctx.answers?.refused ?? 0, stalled: ctx.answers?.stalled ?? 0 };
        this.inc({ reason: 'budget' }, now.refused - counted.refused);
        this.inc({ reason: 'stalled' }, now.stalled - counted.stalled);
        counted = now;
      },
    });
    this.shardGauges = new ShardGauges(this.registry, p, ctx.shards);
    collectDefaultMetrics({ register: this.registry, prefix: p });
    // The query app records into the same object (it keeps one that is already there).
    const timings = (ctx.queryTimings ??= new QueryTimings());
    this.unsubscribe = timings.subscribe((t) => this.queryDuration.observe({ kind: t.kind }, t.ms / 1000));
  }

  /** The exposition text, with the shard series read now. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    await this.shardGauges.collect();
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** Stops listening to the query timings. */
  close(): void {
    this.unsubscribe();
  }
}
