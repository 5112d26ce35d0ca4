/**
 * bench:peers' questions, each written three times — the engine's HTTP route(s), a plain polars
 * function (bench/peers/polars_peer.py, by id) and DuckDB SQL — with the semantics the engine
 * documents (docs/API.md, docs/api/*.md), and one normaliser per system into a common
 * {@link Answer}.
 *
 * Where the documents fix a choice, the peers follow it:
 * - aggregate (Q1, Q1b, Q1b-arrow: Q1b with the engine's Arrow answer): `count` counts events, `value_count` non-null values; sum, mean, min
 *   and max are over non-null values and null for a group without any (polars would sum to 0);
 *   the engine is asked for those four statistics (`stats`), as the peers compute them, not
 *   also its default `value_stddev`;
 * - window (Q2): tumbling 1-minute windows aligned to the epoch, one row per (window, type) with
 *   at least one event, `value_sum` null when the window's events have no value;
 * - exact percentiles (Q3, Q7 quartiles): polars' linear interpolation on the non-null values,
 *   h = (n − 1)·q, which is also DuckDB's `quantile_cont`;
 * - top-n (Q4): users with no non-null value are not ranked; ties by user_id ascending (code points);
 * - anomalies (Q5): population stddev (`ddof=0`), |z| > 3 strictly, null values never count,
 *   rows by |z| descending then timestamp, user_id, event_type ascending;
 * - funnel (Q6): ordered, no window, greedy earliest: each step takes the user's earliest event of
 *   its type at or after the timestamp of the event the previous step took;
 * - summary (Q7): population stddev; its quartiles in the engine are t-digest estimates, so the
 *   engine's Q7 is `GET /query/summary` and exact `GET /query/percentiles` sent together.
 */
import { cell, pick, type Answer, type AnswerSpec, type Row } from './answer.js';
import type { EngineRequest } from './engine-peer.js';
import { FUNNEL_STEPS } from './events.js';
import type { SqlRow } from './duckdb-peer.js';

export interface PeerQuery {
  id: string;
  title: string;
  engine: readonly EngineRequest[];
  /** Name of the polars peer's function; null: engine only. */
  polars: string | null;
  /** DuckDB statements, all timed; null: engine only. */
  sql: readonly string[] | null;
  spec: AnswerSpec;
  fromEngine: (bodies: readonly unknown[]) => Answer;
  fromPolars: (sections: Record<string, Array<Record<string, unknown>>>) => Answer;
  fromDuckDb: (results: readonly SqlRow[][]) => Answer;
}

const GROUP_FLOATS = ['value_sum', 'value_mean', 'value_min', 'value_max'] as const;
const QUARTILES = { p25: 0.25, p50: 0.5, p75: 0.75 } as const;

function moments(key: readonly string[]): AnswerSpec {
  return { groups: { key, exact: ['count', 'value_count'], float: GROUP_FLOATS, ordered: false } };
}

function results(body: unknown): Array<Record<string, unknown>> {
  return (body as { results: Array<Record<string, unknown>> }).results;
}

/** Each section of `spec` from the rows of the same name, fields picked in spec order. */
function sectionsFrom(spec: AnswerSpec, sections: Record<string, ReadonlyArray<Record<string, unknown>>>): Answer {
  return Object.fromEntries(Object.entries(spec).map(([name, s]) => [name, pick(sections[name] ?? [], [...s.key, ...s.exact, ...s.float])]));
}

/** `arrow`: the engine answers an Arrow IPC stream (`format: "arrow"`), which its client decodes whole. */
function aggregateQuery(id: string, title: string, key: readonly string[], arrow = false): PeerQuery {
  const spec = moments(key);
  const cols = key.join(', ');
  return {
    id,
    title,
    engine: [{ method: 'POST', path: '/query/aggregate', body: { groupBy: key, metrics: ['value'], stats: ['sum', 'mean', 'min', 'max'], ...(arrow ? { format: 'arrow' } : {}) }, ...(arrow ? { arrow } : {}) }],
    // the same question as without Arrow for the peers
    polars: id.replace(/-arrow$/, ''),
    sql: [
      `SELECT ${cols}, count(*) AS count, count(value) AS value_count, sum(value) AS value_sum, avg(value) AS value_mean,
              min(value) AS value_min, max(value) AS value_max
       FROM events GROUP BY ${cols} ORDER BY ${cols}`,
    ],
    spec,
    fromEngine: ([body]) => sectionsFrom(spec, { groups: results(body) }),
    fromPolars: (s) => sectionsFrom(spec, s),
    fromDuckDb: ([rows]) => sectionsFrom(spec, { groups: rows! }),
  };
}

const Q2_SPEC: AnswerSpec = { windows: { key: ['window_start', 'event_type'], exact: ['count'], float: ['value_sum'], ordered: false } };
const Q3_SPEC: AnswerSpec = { percentiles: { key: [], exact: ['count'], float: ['p50', 'p95', 'p99'], ordered: true } };
const Q4_SPEC: AnswerSpec = { top: { key: [], exact: ['user_id', 'count'], float: ['value_sum'], ordered: true } };
const Q5_SPEC: AnswerSpec = {
  totals: { key: [], exact: ['count', 'values'], float: ['mean', 'stddev'], ordered: true },
  top: { key: [], exact: ['timestamp', 'event_type', 'user_id'], float: ['value', 'z_score'], ordered: true },
};
const Q6_SPEC: AnswerSpec = { steps: { key: ['step'], exact: ['event_type', 'users'], float: [], ordered: true } };
const Q7_SPEC: AnswerSpec = {
  stats: {
    key: [],
    exact: ['count', 'value_count', 'distinct_users', 'distinct_event_types', 'first_timestamp', 'last_timestamp'],
    float: ['mean', 'stddev', 'min', 'max', 'p25', 'p50', 'p75'],
    ordered: true,
  },
};

/** DuckDB's funnel: one CTE per step joining the previous step's per-user timestamp. */
function funnelSql(): string {
  const ctes = FUNNEL_STEPS.map((step, i) =>
    i === 0
      ? `s1 AS (SELECT user_id, min(timestamp) AS at FROM events WHERE event_type = '${step}' GROUP BY user_id)`
      : `s${i + 1} AS (SELECT e.user_id, min(e.timestamp) AS at FROM events e JOIN s${i} p ON e.user_id = p.user_id
           WHERE e.event_type = '${step}' AND e.timestamp >= p.at GROUP BY e.user_id)`,
  );
  return `WITH ${ctes.join(',\n')} SELECT ${FUNNEL_STEPS.map((_, i) => `(SELECT count(*) FROM s${i + 1}) AS s${i + 1}`).join(', ')}`;
}

const ANOMALY_MOMENTS = 'SELECT avg(value) AS mean, stddev_pop(value) AS stddev, count(value) AS n FROM events';

export const QUERIES: readonly PeerQuery[] = [
  aggregateQuery('Q1', 'group by event_type: count, sum, mean, min, max', ['event_type']),
  aggregateQuery('Q1b', 'group by (event_type, user_id): same', ['event_type', 'user_id']),
  aggregateQuery('Q1b-arrow', 'Q1b, the engine answering Arrow (decoded by tableFromIPC)', ['event_type', 'user_id'], true),
  {
    id: 'Q2',
    title: '1-minute tumbling windows × event_type: sum',
    engine: [{ method: 'POST', path: '/query/window', body: { windowSize: '1m', groupBy: 'event_type', metric: 'value', aggFunc: 'sum' } }],
    polars: 'Q2',
    sql: [
      `SELECT timestamp // 60000 * 60000 AS window_start, event_type, count(*) AS count, sum(value) AS value_sum
       FROM events GROUP BY ALL ORDER BY window_start, event_type`,
    ],
    spec: Q2_SPEC,
    fromEngine: ([body]) => sectionsFrom(Q2_SPEC, { windows: results(body) }),
    fromPolars: (s) => sectionsFrom(Q2_SPEC, s),
    fromDuckDb: ([rows]) => sectionsFrom(Q2_SPEC, { windows: rows! }),
  },
  {
    id: 'Q3',
    title: 'exact percentiles p50/p95/p99 (linear)',
    engine: [{ method: 'GET', path: '/query/percentiles?column=value&percentiles=0.5,0.95,0.99&exact=true' }],
    polars: 'Q3',
    sql: ['SELECT count(value) AS count, quantile_cont(value, [0.5, 0.95, 0.99]) AS q FROM events'],
    spec: Q3_SPEC,
    fromEngine: ([body]) => {
      const b = body as { count: number; percentiles: Record<string, number | null> };
      return { percentiles: [{ count: b.count, p50: cell(b.percentiles.p50), p95: cell(b.percentiles.p95), p99: cell(b.percentiles.p99) }] };
    },
    fromPolars: (s) => sectionsFrom(Q3_SPEC, s),
    fromDuckDb: ([rows]) => {
      const r = rows![0]!;
      const q = (r.q as number[] | null) ?? [null, null, null];
      return { percentiles: [{ count: cell(r.count), p50: cell(q[0]), p95: cell(q[1]), p99: cell(q[2]) }] };
    },
  },
  {
    id: 'Q4',
    title: 'top 10 users by sum(value)',
    engine: [{ method: 'POST', path: '/query/top-n', body: { groupBy: 'user_id', metric: 'value', aggFunc: 'sum', n: 10 } }],
    polars: 'Q4',
    sql: [
      `SELECT user_id, sum(value) AS value_sum, count(*) AS count FROM events
       GROUP BY user_id HAVING count(value) > 0 ORDER BY value_sum DESC, user_id ASC LIMIT 10`,
    ],
    spec: Q4_SPEC,
    fromEngine: ([body]) => sectionsFrom(Q4_SPEC, { top: results(body) }),
    fromPolars: (s) => sectionsFrom(Q4_SPEC, s),
    fromDuckDb: ([rows]) => sectionsFrom(Q4_SPEC, { top: rows! }),
  },
  {
    id: 'Q5',
    title: 'anomalies |z| > 3 (population stddev): count + top 100',
    engine: [{ method: 'GET', path: '/query/anomalies?column=value&threshold=3&limit=100&ddof=0' }],
    polars: 'Q5',
    sql: [
      ANOMALY_MOMENTS,
      `WITH m AS (${ANOMALY_MOMENTS}),
       hits AS (SELECT e.timestamp, e.event_type, e.user_id, e.value, (e.value - m.mean) / m.stddev AS z_score
                FROM events e, m WHERE e.value IS NOT NULL AND m.n >= 2 AND m.stddev > 0)
       SELECT *, count(*) OVER () AS total FROM hits WHERE abs(z_score) > 3
       ORDER BY abs(z_score) DESC, timestamp, user_id, event_type LIMIT 100`,
    ],
    spec: Q5_SPEC,
    fromEngine: ([body]) => {
      const b = body as { count: number; mean: number | null; stddev: number | null; values: number; anomalies: Array<Record<string, unknown>> };
      return { totals: [{ count: b.count, values: b.values, mean: cell(b.mean), stddev: cell(b.stddev) }], top: pick(b.anomalies, ['timestamp', 'event_type', 'user_id', 'value', 'z_score']) };
    },
    fromPolars: (s) => sectionsFrom(Q5_SPEC, s),
    fromDuckDb: ([moments, hits]) => {
      const m = moments![0]!;
      const total = hits!.length ? cell(hits![0]!.total) : 0;
      return { totals: [{ count: total, values: cell(m.n), mean: cell(m.mean), stddev: cell(m.stddev) }], top: pick(hits!, ['timestamp', 'event_type', 'user_id', 'value', 'z_score']) };
    },
  },
  {
    id: 'Q6',
    title: `ordered funnel ${FUNNEL_STEPS.join(' → ')}, no window`,
    engine: [{ method: 'POST', path: '/query/funnel', body: { steps: FUNNEL_STEPS } }],
    polars: 'Q6',
    sql: [funnelSql()],
    spec: Q6_SPEC,
    fromEngine: ([body]) => ({
      steps: (body as { steps: Array<{ step: number; event_type: string; count: number }> }).steps.map((s) => ({ step: s.step, event_type: s.event_type, users: s.count })),
    }),
    fromPolars: (s) => sectionsFrom(Q6_SPEC, s),
    fromDuckDb: ([rows]) => ({ steps: FUNNEL_STEPS.map((t, i): Row => ({ step: i + 1, event_type: t, users: cell(rows![0]![`s${i + 1}`]) })) }),
  },
  {
    id: 'Q7',
    title: 'summary: count, mean, stddev, min, max, exact quartiles, distinct users/types, time range',
    engine: [
      { method: 'GET', path: '/query/summary?columns=value' },
      { method: 'GET', path: `/query/percentiles?column=value&percentiles=${Object.values(QUARTILES).join(',')}&exact=true` },
    ],
    polars: 'Q7',
    sql: [
      `SELECT count(*) AS count, count(value) AS value_count, avg(value) AS mean, stddev_pop(value) AS stddev,
              min(value) AS min, max(value) AS max, quantile_cont(value, [${Object.values(QUARTILES).join(', ')}]) AS q,
              count(DISTINCT user_id) AS distinct_users, count(DISTINCT event_type) AS distinct_event_types,
              min(timestamp) AS first_timestamp, max(timestamp) AS last_timestamp
       FROM events`,
    ],
    spec: Q7_SPEC,
    fromEngine: ([summary, exact]) => {
      const s = (summary as { stats: Record<string, unknown> }).stats;
      const p = (exact as { percentiles: Record<string, unknown> }).percentiles;
      const row = pick([s], [...Q7_SPEC.stats!.exact, 'mean', 'stddev', 'min', 'max'])[0]!;
      for (const k of Object.keys(QUARTILES)) row[k] = cell(p[k]);
      return { stats: [row] };
    },
    fromPolars: (s) => sectionsFrom(Q7_SPEC, s),
    fromDuckDb: ([rows]) => {
      const r = rows![0]!;
      const row = pick([r], [...Q7_SPEC.stats!.exact, 'mean', 'stddev', 'min', 'max'])[0]!;
      const q = (r.q as number[] | null) ?? [];
      Object.keys(QUARTILES).forEach((k, i) => (row[k] = cell(q[i])));
      return { stats: [row] };
    },
  },
  {
    id: 'dash',
    title: 'GET /dashboard/metrics (engine only)',
    engine: [{ method: 'GET', path: '/dashboard/metrics' }],
    polars: null,
    sql: null,
    spec: {},
    fromEngine: () => ({}),
    fromPolars: () => ({}),
    fromDuckDb: () => ({}),
  },
];
