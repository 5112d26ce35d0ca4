/**
 * `GET /dashboard/metrics` latency while the engine ingests at a fixed rate: `rate` events/s as
 * `batch`-event `/ingest/batch` requests sent on a fixed schedule (20 × 1,000 per second by
 * default), not waiting for earlier answers, so a slow engine shows as latency, not as less load.
 * The events carry no timestamp (the engine stamps them on receipt, as a live feed would), so the
 * dashboard's last-15-minutes windows have them. Meanwhile one client asks for the dashboard every
 * `dashboardEveryMs` (or right after the previous answer when that took longer).
 */
import { batchBody, userFragments } from './encode-json.js';
import { EventGenerator, makeEventSpec } from './events.js';
import { summarize, type Timing } from './timing.js';

export interface LiveDashboardOptions {
  rate: number;
  batch: number;
  seconds: number;
  dashboardEveryMs: number;
  seed: number;
}

export interface LiveDashboardResult {
  target_events_per_s: number;
  sent_events: number;
  achieved_events_per_s: number;
  ingest_requests: number;
  ingest_503: number;
  ingest: Timing;
  dashboard: Timing;
  dashboard_errors: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The request bodies for the whole run, built before it starts so building costs no send time. */
export function liveBodies(opts: LiveDashboardOptions): string[] {
  const requests = Math.max(1, Math.round((opts.rate * opts.seconds) / opts.batch));
  const gen = new EventGenerator(makeEventSpec(requests * opts.batch, opts.seed, 3_600_000));
  const users = userFragments(gen.userIds);
  return [...gen.chunks(opts.batch)].map((c) => batchBody(c, 0, c.length, users, false));
}

export async function dashboardUnderIngest(ingestUrl: string, queryUrl: string, bodies: readonly string[], opts: LiveDashboardOptions): Promise<LiveDashboardResult> {
  const intervalMs = (1000 * opts.batch) / opts.rate;
  const ingestTimes: number[] = [];
  let refused = 0;
  let sentEvents = 0;
  let ingestDone = false;

  const send = async (body: string): Promise<void> => {
    const t0 = performance.now();
    for (;;) {
      const res = await fetch(`${ingestUrl}/ingest/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const text = await res.text();
      if (res.status === 202) break;
      if (res.status !== 503) throw new Error(`live ingest: ${res.status} ${text.slice(0, 300)}`);
      refused++;
      await sleep(50);
    }
    ingestTimes.push(performance.now() - t0);
    sentEvents += opts.batch;
  };

  const ingest = async (): Promise<number> => {
    const inflight: Promise<void>[] = [];
    const t0 = performance.now();
    for (let i = 0; i < bodies.length; i++) {
      const wait = t0 + i * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      inflight.push(send(bodies[i]!));
    }
    await Promise.all(inflight);
    ingestDone = true;
    return performance.now() - t0;
  };

  const dashTimes: number[] = [];
  let dashErrors = 0;
  const dashboard = async (): Promise<void> => {
    while (!ingestDone) {
      const t0 = performance.now();
      const res = await fetch(`${queryUrl}/dashboard/metrics`);
      await res.arrayBuffer();
      const dt = performance.now() - t0;
      if (res.status === 200) dashTimes.push(dt);
      else dashErrors++;
      if (dt < opts.dashboardEveryMs) await sleep(opts.dashboardEveryMs - dt);
    }
  };

  const [elapsedMs] = await Promise.all([ingest(), dashboard()]);
  return {
    target_events_per_s: opts.rate,
    sent_events: sentEvents,
    achieved_events_per_s: sentEvents / (elapsedMs / 1000),
    ingest_requests: ingestTimes.length,
    ingest_503: refused,
    ingest: summarize(ingestTimes),
    dashboard: summarize(dashTimes),
    dashboard_errors: dashErrors,
  };
}
