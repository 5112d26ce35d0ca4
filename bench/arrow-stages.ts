/**
 * npm run bench:arrow-stages [-- --events 100000 --shards 2 --reps 20 --json out.json]
 *
 * Where the CPU of POST /ingest/arrow goes, stage by stage, on the bench's events (5 types,
 * 100,000 users, 20 % with metadata): each stage of the real code run `--reps` times in this
 * process on one body, its CPU time (process.cpuUsage, not wall time: the box is shared) per
 * event. The polars stages run in a Python child with the engine's own store (append of each
 * sealed batch; a roll of ~1 M rows into a segment file). The JSON batch route's per-event
 * stages run on the same events for comparison (JSON.parse + validation, the shard's per-record
 * decode), since they are what /ingest/arrow replaces.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, printTable, ROOT, writeJson } from './bench-util.js';
import { arrowBody } from '../test/helpers/arrow-body.js';
import { readArrowStream } from '../src/router/arrow-ingest/read-arrow.js';
import { minShardBytes, orderByShard } from '../src/router/arrow-ingest/route-rows.js';
import { RowErrors, validateChunk } from '../src/router/arrow-ingest/validate-columns.js';
import { blockBytesAt, decodeBlock, encodeBlock, nextBlock, type BlockSource } from '../src/shards/ring-block.js';
import { decodeRecord, encodeRecord, type EncodableEvent } from '../src/shards/ring-record.js';
import { ColumnBuilder, type SealedBatch } from '../src/shards/column-builder.js';
import { makeShardRingBuffers, ShardRing } from '../src/shards/shard-ring.js';
import { numberedBatchIn } from '../src/shards/log/shard-log.js';
import { crc32c } from '../src/shards/log/crc32c.js';
import { validateBatch } from '../src/router/validate-event.js';
import { PYTHON_BIN } from '../src/shards/polars-process.js';

const args = parseArgs(process.argv.slice(2));
const N = Number(args.events ?? 100_000);
const SHARDS = Number(args.shards ?? 2);
const REPS = Number(args.reps ?? 20);

let seed = 42;
const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
const types = ['page_view', 'click', 'add_to_cart', 'checkout', 'purchase'];
const events = Array.from({ length: N }, () => ({
  timestamp: Date.now() - Math.floor(rand() * 3_600_000),
  event_type: types[Math.floor(rand() * types.length)]!,
  user_id: `user-${Math.floor(rand() * 100_000)}`,
  value: Math.round(rand() * 10_000) / 100,
  metadata: rand() < 0.2 ? JSON.stringify({ plan: rand() < 0.5 ? 'free' : 'pro' }) : null,
}));
const body = arrowBody(events);
const jsonBody = JSON.stringify({ events: events.map(({ metadata, ...e }) => (metadata ? { ...e, metadata: JSON.parse(metadata) } : e)) });

const rows: Array<Record<string, string | number>> = [];
/** Runs `f` REPS times (after 3 warm-ups) and records its CPU ns per event. */
function stage(name: string, side: string, f: () => unknown, reps = REPS): void {
  for (let i = 0; i < 3; i++) f();
  const c0 = process.cpuUsage();
  for (let i = 0; i < reps; i++) f();
  const c = process.cpuUsage(c0);
  rows.push({ stage: name, runs_on: side, cpu_ns_per_event: Math.round(((c.user + c.system) * 1000) / reps / N) });
}

const opts = { receivedAt: Date.now(), maxFutureSkewMs: null, maxJsonDepth: 32 };
const read = () => readArrowStream(body);
stage('read IPC stream (apache-arrow, buffers checked)', 'HTTP thread', read);
const { chunks } = read();
const route = () => chunks.map((c) => orderByShard(c.userId, c.rows, SHARDS));
stage('hash user ids, group rows by shard', 'HTTP thread', route);
const orders = route();
stage('ring room lower bound', 'HTTP thread', () => chunks.forEach((c, i) => minShardBytes(c.eventType, c.userId, orders[i]!, new Float64Array(SHARDS))));
const validate = () => chunks.map((c) => validateChunk(c, opts, new RowErrors(20)));
stage('validate (timestamps, UTF-8, lengths, values, metadata JSON)', 'HTTP thread', validate);
const sources: BlockSource[] = validate();

// The writer's staging: every shard's rows as column blocks.
const staging = Array.from({ length: SHARDS }, () => ({ buf: new Uint8Array(N * 64 + (1 << 20)), len: 0 }));
const encode = () => {
  for (let s = 0; s < SHARDS; s++) {
    const st = staging[s]!;
    const view = new DataView(st.buf.buffer);
    st.len = 0;
    sources.forEach((src, i) => {
      const o = orders[i]!;
      for (let from = o.bounds[s]!; from < o.bounds[s + 1]!; ) {
        const { to, strings } = nextBlock(src, o.order, from, o.bounds[s + 1]!);
        void blockBytesAt(st.buf, st.len, to - from, strings);
        st.len = encodeBlock(src, o.order, from, to, strings, st.buf, view, st.len);
        from = to;
      }
    });
  }
};
stage('encode column blocks', 'HTTP thread', encode);
const ringBytes = Math.max(...staging.map((s) => s.len)) + 1024;
const ring = new ShardRing(makeShardRingBuffers(ringBytes));
const scratch = new Uint8Array(ringBytes);
stage('ring push (producer) + pop (consumer copy)', 'both', () => {
  for (const st of staging) {
    ring.push(st.buf, st.len, 1);
    ring.ring.pop(scratch, st.len, 0);
  }
});

const builder = new ColumnBuilder();
const fill = () => {
  for (const st of staging) {
    const view = new DataView(st.buf.buffer);
    for (let off = 0; off < st.len; ) {
      const rec = decodeRecord(view, off, st.len)!;
      builder.appendBlock(st.buf, decodeBlock(view, off, rec.body));
      off = rec.next;
    }
  }
};
stage('decode blocks into the column builder', 'shard worker', () => {
  fill();
  (builder as unknown as { reset(): void }).reset();
});
let sealed: SealedBatch | null = null;
// seal cost alone: fill outside the timed part
{
  let cpu = 0;
  for (let i = 0; i < REPS + 3; i++) {
    fill();
    const c0 = process.cpuUsage();
    sealed = builder.seal();
    const c = process.cpuUsage(c0);
    if (i >= 3) cpu += c.user + c.system;
  }
  rows.push({ stage: 'seal an Arrow RecordBatch (IPC stream bytes)', runs_on: 'shard worker', cpu_ns_per_event: Math.round((cpu * 1000) / REPS / N) });
}
const dir = mkdtempSync(join(tmpdir(), 'arrow-stages-'));
try {
  let payload: Uint8Array = new Uint8Array(0);
  stage('log record: numbered-batch head (in the sealed payload) + CRC-32C', 'shard worker', () => {
    payload = numberedBatchIn(sealed!.payload, 0, N);
    crc32c(payload);
  });
  const fd = openSync(join(dir, 'log'), 'w');
  stage('log write + fdatasync (CPU only; the wait is not CPU)', 'shard worker', () => {
    writeSync(fd, payload);
    fdatasyncSync(fd);
  }, 5);
  closeSync(fd);

  // polars: the engine's own store, in a child (POLARS_MAX_THREADS=1 as in the engine)
  const ipcFile = join(dir, 'batch.arrows');
  writeFileSync(ipcFile, sealed!.ipc);
  const py = `
import json, sys, time
from engine_polars.store import EventStore
ipc = open(sys.argv[1], 'rb').read()
n = int(sys.argv[2]); reps = int(sys.argv[3])
st = EventStore(); st.open_dir(sys.argv[4], 0)
row = 0
for _ in range(3): row += st.append(ipc, row)
c0 = time.process_time()
for _ in range(reps): row += st.append(ipc, row)
append = (time.process_time() - c0) / (reps * n) * 1e9
while st.open_rows < 1_000_000: row += st.append(ipc, row)
c0 = time.process_time(); rows = st.open_rows
st.roll(1)
roll = (time.process_time() - c0) / rows * 1e9
print(json.dumps({"append": append, "roll": roll}))
`;
  const res = spawnSync(PYTHON_BIN, ['-c', py, ipcFile, String(N), String(REPS), join(dir, 'store')], {
    cwd: ROOT,
    env: { ...process.env, POLARS_MAX_THREADS: '1', PYTHONPATH: join(ROOT, 'python') },
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`polars stage failed: ${res.stderr}`);
  const p = JSON.parse(res.stdout.trim().split('\n').pop()!) as { append: number; roll: number };
  rows.push({ stage: 'polars append (IPC read, dictionaries, metadata columns)', runs_on: 'polars process', cpu_ns_per_event: Math.round(p.append) });
  rows.push({ stage: 'polars roll into a segment file (per row rolled)', runs_on: 'polars process', cpu_ns_per_event: Math.round(p.roll) });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const total = rows.reduce((t, r) => t + Number(r.cpu_ns_per_event), 0);
rows.push({ stage: 'total (one core: events/s = 1e9 / this)', runs_on: '', cpu_ns_per_event: total });

// The JSON batch route's per-event stages on the same events, for comparison.
const cmp: Array<Record<string, string | number>> = [];
const jsonStage = (name: string, side: string, f: () => unknown) => {
  for (let i = 0; i < 2; i++) f();
  const c0 = process.cpuUsage();
  for (let i = 0; i < 5; i++) f();
  const c = process.cpuUsage(c0);
  cmp.push({ stage: name, runs_on: side, cpu_ns_per_event: Math.round(((c.user + c.system) * 1000) / 5 / N) });
};
let parsed: EncodableEvent[] = [];
jsonStage('JSON.parse + validate (per-event objects)', 'HTTP thread', () => {
  const r = validateBatch((JSON.parse(jsonBody) as { events: unknown[] }).events, Date.now());
  if ('events' in r) parsed = r.events;
});
const recBuf = new Uint8Array(N * 96);
const recView = new DataView(recBuf.buffer);
let recLen = 0;
const enc = new TextEncoder();
jsonStage('encode one ring record per event', 'HTTP thread', () => {
  recLen = 0;
  for (const e of parsed) recLen = encodeRecord(e, enc.encode(e.userId), recBuf, recView, recLen);
});
jsonStage('decode records into the column builder (per event)', 'shard worker', () => {
  for (let off = 0; off < recLen; ) {
    const rec = decodeRecord(recView, off, recLen)!;
    builder.append(recBuf, rec);
    off = rec.next;
  }
  builder.seal();
});

console.log(`\nbench:arrow-stages — ${N.toLocaleString('en-US')} events per body, ${SHARDS} shards, CPU per event (${REPS} runs each)\n`);
printTable(rows);
console.log('\nthe JSON batch route on the same events (what the Arrow route replaces):\n');
printTable(cmp);
if (typeof args.json === 'string') writeJson(args.json, { events: N, shards: SHARDS, reps: REPS, stages: rows, json_route: cmp, at: new Date().toISOString() });
