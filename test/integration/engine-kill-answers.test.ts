/**
 * kill -9 of the whole engine (its node process, the one this test started) while four large
 * answers are mid-stream: a by-user JSON aggregate (on the path merged while sent, its threshold
 * lowered in the child by stream-rows-threshold.mjs), a by-user Arrow aggregate (streamed from
 * the merge pool) and an export as NDJSON and as Arrow. Each client is left with a failure it
 * can see (no complete body, short of its Content-Length or without its last chunk), never a
 * well-formed shorter answer. The polars processes, orphaned (usually one mid-query), are killed
 * with their engine (python/engine_polars/parent_death.py), letting go of their segment
 * directories' flocks;
 * the engine started again on the same data dir has every acknowledged event and answers the same
 * queries whole, equal to brute force.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC, tableToIPC } from 'apache-arrow';
import { STREAM_ARROW_FROM } from '../../src/merge/aggregate-arrow.js';
import { ARROW_EOS } from '../../src/merge/export.js';
import { LOCK_FILE } from '../../src/shards/log/data-dir-lock.js';
import { arrowBody } from '../helpers/arrow-body.js';
import { postBody } from '../helpers/engine-harness.js';
import { processRunning, ROOT, startMain, type MainProcess } from '../helpers/main-process.js';
import { childrenOf, lockedNow, segmentLocks } from '../helpers/proc-files.js';
import { bruteAggregate, closeTo, makeEvents } from '../helpers/random-events.js';
import { cpuSeconds, shardStats, storedTotals, until, waitReady } from '../helpers/shard-probes.js';

/** The JSON by-user answer streams over this many bytes of partials (64 MiB in production). */
const STREAM_ROWS_FROM = 1024 * 1024;
const N = 300_000;
// ~150,000 users, skewed: a by-user answer of tens of MB, an export of ~25 MB
const events = makeEvents(N, 91, { users: 400_000 }).map(({ metadata: _, ...e }) => e);
const QUERY = { groupBy: ['user_id'], metrics: ['value'] };
const brute = bruteAggregate(events, ['user_id']);
const groups = brute.size;

const dir = mkdtempSync(join(tmpdir(), 'engine-kill-'));
const ARGS = ['--data-dir', dir, '--shards', '2'];
const START = {
  nodeArgs: ['--import', join(ROOT, 'test/helpers/stream-rows-threshold.mjs')],
  env: { SHARDLYTICS_TEST_STREAM_ROWS_FROM: String(STREAM_ROWS_FROM) },
};
let running: MainProcess | null = null;

beforeAll(async () => {
  running = await startMain(ARGS, START);
  await waitReady(running.queryUrl);
  // every event acknowledged with ?wait=true: durable in the log before the 200
  for (let i = 0; i < N; i += 100_000) {
    const res = await postBody(`${running.ingestUrl}/ingest/arrow?wait=true`, arrowBody(events.slice(i, i + 100_000)), { 'content-type': 'application/vnd.apache.arrow.stream' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  if (running) {
    running.child.kill('SIGTERM');
    await running.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

type Kind = 'json' | 'arrow' | 'ndjson' | 'arrow-export' | 'busy';

interface Received {
  kind: Kind;
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** the body arrived whole (`IncomingMessage.complete`): its Content-Length or its last chunk */
  complete: boolean;
}

interface Opened {
  /** resolves with the first body chunk, the response then paused */
  first: Promise<Buffer>;
  /** resumes reading and resolves when the response is done, ended or cut */
  rest: () => Promise<Received>;
}

const REQUESTS: Record<Kind, { method: 'GET' | 'POST'; path: string; body?: string }> = {
  json: { method: 'POST', path: '/query/aggregate', body: JSON.stringify(QUERY) },
  arrow: { method: 'POST', path: '/query/aggregate', body: JSON.stringify({ ...QUERY, format: 'arrow' }) },
  ndjson: { method: 'GET', path: '/query/export?format=ndjson' },
  'arrow-export': { method: 'GET', path: '/query/export?format=arrow' },
  // a query not asked before (no cached partials): the polars processes compute it at the kill
  busy: { method: 'POST', path: '/query/aggregate', body: JSON.stringify({ groupBy: ['event_type', 'user_id'], metrics: ['value'] }) },
};

function open(queryUrl: string, kind: Kind): Opened {
  const { method, path, body } = REQUESTS[kind];
  let first!: (b: Buffer) => void;
  let failed!: (e: Error) => void;
  let finished!: (r: Received) => void;
  const firstChunk = new Promise<Buffer>((resolve, reject) => ((first = resolve), (failed = reject)));
  const done = new Promise<Received>((resolve) => (finished = resolve));
  let res: import('node:http').IncomingMessage | undefined;
  const req = request(`${queryUrl}${path}`, { method, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (r) => {
    res = r;
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => {
      chunks.push(c);
      if (chunks.length === 1) {
        r.pause();
        first(c);
      }
    });
    // 'close' follows 'end' or the cut ('aborted' / ECONNRESET); what came before is the body
    r.on('error', () => undefined);
    r.on('close', () => finished({ kind, status: r.statusCode!, headers: r.headers, body: Buffer.concat(chunks), complete: r.complete }));
  });
  req.on('error', (err) => {
    failed(err);
    if (!res) finished({ kind, status: 0, headers: {}, body: Buffer.alloc(0), complete: false });
  });
  req.end(body);
  return {
    first: firstChunk,
    rest: () => {
      res?.resume();
      return done;
    },
  };
}

const endsWithEos = (b: Buffer) => b.length >= ARROW_EOS.length && Buffer.compare(b.subarray(b.length - ARROW_EOS.length), ARROW_EOS) === 0;

/**
 * What would let a client take `got` for a whole answer, or null when it is plainly cut: a body
 * that arrived complete, reached its Content-Length, parses as a JSON answer, ends an Arrow stream
 * with its end-of-stream marker, or holds all `rows` NDJSON lines.
 */
function passesAsWhole(got: Received, rows: number): string | null {
  if (got.complete) return `the ${got.kind} body arrived complete (${got.body.length} bytes)`;
  const length = Number(got.headers['content-length']);
  if (Number.isFinite(length) && got.body.length >= length) return `the ${got.kind} body reached its Content-Length ${length}`;
  if (got.kind === 'json' || got.kind === 'busy') {
    try {
      const parsed = JSON.parse(got.body.toString('utf8')) as { results: unknown[] };
      return `the JSON body parses as an answer of ${parsed.results.length} rows`;
    } catch {
      return null;
    }
  }
  if (got.kind === 'ndjson') {
    const lines = got.body.toString('utf8').split('\n').filter((l) => l !== '').length;
    return lines >= rows ? `the NDJSON body holds all ${lines} lines` : null;
  }
  if (endsWithEos(got.body)) {
    try {
      return `the ${got.kind} body decodes to a whole table of ${tableFromIPC(got.body).numRows} rows`;
    } catch {
      return null;
    }
  }
  return null;
}

type Row = Record<string, any>;
const eventKey = (e: { timestamp: number; event_type: string; user_id: string; value?: number | null }) => `${e.timestamp}|${e.event_type}|${e.user_id}|${e.value ?? null}`;

/**
 * Where a by-user answer's rows differ from brute force (counts exactly, floats to 1e-9
 * relative), at most five: what expectBruteAggregate checks, without an `expect` per field of
 * 150,000 rows (24 s of the test's 36 s).
 */
function bruteMismatches(rows: Row[]): string[] {
  const out: string[] = [];
  if (rows.length !== brute.size) out.push(`expected ${brute.size} rows, got ${rows.length}`);
  for (const row of rows) {
    const want = brute.get(JSON.stringify([row.user_id]));
    if (!want) out.push(`unexpected group ${row.user_id}`);
    else {
      for (const f of ['count', 'value_count'] as const) if (row[f] !== want[f]) out.push(`${row.user_id} ${f}: ${row[f]} vs ${want[f]}`);
      for (const f of ['value_sum', 'value_mean', 'value_min', 'value_max', 'value_stddev'] as const) if (!closeTo(row[f], want[f])) out.push(`${row.user_id} ${f}: ${row[f]} vs ${want[f]}`);
    }
    if (out.length >= 5) break;
  }
  return out;
}
const arrowRows = (bytes: Uint8Array): Row[] =>
  tableFromIPC(bytes)
    .toArray()
    .map((r) => Object.fromEntries(Object.entries(r.toJSON() as Record<string, unknown>).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));

describe('kill -9 of the engine while large answers are sent', () => {
  it('leaves each client a cut answer, never a shorter whole one; the polars processes exit and free their locks; the restarted engine has every acknowledged event and answers whole', async () => {
    const engine = running!;
    const polars = (await shardStats(engine.queryUrl)).map((s) => s.polars_pid as number);
    expect(polars.every((p) => p > 0 && processRunning(p))).toBe(true);
    // the polars processes are the engine's children, and hold their segment directories' locks
    const children = childrenOf(engine.enginePid);
    expect(children).toEqual(expect.arrayContaining(polars));
    const locks = segmentLocks(dir);
    expect(locks.length).toBe(polars.length);
    expect(lockedNow(locks).sort()).toEqual([...locks].sort());

    const kinds: Kind[] = ['json', 'arrow', 'ndjson', 'arrow-export'];
    const opened = kinds.map((k) => open(engine.queryUrl, k));
    await Promise.all(opened.map((o) => o.first));
    // every answer has sent its first bytes and waits for its client; one more query keeps polars
    // at work (its CPU time moving, so the kill usually lands mid-computation): kill -9 the engine
    const cpu = polars.map((p) => cpuSeconds(p)!);
    const busy = open(engine.queryUrl, 'busy');
    busy.first.catch(() => undefined);
    await until(() => polars.some((p, i) => cpuSeconds(p)! - cpu[i]! >= 0.02), 'a polars process to work on the query', 60_000);
    process.kill(engine.enginePid, 'SIGKILL');
    const killedAt = Date.now();
    const cut = await Promise.all(opened.map((o) => o.rest()));
    expect(await engine.exited).toBe(null);
    running = null;
    // the query being computed: no answer, or a cut one
    const unanswered = await busy.rest();
    expect(unanswered.status === 0 || passesAsWhole(unanswered, groups) === null, JSON.stringify({ status: unanswered.status, bytes: unanswered.body.length })).toBe(true);
    for (const got of cut) {
      expect(got.status, got.kind).toBe(200);
      expect(passesAsWhole(got, got.kind === 'json' || got.kind === 'arrow' ? groups : N)).toBe(null);
    }
    console.log(JSON.stringify({ measured: 'bytes each client had when the engine was killed', ...Object.fromEntries(cut.map((c) => [c.kind, `${c.body.length} of ${c.headers['content-length'] ?? 'chunked'}`])) }));

    // each polars process is killed with the engine (parent-death signal), its flock released (a
    // hang guard, not a timing claim). Both are waited for: the main thread of a process can show
    // as a zombie while its other threads still hold its files.
    await until(() => children.every((p) => !processRunning(p)) && lockedNow(locks).length === 0, 'the killed engine\'s children to exit and let go of their locks', 60_000);
    console.log(JSON.stringify({ measured: 'kill -9 of the engine to its polars processes gone and their locks free (ms, 50 ms polls)', ms: Date.now() - killedAt }));
    // the engine's own lock is a pid file: left behind naming the dead engine, taken over on start
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(engine.enginePid);

    // the engine again on the same data dir: every acknowledged event, the answers whole
    const again = await startMain(ARGS, START);
    running = again;
    await waitReady(again.queryUrl);
    expect(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid).toBe(again.enginePid);
    expect((await storedTotals(again.queryUrl)).count).toBe(N);
    const whole = await Promise.all(kinds.map((k) => open(again.queryUrl, k)).map(async (o) => (await o.first, o.rest())));
    for (const got of whole) {
      expect(got.status, got.kind).toBe(200);
      expect(got.complete, got.kind).toBe(true);
      if (got.headers['content-length'] !== undefined) expect(got.body.length, got.kind).toBe(Number(got.headers['content-length']));
    }
    const [json, arrow, ndjson, arrowExport] = whole as [Received, Received, Received, Received];
    // large enough to be on the streamed paths (their thresholds are on partial bytes, smaller than the answers)
    expect(json.body.length).toBeGreaterThan(8 * STREAM_ROWS_FROM);
    expect(arrow.body.length).toBeGreaterThan(2 * STREAM_ARROW_FROM);
    const jsonRows = (JSON.parse(json.body.toString('utf8')) as { results: Row[] }).results;
    expect(bruteMismatches(jsonRows)).toEqual([]);
    expect(bruteMismatches(arrowRows(arrow.body))).toEqual([]);
    // the export: each event once, as ingested
    const exported = ndjson.body.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { timestamp: number; event_type: string; user_id: string; value: number | null });
    expect(exported.map(eventKey).sort()).toEqual(events.map(eventKey).sort());
    const table = tableFromIPC(arrowExport.body);
    expect(table.numRows).toBe(N);
    const values = table.getChild('value')!.toArray() as Float64Array;
    let nulls = 0;
    for (let i = 0; i < N; i++) if (!table.getChild('value')!.isValid(i)) nulls++;
    expect(nulls).toBe(events.filter((e) => e.value == null).length);
    expect(closeTo(values.reduce((a, v) => a + v, 0), events.reduce((a, e) => a + (e.value ?? 0), 0))).toBe(true);

    // the check above can fail: a shorter answer that arrived whole, and one cut at its last row
    // or batch boundary with its ending (`]}`, EOS) put back, are each caught
    expect(bruteMismatches(jsonRows.slice(1))[0]).toBe(`expected ${groups} rows, got ${groups - 1}`);
    expect(bruteMismatches([{ ...jsonRows[0], count: jsonRows[0]!.count + 1 }, ...jsonRows.slice(1)])[0]).toMatch(/ count: /);
    const shortJson = Buffer.from(JSON.stringify({ ...JSON.parse(json.body.toString('utf8')), results: jsonRows.slice(0, -1) }));
    expect(passesAsWhole({ ...json, body: shortJson }, groups)).toMatch(/complete/);
    expect(passesAsWhole({ ...json, body: shortJson, complete: false, headers: {} }, groups)).toMatch(new RegExp(`answer of ${groups - 1} rows`));
    const shortArrow = Buffer.from(tableToIPC(tableFromIPC(arrow.body).slice(0, groups - 1), 'stream'));
    expect(passesAsWhole({ ...arrow, body: shortArrow, complete: false, headers: {} }, groups)).toMatch(new RegExp(`whole table of ${groups - 1} rows`));
    expect(passesAsWhole({ ...ndjson, complete: false }, N)).toMatch(/all/);
  }, 180_000);
});
