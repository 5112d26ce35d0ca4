/**
 * Ingestion metrics for /metrics/ingestion: counters plus request-latency percentiles over a
 * fixed ring of recent samples (bounded memory; percentiles of the last N requests).
 */
const SAMPLES = 4096;

export class IngestMetrics {
  readonly startedAt = Date.now();
  totalEvents = 0;
  rejectedEvents = 0;
  errorCount = 0;
  requests = 0;
  private readonly latencies = new Float64Array(SAMPLES);
  private samples = 0;
  // Throughput over a sliding ~10 s window of 1 s buckets.
  private readonly buckets = new Float64Array(10);
  private bucketSecond = Math.floor(Date.now() / 1000);

  recordAccepted(events: number, latencyMs: number): void {
    this.totalEvents += events;
    this.requests++;
    this.latencies[this.samples++ % SAMPLES] = latencyMs;
    this.advance();
    this.buckets[this.bucketSecond % 10]! += events;
  }

  /** A request that stored nothing: bad input (error) or overload (rejected events). */
  recordRejected(events: number, isError: boolean): void {
    this.rejectedEvents += events;
    if (isError) this.errorCount++;
  }

  private advance(): void {
    const now = Math.floor(Date.now() / 1000);
    while (this.bucketSecond < now) {
      this.bucketSecond++;
      this.buckets[this.bucketSecond % 10] = 0;
    }
  }

  snapshot(): Record<string, unknown> {
    this.advance();
    const n = Math.min(this.samples, SAMPLES);
    const sorted = Array.from(this.latencies.subarray(0, n)).sort((a, b) => a - b);
    const pct = (q: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(q * n))]!);
    const uptime = (Date.now() - this.startedAt) / 1000;
    let windowEvents = 0;
    for (let i = 0; i < 10; i++) if (i !== this.bucketSecond % 10) windowEvents += this.buckets[i]!;
    const windowSeconds = Math.min(9, Math.max(1, Math.floor(uptime)));
    return {
      total_events: this.totalEvents,
      rejected_events: this.rejectedEvents,
      error_count: this.errorCount,
      requests: this.requests,
      uptime_seconds: uptime,
      throughput_per_second: windowEvents / windowSeconds,
      latency: {
        average_ms: n === 0 ? 0 : sorted.reduce((a, b) => a + b, 0) / n,
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        p99_ms: pct(0.99),
      },
    };
  }
}
