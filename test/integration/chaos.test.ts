/**
 * A few cycles of `npm run chaos` (bench/chaos.ts): clients ingest with ?wait=true and an
 * Idempotency-Key per request while the engine, a child process, is killed with -9 at random
 * moments and restarted on the same data dir; every event acknowledged 200 is stored exactly once.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../../bench/chaos.js';

describe('chaos: kill -9 during keyed ?wait=true ingest', () => {
  it('stores every acknowledged event exactly once over 3 kill/restart cycles', async () => {
    // mixed: clients 0 and 2 send JSON (/ingest/batch), client 1 Arrow IPC (/ingest/arrow)
    const report = await runChaos({ cycles: 3, clients: 3, shards: 2, batch: 40, minUpMs: 200, maxUpMs: 900, seed: 7, route: 'mixed' });
    expect(report.kills).toBe(3);
    expect(report.acknowledged).toBeGreaterThan(0);
    expect(report.acknowledged_by_route.json).toBeGreaterThan(0);
    expect(report.acknowledged_by_route.arrow).toBeGreaterThan(0);
    expect(report.acknowledged_by_route.json! + report.acknowledged_by_route.arrow!).toBe(report.acknowledged);
    expect({ lost: report.lost, duplicated: report.duplicated, unacknowledged_stored: report.unacknowledged_stored }).toEqual({ lost: 0, duplicated: 0, unacknowledged_stored: 0 });
    expect(report.stored).toBe(report.acknowledged);
  });
});
