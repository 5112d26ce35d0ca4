/**
 * Disk errors (ENOSPC, EIO) with real shards and logs: a shard whose log cannot be written does
 * not crash and acknowledges nothing it could not write. ?wait=true answers 507 naming the cause
 * and the shard; further events for that shard are refused (507) before anything is written;
 * queries keep working; once the disk takes writes again the shard goes on by itself, and a retry
 * with the same Idempotency-Key writes only the part that was lost. Faults come from the test-only
 * hook (SHARDLYTICS_TEST_LOG_FAULTS) and, when this runs as root, from a real full tmpfs.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDataDir, removeDataDir, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { shardStats, storedTotals } from '../helpers/shard-probes.js';
import { LOG_FAULTS_ENV } from '../../src/shards/log/fault-injection.js';
import { shardForUser } from '../../src/router/route-hash.js';

const faultDir = mkdtempSync(join(tmpdir(), 'disk-faults-'));
const faultFile = join(faultDir, 'faults.json');
process.env[LOG_FAULTS_ENV] = faultFile;

const engines: RunningEngine[] = [];
const dirs: string[] = [];
afterEach(async () => {
  rmSync(faultFile, { force: true });
  for (const e of engines.splice(0)) await e.stop();
  for (const d of dirs.splice(0)) removeDataDir(d);
});
afterAll(() => rmSync(faultDir, { recursive: true, force: true }));

async function start(...args: Parameters<typeof startEngine>): Promise<RunningEngine> {
  const e = await startEngine(...args);
  engines.push(e);
  return e;
}

/** users on each of 2 shards */
const usersOn: string[][] = [[], []];
for (let i = 0; usersOn[0]!.length < 5 || usersOn[1]!.length < 5; i++) usersOn[shardForUser(`d${i}`, 2)]!.push(`d${i}`);

/** `n` events from `from` on, spread over the given shards (value = a unique id) */
function events(from: number, n: number, shards: number[]): Array<{ event_type: string; user_id: string; value: number }> {
  return Array.from({ length: n }, (_, i) => {
    const users = usersOn[shards[i % shards.length]!]!;
    return { event_type: 'view', user_id: users[i % users.length]!, value: from + i };
  });
}

async function post(url: string, body: unknown, key?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const sum = (evs: Array<{ value: number }>) => evs.reduce((t, e) => t + e.value, 0);

/** Retries `body` (refused up front with 507 while the log fails) until the shard takes it again. */
async function untilAccepted(url: string, body: unknown): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const res = await post(url, body);
    if (res.status === 200) return;
    expect(res.status, JSON.stringify(res.body)).toBe(507);
    expect(res.body.message).toContain('nothing of this request was stored');
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the shard did not take writes again');
}

describe('disk errors', () => {
  it('ENOSPC on one shard: 507 naming it and the cause, later events refused, queries answered, recovery by itself, a keyed retry writes only the lost part', async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const e = await start({ shards: 2, dataDir });
    const wait = `${e.ingestUrl}/ingest/batch?wait=true`;
    const acked: Array<{ value: number }> = [];
    const warm = events(0, 40, [0, 1]);
    expect((await post(wait, { events: warm })).status).toBe(200);
    acked.push(...warm);

    writeFileSync(faultFile, JSON.stringify({ errno: 'ENOSPC', shards: [1] }));
    const k = events(100, 40, [0, 1]);
    const failed = await post(wait, { events: k }, 'disk-k');
    expect(failed.status).toBe(507);
    expect(failed.body.error).toBe('INSUFFICIENT_STORAGE');
    expect(failed.body.message).toMatch(/shard 1/);
    expect(failed.body.message).toMatch(/ENOSPC/);
    // the shard's log refuses: nothing more for shard 1 is taken, with or without wait
    for (const url of [wait, `${e.ingestUrl}/ingest/batch`]) {
      const refused = await post(url, { events: events(200, 10, [1]) });
      expect(refused.status).toBe(507);
      expect(refused.body.message).toMatch(/shard 1 cannot write its log: .*ENOSPC.*nothing of this request was stored/);
    }
    const shard0Only = events(300, 20, [0]);
    expect((await post(wait, { events: shard0Only })).status).toBe(200);
    acked.push(...shard0Only);
    // queries answer from what polars holds: everything acknowledged, and k's part on shard 0
    const kOn0 = k.filter((ev) => shardForUser(ev.user_id, 2) === 0);
    expect(await storedTotals(e.queryUrl)).toEqual({ count: acked.length + kOn0.length, sum: sum(acked) + sum(kOn0) });
    const stats = await shardStats(e.queryUrl);
    expect(stats[1]!.storage_error).toMatch(/ENOSPC/);
    expect(stats[1]!.events_dropped_storage).toBe(k.length - kOn0.length);
    expect(stats[1]!.state).toBe('ready');
    expect(stats[0]!.storage_error).toBeNull();

    rmSync(faultFile);
    const after = events(400, 10, [1]);
    await untilAccepted(wait, { events: after });
    acked.push(...after);
    // the keyed retry of the 507: shard 0 holds its part already, only shard 1's is written
    const retried = await post(wait, { events: k }, 'disk-k');
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ accepted: 40, durable: true });
    acked.push(...k);
    expect(await storedTotals(e.queryUrl)).toEqual({ count: acked.length, sum: sum(acked) });
    expect((await shardStats(e.queryUrl))[1]!.storage_error).toBeNull();

    await e.stop();
    engines.splice(engines.indexOf(e), 1);
    const again = await start({ shards: 2, dataDir });
    expect(await storedTotals(again.queryUrl)).toEqual({ count: acked.length, sum: sum(acked) });
  });

  it('EIO on a sync: the batch written before it is taken back from the log, never replayed', async () => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const e = await start({ shards: 2, dataDir });
    const wait = `${e.ingestUrl}/ingest/batch?wait=true`;
    const acked = events(0, 30, [0, 1]);
    expect((await post(wait, { events: acked })).status).toBe(200);
    writeFileSync(faultFile, JSON.stringify({ errno: 'EIO', shards: [0], ops: ['sync'] }));
    const lost = await post(wait, { events: events(100, 30, [0]) });
    expect(lost.status).toBe(507);
    expect(lost.body.message).toMatch(/shard 0 .*EIO/);
    rmSync(faultFile);
    const after = events(200, 10, [0]);
    await untilAccepted(wait, { events: after });
    acked.push(...after);
    expect(await storedTotals(e.queryUrl)).toEqual({ count: acked.length, sum: sum(acked) });
    await e.stop();
    engines.splice(engines.indexOf(e), 1);
    const again = await start({ shards: 2, dataDir });
    expect(await storedTotals(again.queryUrl)).toEqual({ count: acked.length, sum: sum(acked) });
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)('a really full disk (a 2 MiB tmpfs): 507 once it is full, nothing acknowledged lost, recovery after it is grown', async () => {
    const mountDir = mkdtempSync(join(tmpdir(), 'disk-tmpfs-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountDir]);
    } catch {
      rmSync(mountDir, { recursive: true, force: true });
      return; // no mount here (a container without the capability): the hook tests above cover it
    }
    try {
      const dataDir = join(mountDir, 'data');
      mkdirSync(dataDir);
      const e = await start({ shards: 2, dataDir });
      const wait = `${e.ingestUrl}/ingest/batch?wait=true`;
      const acked: Array<{ value: number }> = [];
      let full: { status: number; body: any } | null = null;
      for (let r = 0; r < 400 && !full; r++) {
        const evs = events(r * 200, 200, [0, 1]).map((ev) => ({ ...ev, event_type: `view-${'x'.repeat(40)}-${r}` }));
        const res = await post(wait, { events: evs });
        if (res.status === 200) acked.push(...evs);
        else full = res;
      }
      expect(full?.status).toBe(507);
      expect(full?.body.message).toMatch(/ENOSPC/);
      expect((await storedTotals(e.queryUrl)).count).toBeGreaterThanOrEqual(acked.length);
      execFileSync('mount', ['-o', 'remount,size=64m', mountDir]);
      const after = events(1_000_000, 50, [0, 1]);
      await untilAccepted(wait, { events: after });
      acked.push(...after);
      await e.stop();
      engines.splice(engines.indexOf(e), 1);
      const again = await start({ shards: 2, dataDir });
      // every 200 survived; a 507's part on the other shard may be stored as well (it was durable there)
      const totals = await storedTotals(again.queryUrl);
      expect(totals.count).toBeGreaterThanOrEqual(acked.length);
      await again.stop();
      engines.splice(engines.indexOf(again), 1);
    } finally {
      execFileSync('umount', [mountDir]);
      rmSync(mountDir, { recursive: true, force: true });
    }
  });
});
