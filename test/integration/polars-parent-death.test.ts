/**
 * The polars processes die with their engine. A polars process that outlived a `kill -9` of its
 * engine went on with the request it was serving and held its shard's segment lock until then,
 * so a restarted engine waited for it. Here the polars processes are stopped (SIGSTOP) before
 * the engine is killed: a stopped process never finishes anything, so only the parent-death
 * signal (python/engine_polars/parent_death.py) can end it. Without it the test fails at its
 * hang guard, with the processes still stopped and their locks held.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postJson } from '../helpers/engine-harness.js';
import { processRunning, startMain, type MainProcess } from '../helpers/main-process.js';
import { childrenOf, lockedNow, segmentLocks } from '../helpers/proc-files.js';
import { shardStats, storedTotals, until, waitReady } from '../helpers/shard-probes.js';

const dir = mkdtempSync(join(tmpdir(), 'engine-pdeath-'));
const ARGS = ['--data-dir', dir, '--shards', '2'];
const running: MainProcess[] = [];
const stopped: number[] = [];

afterAll(async () => {
  // a failed run leaves them stopped: let them go so that nothing outlives the test
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const m of running) {
    m.child.kill('SIGTERM');
    await m.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const events = (n: number) => Array.from({ length: n }, (_, i) => ({ timestamp: 1_700_000_000_000 + i, event_type: 'click', user_id: `u${i % 97}`, value: i }));

describe('polars processes and a killed engine', () => {
  it('are killed with the engine even when stopped, free their segment locks, and the restarted engine has every acknowledged event', async () => {
    const engine = await startMain(ARGS);
    running.push(engine);
    await waitReady(engine.queryUrl);
    expect((await postJson(`${engine.ingestUrl}/ingest/batch?wait=true`, { events: events(500) })).status).toBe(200);
    const polars = (await shardStats(engine.queryUrl)).map((s) => s.polars_pid as number);
    expect(polars).toHaveLength(2);
    expect(childrenOf(engine.enginePid)).toEqual(expect.arrayContaining(polars));
    const locks = segmentLocks(dir);
    expect(locks.length).toBe(2);
    expect(lockedNow(locks).sort()).toEqual([...locks].sort());

    for (const pid of polars) {
      process.kill(pid, 'SIGSTOP');
      stopped.push(pid);
    }
    process.kill(engine.enginePid, 'SIGKILL');
    expect(await engine.exited).toBe(null);
    running.splice(running.indexOf(engine), 1);
    // a hang guard, not a timing claim: stopped orphans would hold their locks forever
    await until(() => polars.every((p) => !processRunning(p)) && lockedNow(locks).length === 0, 'the stopped polars processes to be killed with their engine', 30_000);

    const again = await startMain(ARGS);
    running.push(again);
    await waitReady(again.queryUrl);
    expect((await storedTotals(again.queryUrl)).count).toBe(500);
  }, 120_000);
});
