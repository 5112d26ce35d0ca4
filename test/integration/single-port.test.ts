/** ingestPort = queryPort serves both APIs on one port; invalid config stops start-up naming the key. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { postJson, startEngine, freePort } from '../helpers/engine-harness.js';

describe('ports and config', () => {
  it('serves ingest and analytics on one port when both are configured the same', async () => {
    const port = await freePort();
    const engine = await startEngine({ shards: 1, ingestPort: port, queryPort: port });
    try {
      expect(engine.ingestUrl).toBe(engine.queryUrl);
      const ingest = await postJson(`${engine.ingestUrl}/ingest`, { event_type: 'a', user_id: 'u', value: 2 });
      expect(ingest.status).toBe(202);
      const agg = await postJson(`${engine.queryUrl}/query/aggregate`, {});
      expect(agg.body.results[0]).toMatchObject({ count: 1, value_sum: 2 });
    } finally {
      await engine.stop();
    }
  });

  it('refuses to start with an invalid config value, naming the key', () => {
    const root = join(import.meta.dirname, '..', '..');
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--ring-bytes', '10'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/invalid config `ringBytes`: expected 4096/);
    const env = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ENGINE_SHARDS: 'lots' } });
    expect(env.status).toBe(2);
    expect(env.stderr).toMatch(/invalid config `shards`/);
  });
});
