/**
 * npm run bench:ingest [-- --duration 10 --connections 16 --shards N --modes batch,single,arrow,batch-wait,single-wait,arrow-wait --fsync batch,off --arrow-events 10000 --json out.json]
 *
 * For each mode (POST /ingest/batch with 1000 events per request, POST /ingest with one,
 * POST /ingest/arrow with `--arrow-events` per Arrow IPC body; the `-wait` modes add
 * `?wait=true`, so each answer is a 200 after the shards synced its events):
 *   1. baseline: a bare Hono server that only parses the same bodies (JSON.parse, or reading the
 *      Arrow record batches) (bench/baseline-server.ts)
 *   2. engine: `src/main.ts` with its defaults and each `--fsync` value, driven by autocannon for
 *      the same duration; then waits until every accepted event is queryable (aggregate count).
 * Prints events/s accepted and stored (stored/s: events queryable ÷ time from the first request
 * until the last of them was), the engine/baseline ratio, the answer latency p50/p99 (for the
 * `-wait` modes: the durable acknowledgement latency) and, with several `--fsync` values, each
 * run's events/s relative to the first value's. Engine and baseline run as child processes so
 * the load generator never shares their event loop.
 */
import { ROOT, parseArgs, printTable, runLoad, spawnServer, writeJson } from './bench-util.js';
import { cpuSince, engineCpu } from './proc-cpu.js';
import { ARROW_STREAM_TYPE } from '../src/router/arrow-ingest/arrow-events.js';
import { arrowBody } from '../test/helpers/arrow-body.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = parseArgs(process.argv.slice(2));
const duration = Number(args.duration ?? 10);
const connections = Number(args.connections ?? 16);
const shardsArg = args.shards ? ['--shards', String(args.shards)] : [];
// 10,000 per body stored more than 100,000 (docs/PERFORMANCE.md): smaller allocations on the HTTP thread, a shorter queue
const arrowEvents = Number(args['arrow-events'] ?? 10_000);

/** The same events for every mode: 5 types, 100,000 users, 20 % with metadata. */
function makeEvents(count: number, rand: () => number) {
  const types = ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase'];
  return Array.from({ length: count }, () => ({
    timestamp: Date.now() - Math.floor(rand() * 3_600_000),
    event_type: types[Math.floor(rand() * types.length)]!,
    user_id: `user-${Math.floor(rand() * 100_000)}`,
    value: Math.round(rand() * 10_000) / 100,
    ...(rand() < 0.2 ? { metadata: { plan: rand() < 0.5 ? 'free' : 'pro' } } : {}),
  }));
}

function makeBodies(count: number, eventsPerBody: number, seed: number, arrow: boolean): Array<string | Buffer> {
  let s = seed;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  const bodies: Array<string | Buffer> = [];
  for (let b = 0; b < count; b++) {
    const events = makeEvents(eventsPerBody, rand);
    if (arrow) bodies.push(Buffer.from(arrowBody(events.map((e) => ({ ...e, metadata: 'metadata' in e ? JSON.stringify(e.metadata) : null })))));
    else bodies.push(JSON.stringify(eventsPerBody === 1 ? events[0] : { events }));
  }
  return bodies;
}

async function postJson(url: string, body: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return res.json();
}

interface ModeResult {
  mode: string;
  fsync: string;
  baseline_events_per_s: number;
  engine_accepted_per_s: number;
  engine_stored_per_s: number;
  ratio_accepted: number;
  ratio_stored: number;
  engine_non2xx: number;
  engine_p50_ms: number;
  engine_p99_ms: number;
  engine_rss_mb: number;
  /** accepted events/s relative to the first --fsync value's run of the same mode */
  vs_first_fsync: number;
  cpu_us_main: number;
  cpu_us_threads: number;
  cpu_us_polars: number;
  cpu_us_loadgen: number;
}

type Mode = 'batch' | 'single' | 'arrow' | 'batch-wait' | 'single-wait' | 'arrow-wait';

async function runMode(mode: Mode, fsyncs: string[]): Promise<ModeResult[]> {
  const kind = mode.replace(/-wait$/, '') as 'batch' | 'single' | 'arrow';
  const eventsPerBody = kind === 'batch' ? 1000 : kind === 'arrow' ? arrowEvents : 1;
  const basePath = kind === 'batch' ? '/ingest/batch' : kind === 'arrow' ? '/ingest/arrow' : '/ingest';
  const path = mode.endsWith('-wait') ? `${basePath}?wait=true` : basePath;
  const contentType = kind === 'arrow' ? ARROW_STREAM_TYPE : 'application/json';
  // arrow: about 1.6 M distinct events, whatever the body size
  const bodies = makeBodies(kind === 'batch' ? 16 : kind === 'arrow' ? Math.max(2, Math.ceil(1_600_000 / eventsPerBody)) : 256, eventsPerBody, 42, kind === 'arrow');

  const base = await spawnServer(join(ROOT, 'bench/baseline-server.ts'), ['0'], (l) => l.msg === 'baseline listening');
  const baseLoad = await runLoad(`http://127.0.0.1:${base.line.port}`, bodies, { connections, duration, path: basePath, contentType });
  await base.server.stop();
  const baselineEps = ((baseLoad.requests - baseLoad.non2xx) * eventsPerBody) / baseLoad.durationS;
  const out: ModeResult[] = [];
  for (const fsync of fsyncs) out.push(await runEngine(mode, fsync, path, contentType, bodies, eventsPerBody, baselineEps, out[0]?.engine_accepted_per_s));
  return out;
}

async function runEngine(mode: Mode, fsync: string, path: string, contentType: string, bodies: Array<string | Buffer>, eventsPerBody: number, baselineEps: number, firstEps: number | undefined): Promise<ModeResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
  const eng = await spawnServer(join(ROOT, 'src/main.ts'), ['--ingest-port', '0', '--query-port', '0', '--data-dir', dataDir, '--fsync', fsync, ...shardsArg], (l) => l.msg === 'engine listening', { ENGINE_LOG_LEVEL: 'info' });
  const { ingestUrl, queryUrl } = eng.line as { ingestUrl: string; queryUrl: string };
  const started = performance.now();
  const cpuBefore = engineCpu(eng.server.child.pid!);
  const loadCpu = process.cpuUsage();
  const load = await runLoad(ingestUrl, bodies, { connections, duration, path, contentType });
  const loadgen = process.cpuUsage(loadCpu);
  const metrics = (await (await fetch(`${ingestUrl}/metrics/ingestion`)).json()) as any;
  const accepted = metrics.total_events as number;
  let stored = 0;
  for (;;) {
    const agg = await postJson(`${queryUrl}/query/aggregate`, {});
    stored = agg.results[0].count;
    if (stored >= accepted) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const storedAt = (performance.now() - started) / 1000;
  const cpu = cpuSince(cpuBefore, engineCpu(eng.server.child.pid!));
  const rss = (await fetch(`${ingestUrl}/stats/shards`).then((r) => r.json())) as any;
  const polarsRss = (rss.shards as Array<{ polars_rss_bytes: number }>).reduce((n, s) => n + (s.polars_rss_bytes ?? 0), 0);
  const mainRss = Number((await import('node:fs')).readFileSync(`/proc/${eng.server.child.pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  await eng.server.stop();
  rmSync(dataDir, { recursive: true, force: true });

  const acceptedEps = accepted / load.durationS;
  const storedEps = stored / storedAt;
  return {
    mode: `${mode} (${eventsPerBody}/req)`,
    fsync,
    baseline_events_per_s: Math.round(baselineEps),
    engine_accepted_per_s: Math.round(acceptedEps),
    engine_stored_per_s: Math.round(storedEps),
    ratio_accepted: acceptedEps / baselineEps,
    ratio_stored: storedEps / baselineEps,
    engine_non2xx: load.non2xx,
    engine_p50_ms: load.latencyP50,
    engine_p99_ms: load.latencyP99,
    engine_rss_mb: Math.round((mainRss + polarsRss) / 1048576),
    vs_first_fsync: firstEps === undefined ? 1 : acceptedEps / firstEps,
    // CPU µs per stored event, from /proc: HTTP thread, the node process's other threads
    // (shard workers, GC and libuv helpers), polars processes, and the load generator
    cpu_us_main: (cpu.main * 1e6) / stored,
    cpu_us_threads: (cpu.otherThreads * 1e6) / stored,
    cpu_us_polars: (cpu.polars * 1e6) / stored,
    cpu_us_loadgen: (loadgen.user + loadgen.system) / stored,
  };
}

const results: ModeResult[] = [];
const modes = (typeof args.modes === 'string' ? args.modes.split(',') : ['batch', 'single']) as Mode[];
const fsyncs = typeof args.fsync === 'string' ? args.fsync.split(',') : ['batch'];
for (const mode of modes) results.push(...(await runMode(mode, fsyncs)));
console.log(`\nbench:ingest — ${duration}s per run, ${connections} connections, baseline = bare Hono + JSON.parse (arrow: + reading the record batches); fsync ${fsyncs.join(' vs ')}; cpu_us_*: CPU µs per stored event\n`);
printTable(results as unknown as Array<Record<string, string | number>>);
if (typeof args.json === 'string') writeJson(args.json, { duration, connections, fsyncs, results, at: new Date().toISOString() });
