/**
 * npm run bench:peers [-- --events 1000000 --runs 20 --warmup 2 --cache off|on|both --json out.json
 *                        --seed 42 --span 1d --queries Q1,Q4 --shards N --batch 10000 --concurrency 4
 *                        --live-seconds 10 --live-rate 20000 --live-batch 1000 --stages]
 *
 * The engine against the two things a user could run instead on one box: one plain polars process
 * (an eager DataFrame, every thread; bench/peers/polars_peer.py) and DuckDB in memory (every
 * thread; @duckdb/node-api), on the same seeded events (bench/peers/events.ts).
 *
 * 1. Generates the events as typed-array chunks and writes them to an Arrow IPC file.
 * 2. Loads them into the engine (`src/main.ts`, default config but ports 0 and a temporary data
 *    dir) over `/ingest/batch`, several requests in flight, until its count is N; into the polars
 *    process (reads the Arrow file and writes a Parquet copy); into DuckDB (reads the Parquet).
 * 3. Asks every question of bench/peers/queries.ts of each system: --warmup untimed runs, then
 *    --runs timed ones, one request at a time. A run ends when the whole answer is in this
 *    process: the engine's JSON text, the polars process's JSON text, DuckDB's materialized
 *    result. Prints median and p95 per system and engine median / best peer median.
 * 4. Cross-checks each system's first answer against the others (keys and counts exactly, floats
 *    to 1e-9 relative) and exits 1, printing every differing value, when any disagree.
 * 5. Measures `GET /dashboard/metrics` while the engine ingests --live-rate events/s.
 *
 * Modes. `cold` means no cached partial of any kind is reused by a run; `warm` that it may be.
 * The engine's only cache is its polars processes' per-chunk partials (config `partialCache`,
 * python/engine_polars/partial_cache.py): `--cache off` runs the engine with
 * `--partial-cache false` (cold), `on` with `true` (warm), `both` (the default) cold first, then
 * restarts the engine on the same data dir with the cache on and runs the engine's queries again
 * (warm: the first of its warm-up runs fills the cache). polars and DuckDB keep no results between
 * queries: they run once and their timings stand in both modes' rows. Only then the dashboard
 * under ingest, which adds events: warm first, then (restarted) cold, which sees the warm run's
 * live events too (2 % more at 10 M).
 *
 * `--stages` runs the engine at log level debug and, for each dashboard-under-ingest run, sums up
 * its `query stages` lines (bench/peers/stages.ts): the slowest shard's polars op against the time
 * it waited behind appends and segment rolls, and the rolls in the span.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, printTable, writeJson } from './bench-util.js';
import type { Answer } from './peers/answer.js';
import { writeEventsArrowFile } from './peers/arrow-file.js';
import { assertFields, compareAnswers, type Mismatch } from './peers/compare.js';
import { DuckDbPeer } from './peers/duckdb-peer.js';
import { arrowRows } from './peers/answer.js';
import { EnginePeer, type EngineAnswer } from './peers/engine-peer.js';
import { EventGenerator, makeEventSpec, type EventChunk } from './peers/events.js';
import { dashboardUnderIngest, liveBodies, type LiveDashboardResult } from './peers/live-dashboard.js';
import { PolarsPeer, type PolarsReply } from './peers/polars-peer.js';
import { QUERIES, type PeerQuery } from './peers/queries.js';
import { dashboardStages, type DashboardStages } from './peers/stages.js';
import { timeRuns, type Timing } from './peers/timing.js';

const args = parseArgs(process.argv.slice(2));
const num = (name: string, dflt: number): number => {
  const v = args[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a number ≥ 0, got ${String(v)}`);
  return n;
};

function parseSpan(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`--span: expected <number><ms|s|m|h|d>, e.g. 1h or 1d, got ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

const total = num('events', 1_000_000);
const seed = num('seed', 42);
const spanMs = parseSpan(typeof args.span === 'string' ? args.span : '1d');
const runs = num('runs', 20);
const warmup = num('warmup', 2);
const batch = num('batch', 10_000);
const concurrency = Math.max(1, num('concurrency', 4));
const live = { rate: num('live-rate', 20_000), batch: num('live-batch', 1_000), seconds: num('live-seconds', 10), dashboardEveryMs: 250, seed: seed + 1 };
const cache = typeof args.cache === 'string' ? args.cache : 'both';
if (cache !== 'off' && cache !== 'on' && cache !== 'both') throw new Error(`--cache: expected off, on or both, got ${String(args.cache)}`);
type Mode = 'cold' | 'warm';
const modes: Mode[] = cache === 'off' ? ['cold'] : cache === 'on' ? ['warm'] : ['cold', 'warm'];
const stages = args.stages !== undefined;
/** The engine's flags for a mode. */
const engineArgs = (mode: Mode): string[] => [
  ...(args.shards ? ['--shards', String(args.shards)] : []),
  '--partial-cache',
  mode === 'warm' ? 'true' : 'false',
  ...(stages ? ['--log-level', 'debug'] : []),
];
const wanted = typeof args.queries === 'string' ? new Set(args.queries.split(',')) : null;
const queries = QUERIES.filter((q) => !wanted || wanted.has(q.id));
if (wanted) for (const id of wanted) if (!QUERIES.some((q) => q.id === id)) throw new Error(`--queries: unknown ${id}; expected some of ${QUERIES.map((q) => q.id).join(',')}`);
if (runs + warmup < 1) throw new Error('--runs + --warmup must be at least 1');

const progress = (msg: string) => process.stderr.write(msg + '\n');
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');

type SystemName = 'engine' | 'polars' | 'duckdb';
const SYSTEMS: SystemName[] = ['engine', 'polars', 'duckdb'];

interface SystemResult {
  timing?: Timing;
  /** Why the system gave no answer (e.g. the engine refused the query with a 400). */
  error?: string;
  answer?: Answer;
}

interface QueryResult {
  id: string;
  title: string;
  systems: Partial<Record<SystemName, SystemResult>>;
  mismatches: Array<{ a: SystemName; b: SystemName; diffs: Mismatch[] }>;
}

class EngineRefused extends Error {}

function engineBodies(answers: EngineAnswer[]): unknown[] {
  for (const a of answers) if (a.status !== 200) throw new EngineRefused(`HTTP ${a.status}: ${a.text.slice(0, 300)}`);
  // an Arrow answer as the JSON answer's body: its rows under `results`
  return answers.map((a) => (a.bytes ? { results: arrowRows(a.bytes) } : (JSON.parse(a.text) as unknown)));
}

async function measure(system: SystemName, q: PeerQuery, engine: EnginePeer, polars: PolarsPeer, duck: DuckDbPeer): Promise<SystemResult | undefined> {
  try {
    if (system === 'engine') {
      const { timing, first } = await engine.timeRuns(q.engine, warmup, runs);
      const answer = q.fromEngine(engineBodies(first));
      return { timing, answer };
    }
    if (system === 'polars') {
      if (!q.polars) return undefined;
      const name = q.polars;
      const { timing, first } = await timeRuns<PolarsReply>(() => polars.query(name), warmup, runs);
      return { timing, answer: q.fromPolars(JSON.parse(first.payload.toString('utf8')) as Record<string, Array<Record<string, unknown>>>) };
    }
    if (!q.sql) return undefined;
    const sql = q.sql;
    const { timing, first } = await timeRuns(() => duck.run(sql), warmup, runs);
    return { timing, answer: q.fromDuckDb(first.map((r) => DuckDbPeer.rows(r))) };
  } catch (err) {
    if (err instanceof EngineRefused) return { error: err.message };
    throw err;
  }
}

function crossCheck(q: PeerQuery, systems: QueryResult['systems']): QueryResult['mismatches'] {
  const out: QueryResult['mismatches'] = [];
  const have = SYSTEMS.filter((s) => systems[s]?.answer);
  for (const s of have) assertFields(q.spec, systems[s]!.answer!, `${q.id} ${s}`);
  for (let i = 0; i < have.length; i++) {
    for (let j = i + 1; j < have.length; j++) {
      const diffs = compareAnswers(q.spec, systems[have[i]!]!.answer!, systems[have[j]!]!.answer!);
      if (diffs.length) out.push({ a: have[i]!, b: have[j]!, diffs });
    }
  }
  return out;
}

/** The system that differs from two others which agree with each other, if there is one. */
function oddOneOut(r: QueryResult): SystemName | null {
  if (SYSTEMS.some((s) => !r.systems[s]?.answer)) return null;
  const differs = (x: SystemName, y: SystemName) => r.mismatches.some((m) => (m.a === x && m.b === y) || (m.a === y && m.b === x));
  return SYSTEMS.find((s) => SYSTEMS.filter((o) => o !== s).every((o) => differs(s, o)) && !differs(...(SYSTEMS.filter((o) => o !== s) as [SystemName, SystemName]))) ?? null;
}

function printMismatches(r: QueryResult): void {
  const odd = oddOneOut(r);
  const why = odd === 'engine' ? ': an engine bug' : odd ? ": the peer's query does not match the engine's documented semantics, or the peer is wrong" : '';
  console.error(`\n!! ${r.id} (${r.title}): answers disagree${odd ? ` — ${odd} differs from the other two, which agree${why}` : ''}`);
  for (const m of r.mismatches) {
    console.error(`   ${m.a} vs ${m.b}: ${m.diffs.length} difference(s)`);
    for (const d of m.diffs.slice(0, 20)) {
      console.error(`     ${d.at} ${d.field}: ${m.a}=${JSON.stringify(d.a)} ${m.b}=${JSON.stringify(d.b)}${d.rel !== undefined ? ` (relative ${d.rel.toExponential(2)})` : ''}`);
    }
    if (m.diffs.length > 20) console.error(`     … and ${m.diffs.length - 20} more`);
  }
}

function ratioCell(r: QueryResult): string {
  const e = r.systems.engine?.timing?.median_ms;
  const peers = (['polars', 'duckdb'] as const).map((s) => r.systems[s]?.timing?.median_ms).filter((v): v is number => v !== undefined);
  if (e === undefined || peers.length === 0) return '—';
  return (e / Math.min(...peers)).toFixed(2);
}

function queryRows(results: QueryResult[], mode: string): Array<Record<string, string | number>> {
  const ms = (t: Timing | undefined, k: 'median_ms' | 'p95_ms', err?: string) => (t ? Number(t[k].toFixed(1)) : err ? 'refused' : '—');
  return results.map((r) => {
    const row: Record<string, string | number> = { mode, query: r.id };
    for (const s of SYSTEMS) {
      row[`${s} med ms`] = ms(r.systems[s]?.timing, 'median_ms', r.systems[s]?.error);
      row[`${s} p95 ms`] = ms(r.systems[s]?.timing, 'p95_ms', r.systems[s]?.error);
    }
    row['engine/best'] = ratioCell(r);
    const answer = r.systems.engine?.answer ?? r.systems.polars?.answer;
    row.rows = answer && Object.keys(answer).length ? Object.values(answer).reduce((n, rows) => n + rows.length, 0) : '—';
    const answered = SYSTEMS.filter((s) => r.systems[s]?.answer).length;
    row.check = r.mismatches.length ? 'DIFF' : answered >= 2 ? `ok (${answered})` : '—';
    return row;
  });
}

// ---------------------------------------------------------------------------------------------

const files = mkdtempSync(join(tmpdir(), 'bench-peers-files-'));
let engine: EnginePeer | undefined;
let polars: PolarsPeer | undefined;
let duck: DuckDbPeer | undefined;
let failed = false;
try {
  const spec = makeEventSpec(total, seed, spanMs);
  progress(`generating ${fmtInt(total)} events (seed ${seed}, span ${spanMs / 3_600_000} h, ${fmtInt(spec.users)} possible users)…`);
  const gen = new EventGenerator(spec);
  const chunks: EventChunk[] = [];
  let t0 = performance.now();
  for (const c of gen.chunks(262_144)) chunks.push(c);
  progress(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const arrowPath = join(files, 'events.arrow');
  const parquetPath = join(files, 'events.parquet');
  t0 = performance.now();
  await writeEventsArrowFile(arrowPath, chunks, gen.userIds);
  progress(`  Arrow IPC file written in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const load: Array<Record<string, string | number>> = [];

  // Engine.
  engine = await EnginePeer.start(engineArgs(modes[0]!));
  progress(`engine: ${engine.shards} shards; ingesting over HTTP (${fmtInt(batch)} events per request, ${concurrency} in flight)…`);
  t0 = performance.now();
  await engine.ingest(chunks, gen.userIds, {
    batch,
    concurrency,
    onProgress: (p) => progress(`  engine: ${fmtInt(p.sent)} / ${fmtInt(p.total)} accepted, ${fmtInt(p.sent / (p.elapsedMs / 1000))} events/s`),
  });
  await engine.waitForCount(total);
  const engineLoadS = (performance.now() - t0) / 1000;
  load.push({ system: 'engine', load_s: Number(engineLoadS.toFixed(2)), events_per_s: Math.round(total / engineLoadS), how: 'HTTP /ingest/batch JSON, until the count is N' });

  // Polars.
  progress('polars: reading the Arrow IPC file, writing Parquet for DuckDB…');
  polars = new PolarsPeer();
  t0 = performance.now();
  const pinfo = await polars.load(arrowPath, parquetPath);
  load.push({ system: 'polars', load_s: Number((pinfo.load_ms / 1000).toFixed(2)), events_per_s: Math.round(total / (pinfo.load_ms / 1000)), how: `read_ipc + cast + rechunk (polars ${pinfo.polars}, ${pinfo.threads} threads)` });
  if (pinfo.rows !== total) throw new Error(`polars loaded ${pinfo.rows} rows, expected ${total}`);

  // DuckDB.
  progress('duckdb: reading the Parquet file…');
  duck = await DuckDbPeer.open();
  t0 = performance.now();
  const drows = await duck.load(parquetPath);
  const duckLoadS = (performance.now() - t0) / 1000;
  load.push({ system: 'duckdb', load_s: Number(duckLoadS.toFixed(2)), events_per_s: Math.round(total / duckLoadS), how: `read_parquet into a table (${duck.version}, ${duck.threads} threads; Parquet written by polars in ${((pinfo.parquet_ms ?? 0) / 1000).toFixed(2)} s)` });
  if (drows !== total) throw new Error(`duckdb loaded ${drows} rows, expected ${total}`);
  rmSync(arrowPath, { force: true });
  rmSync(parquetPath, { force: true });

  // Queries: the peers once, the engine once per mode (see the header comment).
  const peerRuns = new Map<string, QueryResult['systems']>();
  const byMode = new Map<Mode, QueryResult[]>();
  const liveByMode = new Map<Mode, { result: LiveDashboardResult; stages: DashboardStages | null }>();
  const cacheBytes = new Map<Mode, number[]>();
  const idleStages = new Map<Mode, DashboardStages>();
  let held = total;
  for (const [i, mode] of modes.entries()) {
    if (i > 0) {
      progress(`engine: restarting on its data dir with --partial-cache ${mode === 'warm'} (${mode})…`);
      t0 = performance.now();
      engine = await engine.restart(engineArgs(mode));
      await engine.waitForCount(held, 600_000);
      progress(`  ready with ${fmtInt(held)} events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const results: QueryResult[] = [];
    const idleFrom = Date.now();
    for (const q of queries) {
      const systems: QueryResult['systems'] = { ...(peerRuns.get(q.id) ?? {}) };
      for (const s of SYSTEMS) {
        if ((s === 'polars' && !q.polars) || (s === 'duckdb' && !q.sql)) continue;
        if (s !== 'engine' && peerRuns.has(q.id)) continue;
        progress(`${q.id} ${s}${s === 'engine' ? ` (${mode})` : ''}: ${warmup} warm-up + ${runs} timed runs…`);
        const r = await measure(s, q, engine, polars, duck);
        if (r) systems[s] = r;
        if (r?.error) progress(`  ${q.id} ${s} refused: ${r.error}`);
      }
      peerRuns.set(q.id, { polars: systems.polars, duckdb: systems.duckdb });
      const result: QueryResult = { id: q.id, title: q.title, systems, mismatches: crossCheck(q, systems) };
      if (result.mismatches.length) printMismatches(result);
      results.push(result);
    }
    byMode.set(mode, results);
    if (stages) idleStages.set(mode, dashboardStages(engine.logLines, idleFrom, Date.now()));
    cacheBytes.set(mode, (await engine.shardStats()).map((st) => Number(st.polars_partial_cache_bytes ?? 0)));
  }

  // The dashboard while the engine ingests, after every mode's cross-checks (it adds events): the
  // mode the engine runs in first, then the other (which also sees the first one's live events).
  if (live.seconds > 0) {
    for (const [i, mode] of [...modes].reverse().entries()) {
      if (i > 0) {
        progress(`engine: restarting on its data dir with --partial-cache ${mode === 'warm'} (${mode})…`);
        engine = await engine.restart(engineArgs(mode));
        await engine.waitForCount(held, 600_000);
      }
      progress(`dashboard under ingest (${mode}): ${fmtInt(live.rate)} events/s as ${fmtInt(live.batch)}-event batches for ${live.seconds} s…`);
      const bodies = liveBodies(live);
      const from = Date.now();
      const result = await dashboardUnderIngest(engine.ingestUrl, engine.queryUrl, bodies, live);
      held += result.sent_events;
      // the last query's stage line may be written just after its answer
      await new Promise((r) => setTimeout(r, 200));
      liveByMode.set(mode, { result, stages: stages ? dashboardStages(engine.logLines, from, Date.now()) : null });
    }
  }
  const results = [...byMode.values()].flat();

  // Report.
  console.log(`\nbench:peers — ${fmtInt(total)} events (seed ${seed}, span ${spanMs / 3_600_000} h), engine ${engine.shards} shards; ` + `${warmup} warm-up + ${runs} timed runs per query and system\n`);
  printTable(load);
  console.log();
  for (const q of queries) console.log(`${q.id.padEnd(4)} ${q.title}`);
  console.log(`\nmodes: cold = the engine with --partial-cache false, warm = with true; polars and DuckDB keep nothing between queries and ran once (the same timings in both modes)\n`);
  printTable([...byMode].flatMap(([mode, rs]) => queryRows(rs, mode)));
  console.log(`\ncached partials held by the polars processes after the queries (bytes per shard): ${[...cacheBytes].map(([m, b]) => `${m} ${b.map(fmtInt).join(' + ')}`).join('; ')}`);
  for (const [mode, { result: liveResult, stages: st }] of liveByMode) {
    const idle = byMode.get(mode)?.find((r) => r.id === 'dash')?.systems.engine?.timing;
    console.log(`\nGET /dashboard/metrics (${mode}) while ingesting ${fmtInt(liveResult.target_events_per_s)} events/s (achieved ${fmtInt(liveResult.achieved_events_per_s)}, ${liveResult.ingest_503} refusals 503):\n`);
    const rows: Array<Record<string, string | number>> = [];
    const t = (what: string, x: Timing) => ({ what, samples: x.runs, median_ms: Number(x.median_ms.toFixed(1)), p95_ms: Number(x.p95_ms.toFixed(1)), max_ms: Number(x.max_ms.toFixed(1)) });
    if (idle) rows.push({ what: `dashboard, idle (the ${mode} dash row above)`, samples: idle.runs, median_ms: idle.median_ms, p95_ms: idle.p95_ms, max_ms: idle.max_ms });
    const calm = idleStages.get(mode);
    if (calm && calm.requests) rows.push(t('  idle stages: engine-timed request', calm.ms), t('  idle stages: slowest shard op_ms', calm.op_ms), t('  idle stages: slowest shard op_cpu_ms', calm.op_cpu_ms), t('  idle stages: merge_ms', calm.merge_ms));
    rows.push({ what: 'dashboard, during ingest', samples: liveResult.dashboard.runs, median_ms: liveResult.dashboard.median_ms, p95_ms: liveResult.dashboard.p95_ms, max_ms: liveResult.dashboard.max_ms });
    rows.push({ what: `ingest batch of ${fmtInt(live.batch)}`, samples: liveResult.ingest.runs, median_ms: liveResult.ingest.median_ms, p95_ms: liveResult.ingest.p95_ms, max_ms: liveResult.ingest.max_ms });
    if (st) {
      rows.push(t('  stages: engine-timed request', st.ms), t('  stages: slowest shard op_ms', st.op_ms), t('  stages: slowest shard op_cpu_ms', st.op_cpu_ms));
      rows.push(t('  stages: longest shard wait (polars_ms − op_ms)', st.wait_ms), t('  stages: longest queue + hand-over', st.handover_ms), t('  stages: longest log sync (in the hand-over)', st.sync_ms), t('  stages: merge_ms', st.merge_ms));
    }
    printTable(rows);
    if (st) {
      const f = (x: number) => x.toFixed(1);
      console.log(`  ${st.stalled} of ${st.requests} requests waited > ${st.stall_ms} ms in some shard; the slowest ${st.slowest.requests}: mean ${f(st.slowest.ms)} ms, of it op ${f(st.slowest.op_ms)}, wait ${f(st.slowest.wait_ms)}, queue + hand-over ${f(st.slowest.handover_ms)}`);
      console.log(`  segment rolls in the span: ${st.rolls.length ? st.rolls.map((r) => `at ${(r.at_ms / 1000).toFixed(1)} s shard ${String(r.shard)} ${String(r.rows)} rows ${String(r.ms)} ms`).join('; ') : 'none'}; load average (1 min) at the end ${st.load_1m ?? '?'}`);
      if (st.stalls.length) console.log(`  stalled requests (answered at s: ms, wait): ${st.stalls.map((x) => `${(x.at_ms / 1000).toFixed(1)}: ${Math.round(x.ms)}, ${Math.round(x.wait_ms)}`).join('; ')}`);
    }
    if (liveResult.dashboard_errors) console.log(`(${liveResult.dashboard_errors} dashboard requests answered other than 200)`);
  }

  const disagreeing = results.filter((r) => r.mismatches.length);
  const refused = results.filter((r) => SYSTEMS.some((s) => r.systems[s]?.error));
  if (refused.length) console.log(`\nrefused: ${refused.map((r) => `${r.id} (${SYSTEMS.filter((s) => r.systems[s]?.error).map((s) => `${s}: ${r.systems[s]!.error}`).join('; ')})`).join(', ')}`);
  if (disagreeing.length) {
    failed = true;
    console.log(`\nCROSS-CHECK FAILED for ${disagreeing.map((r) => r.id).join(', ')}:`);
    for (const r of disagreeing) printMismatches(r);
  } else {
    console.log('\ncross-check: every answer agrees between the systems that answered (keys and counts exact, floats within 1e-9 relative)');
  }

  if (typeof args.json === 'string') {
    const rowsOf = (rs: QueryResult[]) => rs.map((r) => ({
      id: r.id,
      title: r.title,
      ...Object.fromEntries(SYSTEMS.map((s) => [s, r.systems[s] ? { timing: r.systems[s]!.timing ?? null, error: r.systems[s]!.error ?? null } : null])),
      engine_over_best_peer: ratioCell(r) === '—' ? null : Number(ratioCell(r)),
      rows: Object.fromEntries(Object.entries(r.systems.engine?.answer ?? r.systems.polars?.answer ?? {}).map(([k, v]) => [k, v.length])),
      agrees: r.mismatches.length === 0,
      mismatches: r.mismatches.map((m) => ({ a: m.a, b: m.b, count: m.diffs.length, first: m.diffs.slice(0, 50) })),
    }));
    writeJson(args.json, {
      events: total,
      seed,
      span_ms: spanMs,
      distinct_user_universe: spec.users,
      shards: engine.shards,
      runs,
      warmup,
      load,
      modes: Object.fromEntries([...byMode].map(([m, rs]) => [m, rowsOf(rs)])),
      cold_equals_warm: false,
      partial_cache_bytes: Object.fromEntries(cacheBytes),
      dashboard_under_ingest: Object.fromEntries([...liveByMode].map(([m, l]) => [m, { ...l.result, stages: l.stages }])),
      dashboard_idle_stages: Object.fromEntries(idleStages),
      at: new Date().toISOString(),
    });
  }
} finally {
  duck?.close();
  await polars?.stop();
  await engine?.stop();
  rmSync(files, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
