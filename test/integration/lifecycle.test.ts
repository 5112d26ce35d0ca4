/**
 * Lifecycle with the real `npm start` entry point in a child process (each run on its own
 * temporary `--data-dir`): SIGTERM drains every ring into polars before exit (every acknowledged
 * event handed over), and a polars process killed from outside is respawned and refilled from
 * the shard's log without hanging any request.
 */
import { describe, expect, it } from 'vitest';
import { postJson } from '../helpers/engine-harness.js';
import { startMain } from '../helpers/main-process.js';
import { shardStats, storedTotals, until, waitReady } from '../helpers/shard-probes.js';

describe('lifecycle', () => {
  it('on SIGTERM hands every acknowledged event to polars, then exits 0', async () => {
    // A long flush interval keeps the events in the shards' builders until shutdown drains them.
    const e = await startMain(['--shards', '2', '--flush-interval-ms', '60000', '--max-batch-rows', '1000000']);
    let accepted = 0;
    for (let b = 0; b < 20; b++) {
      const events = Array.from({ length: 500 }, (_, i) => ({ event_type: 'view', user_id: `u${(b * 500 + i) % 777}`, value: i }));
      const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events });
      expect(res.status).toBe(202);
      accepted += res.body.accepted;
    }
    e.child.kill('SIGTERM');
    const code = await e.exited;
    // On failure, show what the engine logged at warn level and above.
    expect(code, JSON.stringify(e.logs.filter((l) => l.level >= 40 || String(l.msg).startsWith('stop')))).toBe(0);
    const stopped = e.logs.find((l) => l.msg === 'stopped: every shard flushed to polars');
    expect(stopped, JSON.stringify(e.logs.slice(-5))).toBeDefined();
    expect(stopped!.accepted_events).toBe(accepted);
    expect(stopped!.rows_handed_to_polars).toBe(accepted);
    const perShard = stopped!.shards as Array<{ rows_held: number; rows_handed_to_polars: number }>;
    expect(perShard.reduce((n, s) => n + s.rows_held, 0)).toBe(accepted);
  });

  it('respawns a polars process killed from outside and refills it from the log, answering every request meanwhile', async () => {
    const e = await startMain(['--shards', '2']);
    try {
      await waitReady(e.queryUrl);
      let accepted = 0;
      for (let b = 0; b < 10; b++) {
        const events = Array.from({ length: 500 }, (_, i) => ({ event_type: 'view', user_id: `u${(b * 500 + i) % 777}`, value: 1 }));
        const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events });
        expect(res.status).toBe(202);
        accepted += res.body.accepted;
      }
      const before = await shardStats(e.queryUrl);
      const pid = before[1]!.polars_pid as number;
      process.kill(pid, 'SIGKILL');
      // Whatever arrives while shard 1 restores is answered, never hung: ingest is taken (202),
      // a query is 200 or 503 with Retry-After.
      const batch = Array.from({ length: 50 }, (_, i) => ({ event_type: 'view', user_id: `u${i}`, value: 1 }));
      const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events: batch });
      expect(res.status).toBe(202);
      accepted += batch.length;
      const q = await postJson(`${e.queryUrl}/query/aggregate`, {});
      expect([200, 503]).toContain(q.status);
      await until(async () => (await shardStats(e.queryUrl))[1]!.polars_restarts >= 1, 'shard 1 to respawn polars');
      await waitReady(e.queryUrl);
      expect((await shardStats(e.queryUrl))[1]!.polars_pid).not.toBe(pid);
      expect((await storedTotals(e.queryUrl)).count).toBe(accepted);
      expect(e.logs.some((l) => l.level >= 50 && l.shard === 1 && /polars process exited/.test(l.msg))).toBe(true);
      expect(e.logs.some((l) => l.shard === 1 && l.msg === 'restored: polars serves again')).toBe(true);
    } finally {
      e.child.kill('SIGTERM');
      await e.exited;
    }
  });
});
