/**
 * A few cycles of `npm run chaos` (bench/chaos.ts): clients ingest with ?wait=true and an
 * Idempotency-Key per request while the engine, a child process, is killed with -9 at random
 * moments and restarted on the same data dir; every event acknowledged 200 is stored exactly once.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../../bench/chaos.js';

describe('chaos: kill -9 during keyed ?wait=true ingest', () => {
  it('stores every acknowledged event exactly once over 3 kill/restart cycles', async () => {
    const report = await runChaos({ cycles: 3, clients: 3, shards: 2, batch: 40, minUpMs: 200, maxUpMs: 900, seed: 7 });
    expect(report.kills).toBe(3);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect({ lost: report.lost, duplicated: report.duplicated, unacknowledged_stored: report.unacknowledged_stored }).toEqual({ lost: 0, duplicated: 0, unacknowledged_stored: 0 });
    expect(report.stored).toBe(report.acknowledged);
  });
});
