/**
 * The segment store with real processes and files (small `segmentRows` and log files so every
 * step happens within seconds): open rows roll into segment files and the log before them is
 * deleted; a restart loads the segments and replays the log tail; a polars process that dies at
 * any stage of a roll, and an engine killed with -9 in the middle of one, lose and duplicate
 * nothing; a corrupt segment is refused (the log still covers it) and a torn one never seen;
 * retention drops old segments, never open rows, and one far-future event does not wipe the store.
 *
 * "Exactly once" is the stored count and the stored sum of `value` (a unique sequence number per
 * event) both equal to what was acknowledged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { killAndRestart, startMain, type MainProcess } from '../helpers/main-process.js';
import { shardStats, storedTotals, until, waitReady } from '../helpers/shard-probes.js';

const ROLL_FAULT_ENV = 'SHARDLYTICS_TEST_ROLL_FAULT';
const engines: RunningEngine[] = [];
const children: MainProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  delete process.env[ROLL_FAULT_ENV];
  for (const e of engines.splice(0)) await e.stop();
  for (const c of children.splice(0)) {
    c.child.kill('SIGKILL');
    await c.exited;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

const SMALL = { segmentRows: 1500, logFileBytes: 65536, flushIntervalMs: 20 };

async function start(dataDir: string, overrides: Parameters<typeof startEngine>[0] = {}, captureLogs = false): Promise<RunningEngine> {
  const e = await startEngine({ shards: 2, ...SMALL, dataDir, ...overrides }, { captureLogs });
  engines.push(e);
  return e;
}

async function stop(e: RunningEngine): Promise<void> {
  engines.splice(engines.indexOf(e), 1);
  await e.stop();
}

interface Acked {
  count: number;
  sum: number;
}

/** Posts `batches` batches of `size` events (value = a unique sequence number from `acked.count`), each answered 200 or 202. */
async function ingest(url: string, acked: Acked, batches: number, size = 500, wait = false, at?: (i: number) => number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    const events = Array.from({ length: size }, (_, i) => {
      const seq = acked.count + i;
      return { event_type: 'view', user_id: `u${seq % 389}`, value: seq, ...(at ? { timestamp: at(seq) } : {}), ...(seq % 3 === 0 ? { metadata: { plan: seq % 2 ? 'pro' : 'free', n: seq % 7 } } : {}) };
    });
    const res = await postJson(`${url}/ingest/batch${wait ? '?wait=true' : ''}`, { events });
    expect([200, 202], JSON.stringify(res.body)).toContain(res.status);
    for (const e of events) acked.sum += e.value;
    acked.count += size;
  }
}

const walFiles = (dataDir: string, shard: number) => readdirSync(join(dataDir, `shard-${shard}`)).filter((f) => f.endsWith('.wal')).sort();
const segmentFiles = (dataDir: string, shard: number) => readdirSync(join(dataDir, `shard-${shard}`, 'segments')).sort();

describe('segment store', () => {
  it('rolls open rows into segment files, deletes the log before them, and a restart loads segments + log tail exactly once', async () => {
    const dataDir = tempDir('segments-roll-');
    const e = await start(dataDir);
    const acked = { count: 0, sum: 0 };
    // A roll covers every batch already sent to polars, so two segments need two rounds.
    for (const segments of [1, 2]) {
      await ingest(e.ingestUrl, acked, 20);
      expect(await storedTotals(e.queryUrl)).toEqual(acked);
      await until(async () => (await shardStats(e.queryUrl)).every((s) => s.segments >= segments), `${segments} segment(s) per shard`);
    }
    // A roll writes its file beside the frames and commits it later, and the last appends may
    // start one more: wait until every file is committed and the counts hold still.
    const seg = (s: Record<string, any>) => segmentFiles(dataDir, s.shard as number).filter((f) => f.startsWith('seg-')).length;
    const counts = (st: Awaited<ReturnType<typeof shardStats>>) => JSON.stringify(st.map((s) => [s.segments, s.rows_in_segments, seg(s)]));
    let stats = await shardStats(e.queryUrl);
    let stillFor = 0;
    await until(async () => {
      const now = await shardStats(e.queryUrl);
      stillFor = counts(now) === counts(stats) && now.every((s) => seg(s) === s.segments) ? stillFor + 1 : 0;
      stats = now;
      return stillFor >= 20; // ~1 s
    }, 'rolls to settle');
    for (const s of stats) {
      expect(s.rows_in_segments).toBeGreaterThanOrEqual(2 * SMALL.segmentRows);
      expect(s.segment_bytes).toBeGreaterThan(0);
      expect(s.last_roll_ms).toBeGreaterThanOrEqual(0);
      // the log starts past its first files: they were deleted once segments covered them
      expect(Number(walFiles(dataDir, s.shard)[0]!.slice(0, 20))).toBeGreaterThan(0);
      expect(seg(s)).toBe(s.segments);
    }
    await stop(e);

    const again = await start(dataDir);
    expect(await storedTotals(again.queryUrl)).toEqual(acked);
    const after = await shardStats(again.queryUrl);
    expect(after.map((s) => s.rows_restored)).toEqual(stats.map((s) => s.rows_held));
    expect(after.map((s) => s.segments)).toEqual(stats.map((s) => s.segments));
    // and it keeps ingesting and rolling on top
    await ingest(again.ingestUrl, acked, 10);
    expect(await storedTotals(again.queryUrl)).toEqual(acked);
  });

  for (const stage of ['segment_written', 'segment_renamed', 'manifest_written']) {
    it(`loses and duplicates nothing when a polars process dies mid-roll (${stage})`, async () => {
      const dataDir = tempDir('segments-crash-');
      const fault = join(dataDir, 'roll-fault');
      writeFileSync(fault, `crash:${stage}`);
      process.env[ROLL_FAULT_ENV] = fault;
      const e = await start(dataDir);
      const acked = { count: 0, sum: 0 };
      await ingest(e.ingestUrl, acked, 12);
      await until(() => !existsSync(fault), 'a roll to reach the fault');
      await until(async () => (await shardStats(e.queryUrl)).some((s) => s.polars_restarts > 0), 'the dead process noticed');
      await ingest(e.ingestUrl, acked, 12);
      await waitReady(e.queryUrl);
      expect(await storedTotals(e.queryUrl)).toEqual(acked);
      const stats = await shardStats(e.queryUrl);
      expect(stats.reduce((n, s) => n + s.polars_restarts, 0)).toBe(1);
      await stop(e);
      delete process.env[ROLL_FAULT_ENV];
      const again = await start(dataDir);
      expect(await storedTotals(again.queryUrl)).toEqual(acked);
    });
  }

  it('loses and duplicates nothing acknowledged 200 when the engine is killed with -9 in the middle of a roll', async () => {
    const dataDir = tempDir('segments-kill-');
    const fault = join(dataDir, 'roll-fault');
    // The roll stops for 1.5 s with its segment file named but not yet in the manifest.
    writeFileSync(fault, 'pause:segment_renamed:1500');
    const args = ['--shards', '2', '--segment-rows', '1500', '--log-file-bytes', '65536', '--data-dir', dataDir];
    const first = await startMain(args, { env: { [ROLL_FAULT_ENV]: fault } });
    children.push(first);
    const acked = { count: 0, sum: 0 };
    while (existsSync(fault)) await ingest(first.ingestUrl, acked, 1, 300, true);
    // The orphaned polars process finishes its roll and exits; the new one waits for the lock.
    const second = await killAndRestart(first, args, children);
    expect(await storedTotals(second.queryUrl)).toEqual(acked);
    await ingest(second.ingestUrl, acked, 6, 500, true);
    expect(await storedTotals(second.queryUrl)).toEqual(acked);
  });

  it('refuses a corrupt segment file (logged, the log still covers it) and never sees a torn one', async () => {
    const dataDir = tempDir('segments-corrupt-');
    // Log files big enough that nothing is truncated: the log covers every segment.
    const e = await start(dataDir, { logFileBytes: 64 * 1024 * 1024 });
    const acked = { count: 0, sum: 0 };
    // A roll covers every batch already sent to polars, so two segments need two rounds.
    for (const segments of [1, 2]) {
      await ingest(e.ingestUrl, acked, 8);
      expect(await storedTotals(e.queryUrl)).toEqual(acked);
      await until(async () => (await shardStats(e.queryUrl)).every((s) => s.segments >= segments), `${segments} segment(s) per shard`);
    }
    await stop(e);
    const segDir = join(dataDir, 'shard-0', 'segments');
    const victim = segmentFiles(dataDir, 0).filter((f) => f.startsWith('seg-'))[0]!;
    const bytes = readFileSync(join(segDir, victim));
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(join(segDir, victim), bytes);
    writeFileSync(join(segDir, 'seg-99999999999999999999.arrow.tmp'), 'half a segment from a crash');

    const again = await start(dataDir, { logFileBytes: 64 * 1024 * 1024 }, true);
    expect(await storedTotals(again.queryUrl)).toEqual(acked);
    const refused = again.logs.find((l) => l.msg === 'segment files refused (failed their checks)');
    expect(refused?.shard).toBe(0);
    expect(String(refused?.refused)).toContain('CRC-32');
    expect(existsSync(join(segDir, `${victim}.corrupt`))).toBe(true);
    expect(existsSync(join(segDir, 'seg-99999999999999999999.arrow.tmp'))).toBe(false);
  });

  it('retention drops whole old segments but never open rows, and a far-future event does not move it past now', async () => {
    const dataDir = tempDir('segments-retention-');
    const e = await start(dataDir, { shards: 1, segmentRows: 1000, retention: 30 * 86_400_000 }, true);
    const now = Date.now();
    const day = 86_400_000;
    const acked = { count: 0, sum: 0 };
    await ingest(e.ingestUrl, acked, 1, 2500, false, () => now - 400 * day); // rolls: segment of old rows
    await until(async () => (await shardStats(e.queryUrl))[0]!.segments === 1, 'the old segment');
    await ingest(e.ingestUrl, acked, 1, 1500, false, () => now - day); // rolls; retention drops the old segment
    await until(async () => (await shardStats(e.queryUrl))[0]!.rows_dropped_by_retention === 2500, 'the old segment dropped');
    await ingest(e.ingestUrl, acked, 1, 1, false, () => now + 3650 * day); // one event ten years ahead
    await ingest(e.ingestUrl, acked, 1, 1000, false, () => now - day); // rolls with it; nothing more dropped
    await until(async () => (await shardStats(e.queryUrl))[0]!.segments === 2, 'the newest segment');
    await ingest(e.ingestUrl, acked, 1, 5, false, () => now - 400 * day); // old, but open: kept
    const totals = await storedTotals(e.queryUrl);
    expect(totals.count).toBe(acked.count - 2500);
    const s = (await shardStats(e.queryUrl))[0]!;
    expect(s.rows_dropped_by_retention).toBe(2500);
    expect(s.segments).toBe(2);
    expect(e.logs.some((l) => l.msg === 'retention dropped old segments' && l.rows === 2500)).toBe(true);
  });
});
