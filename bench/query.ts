/**
 * npm run bench:query [-- --events 1000000 --runs 20 --shards N --json out.json]
 *
 * Starts the engine with its defaults, ingests --events events, then times every query route
 * (sequential requests, after 2 warm-up runs) and prints median and p95 latency per route.
 * `GET /health` is the baseline row: the HTTP round trip every query pays anyway.
 */
import { join } from 'node:path';
import { ROOT, parseArgs, printTable, spawnServer, writeJson } from './bench-util.js';
import { ingestEvents } from './ingest-events.js';

const args = parseArgs(process.argv.slice(2));
const total = Number(args.events ?? 1_000_000);
const runs = Number(args.runs ?? 20);
const shardsArg = args.shards ? ['--shards', String(args.shards)] : [];

interface RouteSpec {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  port?: 'ingest' | 'query';
}

const DAY = 1_795_000_000_000;
const ROUTES: RouteSpec[] = [
  { name: 'GET /health (baseline)', method: 'GET', path: '/health' },
  { name: 'aggregate (global)', method: 'POST', path: '/query/aggregate', body: {} },
  { name: 'aggregate by event_type', method: 'POST', path: '/query/aggregate', body: { groupBy: ['event_type'], metrics: ['value'] } },
  { name: 'aggregate by user_id', method: 'POST', path: '/query/aggregate', body: { groupBy: ['user_id'] } },
  { name: 'aggregate by metadata.plan + filter', method: 'POST', path: '/query/aggregate', body: { groupBy: ['metadata.plan'], filter: { from: DAY, to: DAY + 43_200_000 } } },
  { name: 'window 1h tumbling by event_type', method: 'POST', path: '/query/window', body: { windowSize: '1h', groupBy: 'event_type', metric: 'value', aggFunc: 'sum' } },
  { name: 'window 1h/15m hopping p95', method: 'POST', path: '/query/window', body: { windowSize: '1h', slide: '15m', metric: 'value', aggFunc: 'p95' } },
  { name: 'percentiles (digest)', method: 'GET', path: '/query/percentiles?column=value&percentiles=0.5,0.95,0.99' },
  { name: 'percentiles exact', method: 'GET', path: '/query/percentiles?column=value&percentiles=0.5,0.95,0.99&exact=true' },
  { name: 'top-n by user_id', method: 'POST', path: '/query/top-n', body: { groupBy: 'user_id', metric: 'value', aggFunc: 'sum', n: 10 } },
  { name: 'top-n by metadata.page', method: 'POST', path: '/query/top-n', body: { groupBy: 'metadata.page', metric: 'value', aggFunc: 'sum', n: 10 } },
  { name: 'anomalies', method: 'GET', path: '/query/anomalies?column=value&threshold=1.7&limit=100' },
  { name: 'funnel (ordered, 1h)', method: 'POST', path: '/query/funnel', body: { steps: ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase'], window: '1h' } },
  { name: 'summary', method: 'GET', path: '/query/summary?columns=value' },
  { name: 'dashboard', method: 'GET', path: '/dashboard/metrics' },
  { name: 'aggregate by users.country (enrichment)', method: 'POST', path: '/query/aggregate', body: { groupBy: ['users.country'] } },
  { name: 'custom revenue_by_plan', method: 'POST', path: '/query/custom/revenue_by_plan', body: {} },
  { name: 'export ndjson (limit 10k)', method: 'GET', path: '/query/export?format=ndjson&limit=10000' },
  { name: 'export arrow (limit 10k)', method: 'GET', path: '/query/export?format=arrow&limit=10000' },
];

/** An enrichment table for a fifth of the users, so the enrichment route has something to join. */
async function upsertCountries(queryUrl: string): Promise<void> {
  const countries = ['DE', 'FR', 'US', 'JP', 'BR'];
  const rows = Array.from({ length: 20_000 }, (_, i) => ({ user_id: `user-${i * 5}`, country: countries[i % countries.length] }));
  const res = await fetch(`${queryUrl}/enrichment/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'user_id', rows }) });
  if (res.status !== 200) throw new Error(`enrichment upsert failed: ${res.status} ${await res.text()}`);
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const eng = await spawnServer(join(ROOT, 'src/main.ts'), ['--ingest-port', '0', '--query-port', '0', ...shardsArg], (l) => l.msg === 'engine listening');
const { ingestUrl, queryUrl } = eng.line as { ingestUrl: string; queryUrl: string; shards: number };
const shards = (eng.line as { shards: number }).shards;
try {
  console.log(`ingesting ${total.toLocaleString('en-US')} events into ${shards} shards…`);
  await ingestEvents(ingestUrl, { total });
  await upsertCountries(queryUrl);
  const rows: Array<Record<string, string | number>> = [];
  for (const route of ROUTES) {
    const url = (route.port === 'ingest' ? ingestUrl : queryUrl) + route.path;
    const init: RequestInit = route.method === 'POST' ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(route.body) } : {};
    const times: number[] = [];
    let status = 0;
    let bytes = 0;
    for (let i = 0; i < runs + 2; i++) {
      const t0 = performance.now();
      const res = await fetch(url, init);
      const text = await res.text();
      const dt = performance.now() - t0;
      status = res.status;
      bytes = text.length;
      if (i >= 2) times.push(dt);
      if (status !== 200) break;
    }
    times.sort((a, b) => a - b);
    rows.push({
      route: route.name,
      status,
      median_ms: status === 200 ? pct(times, 0.5) : NaN,
      p95_ms: status === 200 ? pct(times, 0.95) : NaN,
      response_bytes: bytes,
    });
  }
  console.log(`\nbench:query — ${total.toLocaleString('en-US')} events, ${shards} shards, ${runs} sequential runs per route\n`);
  printTable(rows);
  if (typeof args.json === 'string') writeJson(args.json, { events: total, shards, runs, rows, at: new Date().toISOString() });
} finally {
  await eng.server.stop();
}
