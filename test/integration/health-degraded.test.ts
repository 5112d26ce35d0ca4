/**
 * /health is liveness with a diagnosis: 200 always, `degraded` naming each shard that is not
 * ready (a killed polars process, while it is down or being restored), `healthy` otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../helpers/engine-harness.js';
import { startMain, type MainProcess } from '../helpers/main-process.js';

interface Health {
  status: string;
  timestamp: string;
  buffered: number;
  uptime: number;
  shards: number;
  failing_shards: Array<{ shard: number; error: string }>;
}

let main: MainProcess;
beforeAll(async () => {
  main = await startMain(['--shards', '2']);
});
afterAll(async () => {
  main?.child.kill('SIGTERM');
  await main?.exited;
});

describe('/health', () => {
  it('says healthy with the seed fields and no failing shards when every shard is ready', async () => {
    const res = await getJson(`${main.queryUrl}/health`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'healthy', timestamp: expect.any(String), buffered: 0, uptime: expect.any(Number), shards: 2, failing_shards: [] });
  });

  it('says degraded naming the shard whose polars process was killed, still answering 200', async () => {
    const stats = await getJson(`${main.queryUrl}/stats/shards`);
    const victim = stats.body.shards[1].polars_pid as number;
    process.kill(victim, 'SIGKILL');
    // Polled as fast as answers come, until a degraded answer or, if the shard restores its
    // polars process quickly, until it is back (new pid, healthy), which the assertion then catches.
    const degraded: Health[] = [];
    for (let i = 0; ; i++) {
      const res = await getJson(`${main.queryUrl}/health`);
      expect(res.status).toBe(200);
      const health = res.body as Health;
      if (health.status === 'degraded') {
        degraded.push(health);
        break;
      }
      if (i % 50 === 49 && health.status === 'healthy') {
        const now = await getJson(`${main.queryUrl}/stats/shards`);
        if (now.body.shards[1].polars_pid !== victim) break;
      }
    }
    expect(degraded, 'never saw a degraded answer before the shard came back').toHaveLength(1);
    expect(degraded[0]!.failing_shards).toEqual([{ shard: 1, error: expect.any(String) }]);
    expect(degraded[0]!.failing_shards[0]!.error.length).toBeGreaterThan(0);
    // The ingest port serves the same liveness answer.
    const ingestSide = await getJson(`${main.ingestUrl}/health`);
    expect(ingestSide.status).toBe(200);
    expect(['degraded', 'healthy']).toContain(ingestSide.body.status);
  });
});
