/**
 * npm run chaos [-- --cycles 20 --clients 4 --shards 2 --batch 50 --min-up-ms 300 --max-up-ms 2000 --route json|arrow|mixed --json out.json]
 *
 * Crash test of the acknowledgement contract: several clients ingest with `?wait=true` and an
 * Idempotency-Key per request while the engine (a child process on one data dir) is killed with
 * SIGKILL at random moments and started again. A client records every event id acknowledged with
 * 200; a request that got anything else (503, 504, 507, 409, a dropped connection) is retried with
 * the same key and body until it gets a 200, across restarts. At the end the engine is started
 * once more, every client finishes its last request, and every stored event is exported: each
 * event's `value` is its unique id, so
 *
 *   acknowledged  ids answered 200           stored      events exported
 *   lost          acknowledged, not stored   duplicated  stored copies beyond the first
 *
 * Exit code 1 if anything was lost or duplicated (or stored without ever being acknowledged).
 * The integration test (test/integration/chaos.test.ts) runs `runChaos` for a few cycles.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ARROW_STREAM_TYPE } from '../src/router/arrow-ingest/arrow-events.js';
import { arrowBody } from '../test/helpers/arrow-body.js';

const ROOT = join(import.meta.dirname, '..');

export interface ChaosOptions {
  cycles: number;
  clients: number;
  shards: number;
  /** events per request */
  batch: number;
  /** POST /ingest/batch (json), POST /ingest/arrow (arrow), or half the clients each (mixed); default json */
  route?: 'json' | 'arrow' | 'mixed';
  /** the engine runs a random time in [minUpMs, maxUpMs] before each kill */
  minUpMs: number;
  maxUpMs: number;
  /** defaults to a fresh temporary dir, removed at the end */
  dataDir?: string;
  /** more engine flags */
  engineArgs?: string[];
  seed?: number;
  log?: (line: string) => void;
}

export interface ChaosReport {
  cycles: number;
  acknowledged: number;
  stored: number;
  lost: number;
  duplicated: number;
  /** stored ids whose request was never answered 200 (must be 0: every request is finished at the end) */
  unacknowledged_stored: number;
  requests: number;
  retries: number;
  /** answers by status, connection failures as "network" */
  answers: Record<string, number>;
  replayed: number;
  kills: number;
  /** events acknowledged 200 per route (`json`, `arrow`) */
  acknowledged_by_route: Record<string, number>;
  /** 200-answer latency of ?wait=true requests, ms */
  ack_p50_ms: number;
  ack_p99_ms: number;
}

interface Engine {
  child: ChildProcess;
  ingestUrl: string;
  queryUrl: string;
  exited: Promise<number | null>;
}

async function startEngine(dataDir: string, opts: ChaosOptions): Promise<Engine> {
  const args = ['--import', 'tsx', 'src/main.ts', '--ingest-port', '0', '--query-port', '0', '--data-dir', dataDir, '--shards', String(opts.shards), ...(opts.engineArgs ?? [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ENGINE_LOG_LEVEL: 'info' } });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let tail = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  const listening = new Promise<Record<string, string>>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (tail + chunk.toString()).split('\n');
      tail = lines.pop()!;
      for (const line of lines) {
        if (!line.includes('engine listening')) continue;
        try {
          resolve(JSON.parse(line) as Record<string, string>);
        } catch {
          // not JSON
        }
      }
    });
  });
  const entry = await Promise.race([listening, exited.then((code) => Promise.reject(new Error(`engine exited with ${code} before listening: ${stderr}`)))]);
  return { child, ingestUrl: entry.ingestUrl!, queryUrl: entry.queryUrl!, exited };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** The current engine, or a promise of the next one while it is down. */
class EngineSlot {
  engine: Engine | null = null;
  private waiters: Array<(e: Engine) => void> = [];

  set(e: Engine | null): void {
    this.engine = e;
    if (e) for (const w of this.waiters.splice(0)) w(e);
  }

  next(): Promise<Engine> {
    return this.engine ? Promise.resolve(this.engine) : new Promise((r) => this.waiters.push(r));
  }
}

interface Pending {
  key: string;
  body: string | Uint8Array;
  ids: number[];
}

async function client(c: number, opts: ChaosOptions, slot: EngineSlot, state: { stop: boolean }, report: ChaosReport, acked: Set<number>, latencies: number[]): Promise<void> {
  let n = 0;
  let pending: Pending | null = null;
  let nextId = c;
  const route = opts.route ?? 'json';
  const arrow = route === 'arrow' || (route === 'mixed' && c % 2 === 1);
  const count = (what: string) => void (report.answers[what] = (report.answers[what] ?? 0) + 1);
  for (;;) {
    // after `stop`, finish the request in hand (so every request ends with a 200), start no new one
    if (!pending) {
      if (state.stop) return;
      const ids = Array.from({ length: opts.batch }, () => ((nextId += opts.clients), nextId - opts.clients));
      const events = ids.map((id) => ({ event_type: id % 3 === 0 ? 'purchase' : 'view', user_id: `user-${id % 997}`, value: id }));
      const body = arrow ? arrowBody(events.map((e) => ({ ...e, timestamp: Date.now() }))) : JSON.stringify({ events });
      pending = { key: `chaos-${c}-${n++}`, body, ids };
    } else {
      report.retries++;
    }
    const engine = await slot.next();
    report.requests++;
    const started = performance.now();
    let status: number;
    try {
      const res = await fetch(`${engine.ingestUrl}${arrow ? '/ingest/arrow' : '/ingest/batch'}?wait=true`, {
        method: 'POST',
        headers: { 'content-type': arrow ? ARROW_STREAM_TYPE : 'application/json', 'idempotency-key': pending.key },
        body: pending.body,
      });
      await res.arrayBuffer();
      status = res.status;
      if (res.headers.get('idempotent-replayed') === 'true') report.replayed++;
    } catch {
      // the engine was killed under this request: retry (on the next engine once it is up)
      count('network');
      await sleep(20);
      continue;
    }
    count(String(status));
    if (status === 200) {
      latencies.push(performance.now() - started);
      for (const id of pending.ids) acked.add(id);
      const r = arrow ? 'arrow' : 'json';
      report.acknowledged_by_route[r] = (report.acknowledged_by_route[r] ?? 0) + pending.ids.length;
      pending = null;
    } else if (status === 409 || status === 503 || status === 504 || status === 507 || status === 429) {
      await sleep(50);
    } else {
      throw new Error(`client ${c}: unexpected ${status} for key ${pending.key}`);
    }
  }
}

async function exportValues(queryUrl: string): Promise<number[]> {
  const res = await fetch(`${queryUrl}/query/export?format=ndjson`);
  if (res.status !== 200) throw new Error(`export answered ${res.status}: ${await res.text()}`);
  const text = await res.text();
  const out: number[] = [];
  for (const line of text.split('\n')) if (line) out.push((JSON.parse(line) as { value: number }).value);
  return out;
}

async function waitReady(queryUrl: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const res = await fetch(`${queryUrl}/ready`).catch(() => null);
    if (res?.status === 200) return;
    await sleep(100);
  }
  throw new Error('engine not ready after 120 s');
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const log = opts.log ?? (() => {});
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'chaos-'));
  let seed = opts.seed ?? 1;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  const report: ChaosReport = { cycles: opts.cycles, acknowledged: 0, stored: 0, lost: 0, duplicated: 0, unacknowledged_stored: 0, requests: 0, retries: 0, answers: {}, acknowledged_by_route: {}, replayed: 0, kills: 0, ack_p50_ms: 0, ack_p99_ms: 0 };
  const acked = new Set<number>();
  const latencies: number[] = [];
  const slot = new EngineSlot();
  const state = { stop: false };
  let engine: Engine | null = null;
  try {
    engine = await startEngine(dataDir, opts);
    slot.set(engine);
    const clients = Array.from({ length: opts.clients }, (_, c) => client(c, opts, slot, state, report, acked, latencies));
    const failed = Promise.all(clients).then(() => null, (err: unknown) => err as Error);
    for (let cycle = 1; cycle <= opts.cycles; cycle++) {
      const upMs = opts.minUpMs + random() * (opts.maxUpMs - opts.minUpMs);
      const early = await Promise.race([sleep(upMs).then(() => null), failed]);
      if (early) throw early;
      slot.set(null);
      engine.child.kill('SIGKILL');
      await engine.exited;
      report.kills++;
      log(`cycle ${cycle}/${opts.cycles}: killed after ${Math.round(upMs)} ms; ${acked.size} events acknowledged so far`);
      engine = await startEngine(dataDir, opts);
      slot.set(engine);
    }
    // Last run: every client finishes its request in hand, then everything is counted.
    state.stop = true;
    const err = await failed;
    if (err) throw err;
    await waitReady(engine.queryUrl);
    const values = await exportValues(engine.queryUrl);
    const seen = new Map<number, number>();
    for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
    report.acknowledged = acked.size;
    report.stored = values.length;
    for (const id of acked) if (!seen.has(id)) report.lost++;
    for (const [id, times] of seen) {
      if (times > 1) report.duplicated += times - 1;
      if (!acked.has(id)) report.unacknowledged_stored++;
    }
    latencies.sort((a, b) => a - b);
    report.ack_p50_ms = Math.round(percentile(latencies, 0.5) * 10) / 10;
    report.ack_p99_ms = Math.round(percentile(latencies, 0.99) * 10) / 10;
    engine.child.kill('SIGTERM');
    await engine.exited;
    engine = null;
    return report;
  } finally {
    state.stop = true;
    if (engine) {
      engine.child.kill('SIGKILL');
      await engine.exited;
    }
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

function routeArg(argv: string[]): ChaosOptions['route'] {
  const i = argv.indexOf('--route');
  const route = i >= 0 ? argv[i + 1] : 'json';
  if (route !== 'json' && route !== 'arrow' && route !== 'mixed') throw new Error(`--route: expected json, arrow or mixed, got ${route}`);
  return route;
}

function arg(argv: string[], name: string, fallback: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opts: ChaosOptions = {
    cycles: arg(argv, 'cycles', 20),
    clients: arg(argv, 'clients', 4),
    shards: arg(argv, 'shards', 2),
    batch: arg(argv, 'batch', 50),
    minUpMs: arg(argv, 'min-up-ms', 300),
    maxUpMs: arg(argv, 'max-up-ms', 2000),
    seed: arg(argv, 'seed', Date.now() % 100000),
    route: routeArg(argv),
    log: (line) => console.log(line),
  };
  console.log(`chaos: ${opts.cycles} kill -9 cycles, ${opts.clients} clients × ${opts.batch} events per ?wait=true request with an Idempotency-Key (route ${opts.route}), ${opts.shards} shards, seed ${opts.seed}`);
  const report = await runChaos(opts);
  console.log(`\nacknowledged ${report.acknowledged}  stored ${report.stored}  lost ${report.lost}  duplicated ${report.duplicated}  (stored but never acknowledged: ${report.unacknowledged_stored})`);
  console.log(`acknowledged by route ${JSON.stringify(report.acknowledged_by_route)}`);
  console.log(`requests ${report.requests} (retries ${report.retries}, replayed answers ${report.replayed}), kills ${report.kills}; answers ${JSON.stringify(report.answers)}`);
  console.log(`wait=true 200 latency: p50 ${report.ack_p50_ms} ms, p99 ${report.ack_p99_ms} ms`);
  const jsonAt = argv.indexOf('--json');
  if (jsonAt >= 0) {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(argv[jsonAt + 1]!, JSON.stringify({ ...report, options: { ...opts, log: undefined }, at: new Date().toISOString() }, null, 2) + '\n');
  }
  process.exitCode = report.lost > 0 || report.duplicated > 0 || report.unacknowledged_stored > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
