/**
 * npm run bench:attacks [-- --users 240000 --json out.json]
 *
 * The hostile requests of issue 6 against a real engine (2 shards, `--users` events with one
 * distinct user each): for each, the status, the time to answer, whether every polars process is
 * still the same one and whether the stored count is intact. The last one is a query past a
 * small queryTimeoutMs on a second engine: it prints the CPU-seconds the killed polars process
 * spent after the 504 (sampled from /proc) and how long the shard took to restore.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../src/config/load.js';
import type { EngineConfig } from '../src/config/schema.js';
import { Engine } from '../src/engine.js';
import { parseArgs, printTable, writeJson } from './bench-util.js';

const args = parseArgs(process.argv.slice(2));
const USERS = Number(args.users ?? 240_000);
const T0 = Date.UTC(2026, 0, 1);

async function start(overrides: Partial<EngineConfig>): Promise<{ engine: Engine; ingest: string; query: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'attacks-'));
  const config = loadConfig({ env: {}, argv: [], overrides: { ingestPort: 0, queryPort: 0, logLevel: 'silent', shards: 2, dataDir: dir, fsync: 'off', ...overrides } });
  const engine = new Engine(config, pino({ level: 'silent' }));
  const { ingestUrl, queryUrl } = await engine.start();
  return { engine, ingest: ingestUrl, query: queryUrl, dir };
}

async function send(url: string, init?: RequestInit): Promise<{ status: number; body: string; ms: number }> {
  const t = performance.now();
  const res = await fetch(url, init);
  const body = await res.text();
  return { status: res.status, body, ms: performance.now() - t };
}

const post = (url: string, body: unknown) => send(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

async function pids(query: string): Promise<number[]> {
  const res = await fetch(`${query}/stats/shards`);
  return ((await res.json()) as { shards: Array<{ polars_pid: number }> }).shards.map((s) => s.polars_pid);
}

async function count(query: string): Promise<number> {
  const res = await post(`${query}/query/aggregate`, {});
  return JSON.parse(res.body).results[0].count;
}

function nested(depth: number, leaf: string): string {
  return '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);
}

function cpu(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z') return null;
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

const e = await start({});
for (let s = 0; s < USERS; s += 10_000) {
  const events = Array.from({ length: Math.min(10_000, USERS - s) }, (_, k) => ({ event_type: 'click', user_id: `user-${s + k}`, value: (s + k) % 1000, timestamp: T0 + (s + k) * 10 }));
  await post(`${e.ingest}/ingest/batch`, { events });
}
const stored = await count(e.query);
const before = await pids(e.query);
const attacks: Array<[string, () => Promise<{ status: number; body: string; ms: number }>]> = [
  ['custom params nested 1,500 deep', () => post(`${e.query}/query/custom/revenue_by_plan`, `{"params":${nested(1500, '1')}}`)],
  ['aggregate, filter.user_id of 150,000 ids (15 MB)', () => post(`${e.query}/query/aggregate`, { filter: { user_id: Array.from({ length: 150_000 }, (_, i) => `user-${i}-${'x'.repeat(90)}`) } })],
  ['aggregate, 10,000 ids of 128 chars (plan 1.3 MB)', () => post(`${e.query}/query/aggregate`, { filter: { user_id: Array.from({ length: 10_000 }, (_, i) => `${i}`.padEnd(128, 'y')) } })],
  [`anomalies?groupBy=user_id (${USERS} users)`, () => send(`${e.query}/query/anomalies?groupBy=user_id&limit=10`)],
  ['window 1s / slide 1ms by user_id, 6,000 events', () => post(`${e.query}/query/window`, { windowSize: '1s', slide: '1ms', groupBy: 'user_id', filter: { from: T0, to: T0 + 60_000 } })],
  ['aggregate by 5 groupBy keys', () => post(`${e.query}/query/aggregate`, { groupBy: ['event_type', 'user_id', 'metadata.a', 'metadata.b', 'metadata.c'] })],
  ['ingest user_id "a\\ud800"', () => post(`${e.ingest}/ingest`, '{"event_type":"x","user_id":"a\\ud800"}')],
  ['filter user_id "a\\udc00"', () => post(`${e.query}/query/aggregate`, '{"filter":{"user_id":"a\\udc00"}}')],
  ['ingest timestamp "2026-02-31"', () => post(`${e.ingest}/ingest`, { event_type: 'x', user_id: 'u', timestamp: '2026-02-31' })],
  ['ingest metadata nested 200,000 deep', () => post(`${e.ingest}/ingest`, `{"event_type":"x","user_id":"u","metadata":${nested(200_000, '1')}}`)],
];
const rows: Array<Record<string, string | number>> = [];
for (const [name, run] of attacks) {
  const r = await run();
  const samePids = JSON.stringify(await pids(e.query)) === JSON.stringify(before);
  const intact = (await count(e.query)) === stored;
  rows.push({ attack: name, status: r.status, ms: Math.round(r.ms), polars_pids_unchanged: String(samePids), count_intact: String(intact), error: (JSON.parse(r.body) as { error?: string }).error ?? '' });
}
await e.engine.stop();
rmSync(e.dir, { recursive: true, force: true });

// A query past queryTimeoutMs: the shard kills its polars process (no in-process cancel in polars) and restores.
const t = await start({ queryTimeoutMs: 200 });
for (let s = 0; s < 1_000_000; s += 10_000) {
  const events = Array.from({ length: 10_000 }, (_, k) => ({ event_type: 'click', user_id: `u${(s + k) % 20_000}`, value: ((s + k) * 7919) % 1000, timestamp: T0 + (s + k) * 1000 }));
  await post(`${t.ingest}/ingest/batch`, { events });
}
const tStored = await count(t.query);
const old = await pids(t.query);
const cpuBefore = old.map(cpu);
const r = await post(`${t.query}/query/window`, { windowSize: '1m', aggFunc: 'p95', groupBy: 'user_id' });
const cpuAt504 = old.map(cpu);
const restoreStarted = performance.now();
await new Promise((res) => setTimeout(res, 250));
const cpuAfter = old.map(cpu);
while ((await fetch(`${t.query}/ready`)).status !== 200) await new Promise((res) => setTimeout(res, 20));
const restoreMs = performance.now() - restoreStarted;
const after = await pids(t.query);
rows.push({
  attack: 'window p95 per minute by user_id (1 M events) past queryTimeoutMs 200',
  status: r.status,
  ms: Math.round(r.ms),
  polars_pids_unchanged: `${JSON.stringify(old)} → ${JSON.stringify(after)}`,
  count_intact: String((await count(t.query)) === tStored),
  error: (JSON.parse(r.body) as { error?: string }).error ?? '',
});
const cpuNote = old.map((_pid, i) => ({
  shard: i,
  cpu_s_before_query: cpuBefore[i] ?? 'gone',
  cpu_s_at_504: cpuAt504[i] ?? 'gone (killed)',
  cpu_s_250ms_later: cpuAfter[i] ?? 'gone (killed)',
  ready_again_ms_after_504: Math.round(restoreMs),
}));
await t.engine.stop();
rmSync(t.dir, { recursive: true, force: true });
printTable(rows);
console.log();
printTable(cpuNote as unknown as Array<Record<string, string | number>>);
if (typeof args.json === 'string') writeJson(args.json, { users: USERS, attacks: rows, timeout: cpuNote });
