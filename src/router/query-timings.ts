/**
 * What the analytics app saw of each query kind: requests, failures by status class, and the
 * latency of the last `WINDOW` requests (for p50/p95/p99). Fed by the query app loop; read by
 * the stats, the live page and the metrics. Listeners see every completed query (the Prometheus
 * histogram subscribes here).
 */
const WINDOW = 1024;

export interface QueryTiming {
  kind: string;
  ms: number;
  status: number;
}

export interface KindTimings {
  kind: string;
  requests: number;
  errors_4xx: number;
  errors_5xx: number;
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  last_ms: number | null;
}

class KindWindow {
  requests = 0;
  errors4xx = 0;
  errors5xx = 0;
  last: number | null = null;
  readonly recent = new Float64Array(WINDOW);

  add(ms: number, status: number): void {
    this.recent[this.requests % WINDOW] = ms;
    this.requests++;
    this.last = ms;
    if (status >= 500) this.errors5xx++;
    else if (status >= 400) this.errors4xx++;
  }
}

export class QueryTimings {
  private readonly kinds = new Map<string, KindWindow>();
  private readonly listeners = new Set<(t: QueryTiming) => void>();

  record(t: QueryTiming): void {
    let w = this.kinds.get(t.kind);
    if (!w) this.kinds.set(t.kind, (w = new KindWindow()));
    w.add(t.ms, t.status);
    for (const l of this.listeners) l(t);
  }

  /** Calls `listener` for every completed query; returns the unsubscribe function. */
  subscribe(listener: (t: QueryTiming) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  snapshot(): KindTimings[] {
    return [...this.kinds.entries()]
      .map(([kind, w]) => {
        const n = Math.min(w.requests, WINDOW);
        const sorted = Array.from(w.recent.subarray(0, n)).sort((a, b) => a - b);
        const q = (p: number) => (n === 0 ? null : sorted[Math.min(n - 1, Math.floor(p * n))]!);
        return { kind, requests: w.requests, errors_4xx: w.errors4xx, errors_5xx: w.errors5xx, p50_ms: q(0.5), p95_ms: q(0.95), p99_ms: q(0.99), last_ms: w.last };
      })
      .sort((a, b) => (a.kind < b.kind ? -1 : 1));
  }
}
