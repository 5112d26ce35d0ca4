/**
 * `npm start` runs the engine as bundled JavaScript (scripts/start.mjs: no TypeScript loader in
 * any thread), and leaves no orphan: stopping npm (SIGTERM, or SIGKILL which it cannot pass on)
 * stops the engine it launched, which drains, stops its polars processes and frees its ports.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getJson, postJson } from '../helpers/engine-harness.js';
import { ROOT, processRunning, startMain } from '../helpers/main-process.js';

function refusesConnections(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function untilGone(pid: number): Promise<void> {
  while (processRunning(pid)) await new Promise((r) => setTimeout(r, 50));
}

describe('npm start', () => {
  it('runs the bundle without tsx, and a merge large enough for the pool answers what brute force does', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'npm-start-'));
    let main: Awaited<ReturnType<typeof startMain>> | undefined;
    try {
      main = await startMain(['--shards', '2', '--data-dir', dataDir], { npm: true });
      const argv = readFileSync(`/proc/${main.enginePid}/cmdline`, 'utf8').split('\0');
      expect(argv).toContain('scripts/start.mjs');
      expect(argv.join(' ')).not.toMatch(/tsx/);
      // 6,000 users: each shard's by-user partial is well over the 64 KiB merged inline
      const events = Array.from({ length: 12_000 }, (_, i) => ({ timestamp: 1_700_000_000_000 + i, event_type: 'e', user_id: `user-${i % 6000}`, value: (i % 97) + 0.25 }));
      for (const part of [events.slice(0, 6000), events.slice(6000)]) expect((await postJson(`${main.ingestUrl}/ingest/batch?wait=true`, { events: part })).status).toBe(200);
      const res = await postJson(`${main.queryUrl}/query/aggregate`, { groupBy: ['user_id'] });
      expect(res.status).toBe(200);
      const want = new Map<string, number>();
      for (const e of events) want.set(e.user_id, (want.get(e.user_id) ?? 0) + e.value);
      const got = res.body.results as Array<{ user_id: string; value_sum: number }>;
      expect(got).toHaveLength(want.size);
      for (const r of got) expect(r.value_sum).toBeCloseTo(want.get(r.user_id)!, 9);
      expect(readdirSync(join(ROOT, '.cache', 'workers')).some((f) => /^merge-task\.[0-9a-f]{16}\.mjs$/.test(f))).toBe(true);
      main.child.kill('SIGTERM');
      await untilGone(main.enginePid);
    } finally {
      // a failed assertion must not leave npm and the engine running
      if (main && processRunning(main.enginePid)) process.kill(main.enginePid, 'SIGKILL');
      main?.child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it.each([
    ['SIGTERM', 'SIGTERM'],
    ['SIGKILL', 'parent exited'],
  ] as const)('the engine exits when npm gets %s, draining first, and its ports refuse connections', async (signal, reason) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'npm-start-'));
    try {
      const main = await startMain(['--shards', '1', '--data-dir', dataDir], { npm: true });
      // npm runs the script through `sh -c "exec node …"`: the engine is npm's direct child.
      expect(main.enginePid).not.toBe(main.child.pid);
      const polarsPid = (await getJson(`${main.queryUrl}/stats/shards`)).body.shards[0].polars_pid as number;
      main.child.kill(signal);
      await untilGone(main.enginePid);
      expect(processRunning(polarsPid)).toBe(false);
      expect(await refusesConnections(main.ingestUrl)).toBe(true);
      expect(await refusesConnections(main.queryUrl)).toBe(true);
      expect(main.logs.find((l) => l.msg === 'shutdown requested')).toMatchObject({ signal: reason });
      expect(main.logs.some((l) => l.msg === 'stopped: every shard flushed to polars')).toBe(true);
      await main.exited;
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
