/**
 * npm run bench:rss [-- --events 1000000 --shards N --no-restart --rest-seconds 30 --json out.json]
 *
 * Memory of the whole engine (the node process, with its shard and merge-pool threads, plus
 * every polars process) on a fresh data dir:
 *  - idle: after start, before any event;
 *  - peak: the highest total sampled (every 100 ms) while --events events are ingested through
 *    /ingest/batch and until they are all queryable;
 *  - loaded: once they are all queryable and the engine is at rest (samples a second apart
 *    within 1 % for --rest-seconds: jemalloc, the engine's idle collections and V8's memory
 *    reducer give memory back in steps after a burst; see `settled`), and at its first flat 5 s;
 *  - after a by-user query: one `POST /query/aggregate` by (event_type, user_id) as Arrow, then
 *    at rest again: what a query leaves held (the shards' kept dictionary listings and ranks);
 *  - restart: the engine stopped and started again on the same data dir: time until `/ready`
 *    answers 200 and every event is counted, the peak while it recovers, and the RSS after it.
 * bytes/event is (loaded − idle) / events; the events go in two halves with a settled sample
 * between, and marginal bytes/event is (loaded − halfway) / second half: what one more event
 * costs once the one-time costs of a loaded engine are paid. Node and polars (every child process) are reported
 * apart, and the total also as PSS (shared library pages counted once, not once per process) and
 * as its file-backed part (`file_mb`: library code paged in as it first runs).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, parseArgs, printTable, spawnServer, writeJson } from './bench-util.js';
import { ingestEvents } from './ingest-events.js';

const args = parseArgs(process.argv.slice(2));
const total = Number(args.events ?? 1_000_000);
const shardsArg = args.shards ? ['--shards', String(args.shards)] : [];
const MB = 1048576;
/** seconds the total must stay flat to count as at rest (--rest-seconds) */
const restWindow = Number(args['rest-seconds'] ?? 30);

function rssOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096;
  } catch {
    return 0;
  }
}

/** A `<field>:  <n> kB` line of a /proc/<pid> file, in bytes (0 once the process is gone). */
function procBytes(pid: number, file: string, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Proportional set size: like RSS, but a page shared by several processes (the polars and
 * pyarrow libraries' code, mapped by every polars process) counts once, split between them.
 */
const pssOf = (pid: number) => procBytes(pid, 'smaps_rollup', 'Pss');

/**
 * File-backed resident pages (`RssFile`): library code and mapped files, paged in as code runs
 * and given back under memory pressure; the rest of RSS is anonymous memory (heaps, columns).
 */
const fileRssOf = (pid: number) => procBytes(pid, 'status', 'RssFile');

/** RSS of a process (`node`) and of its descendants (`children`: the polars processes). */
function treeRss(root: number): { node: number; children: number; total: number; pss: number; file: number; processes: number } {
  const kids = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = kids.get(ppid) ?? [];
      list.push(Number(entry));
      kids.set(ppid, list);
    } catch {
      // process went away
    }
  }
  const node = rssOf(root);
  let children = 0;
  let pss = pssOf(root);
  let file = fileRssOf(root);
  let processes = 1;
  const stack = [...(kids.get(root) ?? [])];
  while (stack.length) {
    const pid = stack.pop()!;
    children += rssOf(pid);
    pss += pssOf(pid);
    file += fileRssOf(pid);
    processes++;
    stack.push(...(kids.get(pid) ?? []));
  }
  return { node, children, total: node + children, pss, file, processes };
}

/** Samples the tree's total RSS every 100 ms until stopped; returns the highest. */
function peakSampler(pid: number): { stop: () => number } {
  let peak = treeRss(pid).total;
  const timer = setInterval(() => (peak = Math.max(peak, treeRss(pid).total)), 100);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, treeRss(pid).total);
    },
  };
}

async function count(queryUrl: string): Promise<number> {
  const res = await fetch(`${queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  if (res.status !== 200) return -1;
  return ((await res.json()) as { results: Array<{ count: number }> }).results[0]!.count;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The tree's RSS at rest. Memory comes back in steps after a burst, each after a flat stretch:
 * polars' jemalloc within a second or two, the engine's idle collections (src/workers/idle-gc.ts)
 * a second after the last append, V8's memory reducer 8-20 s after its last collection (a flat
 * 5 s stretch sat 30-50 MB above where the engine came to rest). So this samples once a second
 * until `window` samples in a row stay within 1 % of each other (at most three minutes), and
 * reports the last; `quick` is the first 5-sample flat stretch, the criterion used until
 * 2026-11-30, reported for comparison.
 */
async function settled(pid: number, window = restWindow): Promise<ReturnType<typeof treeRss> & { quick: number }> {
  const samples: Array<ReturnType<typeof treeRss>> = [treeRss(pid)];
  const flat = (n: number) => {
    if (samples.length < n) return false;
    const totals = samples.slice(-n).map((w) => w.total);
    return Math.max(...totals) - Math.min(...totals) <= Math.min(...totals) * 0.01;
  };
  let quick = 0;
  for (let i = 0; i < 180; i++) {
    await sleep(1000);
    samples.push(treeRss(pid));
    if (!quick && flat(5)) quick = samples[samples.length - 1]!.total;
    if (flat(window)) break;
  }
  return { ...samples[samples.length - 1]!, quick: quick || samples[samples.length - 1]!.total };
}

async function start(dataDir: string) {
  const eng = await spawnServer(join(ROOT, 'src/main.ts'), ['--ingest-port', '0', '--query-port', '0', '--data-dir', dataDir, ...shardsArg], (l) => l.msg === 'engine listening');
  const { ingestUrl, queryUrl } = eng.line as { ingestUrl: string; queryUrl: string };
  return { eng, ingestUrl, queryUrl, pid: eng.server.child.pid! };
}

const dataDir = mkdtempSync(join(tmpdir(), 'bench-rss-'));
const rows: Array<Record<string, string | number>> = [];
const out: Record<string, number | string> = { events: total };
const mb = (b: number) => Math.round(b / MB);
try {
  let run = await start(dataDir);
  await sleep(1000);
  const idle = await settled(run.pid);

  const started = performance.now();
  let sampler = peakSampler(run.pid);
  // in two halves (the second with another seed: new events, same distribution), sampling the
  // settled engine in between: the second half's growth is what one more event costs once the
  // one-time costs (rings paged in, library code, heaps sized for the load) are paid
  const half = Math.floor(total / 2);
  await ingestEvents(run.ingestUrl, { total: half });
  while ((await count(run.queryUrl)) < half) await sleep(100);
  let ingestSeconds = (performance.now() - started) / 1000;
  const halfway = await settled(run.pid);
  const resumed = performance.now();
  await ingestEvents(run.ingestUrl, { total: total - half, seed: 54321 });
  while ((await count(run.queryUrl)) < total) await sleep(100);
  ingestSeconds += (performance.now() - resumed) / 1000;
  const loaded = await settled(run.pid);
  const peak = sampler.stop();
  Object.assign(out, {
    processes: loaded.processes,
    idle_rss_mb: mb(idle.total),
    idle_node_mb: mb(idle.node),
    idle_polars_mb: mb(idle.children),
    loaded_rss_mb: mb(loaded.total),
    loaded_node_mb: mb(loaded.node),
    loaded_polars_mb: mb(loaded.children),
    bytes_per_event: Math.round((loaded.total - idle.total) / total),
    loaded_quick_rss_mb: mb(loaded.quick),
    quick_bytes_per_event: Math.round((loaded.quick - idle.quick) / total),
    halfway_rss_mb: mb(halfway.total),
    marginal_bytes_per_event: Math.round((loaded.total - halfway.total) / (total - half)),
    idle_pss_mb: mb(idle.pss),
    loaded_pss_mb: mb(loaded.pss),
    pss_bytes_per_event: Math.round((loaded.pss - idle.pss) / total),
    idle_file_mb: mb(idle.file),
    loaded_file_mb: mb(loaded.file),
    anon_bytes_per_event: Math.round((loaded.total - loaded.file - (idle.total - idle.file)) / total),
    peak_ingest_mb: mb(peak),
    ingest_seconds: Math.round(ingestSeconds * 10) / 10,
  });
  rows.push({ phase: 'idle', total_mb: mb(idle.total), node_mb: mb(idle.node), polars_mb: mb(idle.children), pss_mb: mb(idle.pss), file_mb: mb(idle.file), seconds: '' });
  rows.push({ phase: 'ingest (peak)', total_mb: mb(peak), node_mb: '', polars_mb: '', pss_mb: '', file_mb: '', seconds: Math.round(ingestSeconds * 10) / 10 });
  rows.push({ phase: `halfway (${half.toLocaleString('en-US')})`, total_mb: mb(halfway.total), node_mb: mb(halfway.node), polars_mb: mb(halfway.children), pss_mb: mb(halfway.pss), file_mb: mb(halfway.file), seconds: '' });
  rows.push({ phase: 'loaded (first flat 5 s)', total_mb: mb(loaded.quick), node_mb: '', polars_mb: '', pss_mb: '', file_mb: '', seconds: '' });
  rows.push({ phase: `loaded (at rest, flat ${restWindow} s)`, total_mb: mb(loaded.total), node_mb: mb(loaded.node), polars_mb: mb(loaded.children), pss_mb: mb(loaded.pss), file_mb: mb(loaded.file), seconds: '' });

  // what a by-user query leaves behind at rest: the shards' kept dictionary listings and ranks
  // (python/engine_polars/dictionary.py), the merge pool's heap, freed answer buffers not yet returned
  const byUser = await fetch(`${run.queryUrl}/query/aggregate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ groupBy: ['event_type', 'user_id'], metrics: ['value'], format: 'arrow' }),
  });
  const byUserBytes = (await byUser.arrayBuffer()).byteLength;
  if (byUser.status !== 200) throw new Error(`by-user query: HTTP ${byUser.status}`);
  const queried = await settled(run.pid);
  Object.assign(out, {
    queried_rss_mb: mb(queried.total),
    queried_polars_mb: mb(queried.children),
    queried_bytes_per_event: Math.round((queried.total - idle.total) / total),
    by_user_answer_bytes: byUserBytes,
  });
  rows.push({ phase: `after a by-user query (at rest)`, total_mb: mb(queried.total), node_mb: mb(queried.node), polars_mb: mb(queried.children), pss_mb: mb(queried.pss), file_mb: mb(queried.file), seconds: '' });

  if (!args['no-restart']) {
    await run.eng.server.stop();
    const t0 = performance.now();
    run = await start(dataDir);
    sampler = peakSampler(run.pid);
    for (;;) {
      const ready = await fetch(`${run.queryUrl}/ready`).then((r) => r.status, () => 0);
      if (ready === 200 && (await count(run.queryUrl)) === total) break;
      await sleep(50);
    }
    const restartSeconds = (performance.now() - t0) / 1000;
    const restartPeak = sampler.stop();
    const after = await settled(run.pid);
    Object.assign(out, {
      restart_seconds: Math.round(restartSeconds * 10) / 10,
      restart_peak_mb: mb(restartPeak),
      restarted_rss_mb: mb(after.total),
    });
    rows.push({ phase: 'restart (peak)', total_mb: mb(restartPeak), node_mb: '', polars_mb: '', pss_mb: '', file_mb: '', seconds: Math.round(restartSeconds * 10) / 10 });
    rows.push({ phase: 'restarted', total_mb: mb(after.total), node_mb: mb(after.node), polars_mb: mb(after.children), pss_mb: mb(after.pss), file_mb: mb(after.file), seconds: '' });
  }
  await run.eng.server.stop();
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
console.log(`\nbench:rss — whole engine (node + ${Number(out.processes) - 1} polars processes), ${total.toLocaleString('en-US')} events; ${out.bytes_per_event} bytes/event from idle at rest (${out.quick_bytes_per_event} at the first flat 5 s; ${out.queried_bytes_per_event} after a by-user query), ${out.marginal_bytes_per_event} bytes/event over the second half; ${out.anon_bytes_per_event} bytes/event of anonymous memory (file_mb: file-backed pages, mostly library code)\n`);
printTable(rows);
if (typeof args.json === 'string') writeJson(args.json, out);
