/**
 * npm run bench:isolation [-- --events 1000000 --duration 10 --connections 4 --single-rate 1000
 *                            --batch-rate 20 --shards N --json out.json]
 *
 * Does one heavy query hurt ingest? Starts the engine (`src/main.ts`, defaults, fsync off, a
 * temporary data dir), loads --events events, then measures ingest latency with autocannon at a
 * fixed request rate, for single events (POST /ingest) and 1,000-event batches (POST
 * /ingest/batch):
 *   1. idle: nothing else running (the baseline);
 *   2. busy: while a separate process runs heavy queries back to back (aggregate by user_id,
 *      then a 1h/15m hopping-window p95, in a loop).
 * Prints p50/p99 for both and the busy/idle p99 ratio (goal: ≤ 2). A fixed rate (not as fast as
 * possible) keeps the comparison fair: both phases offer the same load, so a slower busy phase
 * shows up as latency rather than as fewer requests. The query loop runs in its own process so
 * parsing multi-MB answers never stalls the load generator's event loop.
 */
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, parseArgs, printTable, spawnServer, writeJson } from './bench-util.js';
import { ingestEvents } from './ingest-events.js';

const args = parseArgs(process.argv.slice(2));

const HEAVY_QUERIES = [
  { name: 'aggregate by user_id', path: '/query/aggregate', body: { groupBy: ['user_id'] } },
  { name: 'window 1h/15m hopping p95', path: '/query/window', body: { windowSize: '1h', slide: '15m', metric: 'value', aggFunc: 'p95' } },
];

/** `--query-loop <queryUrl>`: the busy phase's query process. Prints one JSON line per query. */
async function queryLoop(queryUrl: string): Promise<void> {
  process.on('SIGTERM', () => process.exit(0));
  for (let i = 0; ; i++) {
    const q = HEAVY_QUERIES[i % HEAVY_QUERIES.length]!;
    const t0 = performance.now();
    const res = await fetch(queryUrl + q.path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(q.body) });
    const bytes = (await res.arrayBuffer()).byteLength;
    console.log(JSON.stringify({ query: q.name, status: res.status, ms: performance.now() - t0, bytes }));
  }
}

if (typeof args['query-loop'] === 'string') {
  await queryLoop(args['query-loop']);
}

const total = Number(args.events ?? 1_000_000);
const duration = Number(args.duration ?? 10);
const connections = Number(args.connections ?? 4);
const singleRate = Number(args['single-rate'] ?? 1000);
const batchRate = Number(args['batch-rate'] ?? 20);
const shardsArg = args.shards ? ['--shards', String(args.shards)] : [];

function makeBodies(count: number, eventsPerBody: number, seed: number): string[] {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const types = ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase'];
  return Array.from({ length: count }, () => {
    const events = Array.from({ length: eventsPerBody }, () => ({
      timestamp: 1_795_000_000_000 + Math.floor(rand() * 86_400_000),
      event_type: types[Math.floor(rand() * types.length)],
      user_id: `user-${Math.floor(rand() * 100_000)}`,
      value: Math.round(rand() * 10_000) / 100,
    }));
    return JSON.stringify(eventsPerBody === 1 ? events[0] : { events });
  });
}

interface Latency {
  requests: number;
  non2xx: number;
  errors: number;
  rate: number;
  p50: number;
  p99: number;
}

async function measure(url: string, path: string, bodies: string[], rate: number): Promise<Latency> {
  const r = await autocannon({
    url: url + path,
    connections,
    duration,
    overallRate: rate,
    requests: bodies.map((body) => ({ method: 'POST', path, body, headers: { 'content-type': 'application/json' } })),
  });
  return { requests: r.requests.total, non2xx: r.non2xx, errors: r.errors, rate: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99 };
}

interface QueryRecord {
  query: string;
  status: number;
  ms: number;
  bytes: number;
}

/** Starts the query loop; resolves once its first query has come back (so the load is warm). */
async function startQueryLoop(queryUrl: string): Promise<{ stop: () => Promise<QueryRecord[]> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/isolation.ts'), '--query-loop', queryUrl], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const records: QueryRecord[] = [];
  let tail = '';
  let first!: () => void;
  const firstDone = new Promise<void>((r) => (first = r));
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (tail + d.toString()).split('\n');
    tail = lines.pop()!;
    for (const line of lines) {
      records.push(JSON.parse(line) as QueryRecord);
      first();
    }
  });
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await firstDone;
  return {
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
      return records;
    },
  };
}

const dataDir = mkdtempSync(join(tmpdir(), 'bench-isolation-'));
const eng = await spawnServer(
  join(ROOT, 'src/main.ts'),
  ['--ingest-port', '0', '--query-port', '0', '--fsync', 'off', '--data-dir', dataDir, ...shardsArg],
  (l) => l.msg === 'engine listening',
  { ENGINE_LOG_LEVEL: 'info' },
);
const { ingestUrl, queryUrl, shards } = eng.line as { ingestUrl: string; queryUrl: string; shards: number };
try {
  console.log(`ingesting ${total.toLocaleString('en-US')} events into ${shards} shards…`);
  await ingestEvents(ingestUrl, { total });
  // The idle baseline starts only when the load has landed: every event queryable, then a pause
  // for the shards' and polars' after-work (sealing, compaction) to finish.
  for (;;) {
    const res = await fetch(`${queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const body = (await res.json()) as { results?: Array<{ count: number }> };
    if ((body.results?.[0]?.count ?? 0) >= total) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 3000));
  const modes = [
    { mode: 'single (1/req)', path: '/ingest', bodies: makeBodies(256, 1, 7), rate: singleRate },
    { mode: 'batch (1000/req)', path: '/ingest/batch', bodies: makeBodies(16, 1000, 8), rate: batchRate },
  ];
  const idle: Latency[] = [];
  for (const m of modes) {
    console.log(`idle: ${m.mode} at ${m.rate} req/s for ${duration}s…`);
    idle.push(await measure(ingestUrl, m.path, m.bodies, m.rate));
  }
  console.log('starting the heavy query loop…');
  const loop = await startQueryLoop(queryUrl);
  const busy: Latency[] = [];
  for (const m of modes) {
    console.log(`busy: ${m.mode} at ${m.rate} req/s for ${duration}s…`);
    busy.push(await measure(ingestUrl, m.path, m.bodies, m.rate));
  }
  const queries = await loop.stop();

  const rows = modes.map((m, i) => ({
    mode: m.mode,
    target_rps: m.rate,
    idle_rps: idle[i]!.rate,
    busy_rps: busy[i]!.rate,
    idle_p50_ms: idle[i]!.p50,
    idle_p99_ms: idle[i]!.p99,
    busy_p50_ms: busy[i]!.p50,
    busy_p99_ms: busy[i]!.p99,
    p99_ratio: busy[i]!.p99 / Math.max(idle[i]!.p99, 1e-9),
    non2xx_idle_busy: `${idle[i]!.non2xx + idle[i]!.errors}/${busy[i]!.non2xx + busy[i]!.errors}`,
  }));
  const byQuery = HEAVY_QUERIES.map((q) => {
    const runs = queries.filter((r) => r.query === q.name);
    const ms = runs.map((r) => r.ms).sort((a, b) => a - b);
    return {
      query: q.name,
      runs: runs.length,
      statuses: [...new Set(runs.map((r) => r.status))].join(','),
      median_ms: ms.length ? ms[Math.floor(ms.length / 2)]! : NaN,
      max_ms: ms.length ? ms[ms.length - 1]! : NaN,
      answer_bytes: runs.length ? runs[runs.length - 1]!.bytes : 0,
    };
  });

  console.log(`\nbench:isolation — ${total.toLocaleString('en-US')} events, ${shards} shards, ${duration}s per run, ${connections} connections, fixed rate; baseline = the same load while idle\n`);
  printTable(rows);
  console.log('\nheavy queries run back to back during the busy phase:\n');
  printTable(byQuery);
  const worst = Math.max(...rows.map((r) => r.p99_ratio));
  console.log(`\nworst busy/idle p99 ratio: ${worst.toFixed(2)} (goal ≤ 2: ${worst <= 2 ? 'met' : 'not met'})`);
  if (typeof args.json === 'string') writeJson(args.json, { events: total, shards, duration, connections, rows, queries: byQuery, at: new Date().toISOString() });
} finally {
  await eng.server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
