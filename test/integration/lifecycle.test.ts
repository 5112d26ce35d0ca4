/**
 * Lifecycle with the real `npm start` entry point in a child process (each run on its own
 * temporary `--data-dir`): SIGTERM drains every ring into polars before exit (every acknowledged
 * event handed over), and a polars process killed from outside is respawned and refilled from
 * the shard's log without hanging any request.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { makeDataDir, postJson, removeDataDir } from '../helpers/engine-harness.js';
import { shardStats, storedTotals, until, waitReady } from '../helpers/shard-probes.js';

const ROOT = join(import.meta.dirname, '..', '..');

interface Started {
  child: ChildProcess;
  logs: Array<Record<string, any>>;
  ingestUrl: string;
  queryUrl: string;
  exited: Promise<number | null>;
}

const dataDirs: string[] = [];
afterEach(() => {
  for (const d of dataDirs.splice(0)) removeDataDir(d);
});

async function startMain(args: string[]): Promise<Started> {
  const dataDir = makeDataDir();
  dataDirs.push(dataDir);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--ingest-port', '0', '--query-port', '0', '--data-dir', dataDir, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ENGINE_LOG_LEVEL: 'info' },
  });
  const logs: Array<Record<string, any>> = [];
  let tail = '';
  let onListen: (l: Record<string, any>) => void;
  const listening = new Promise<Record<string, any>>((resolve) => (onListen = resolve));
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (tail + chunk.toString()).split('\n');
    tail = lines.pop()!;
    for (const line of lines) {
      try {
        const entry = JSON.parse(line) as Record<string, any>;
        logs.push(entry);
        if (entry.msg === 'engine listening') onListen(entry);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const entry = await Promise.race([listening, exited.then((code) => Promise.reject(new Error(`engine exited early with ${code}`)))]);
  return { child, logs, ingestUrl: entry.ingestUrl, queryUrl: entry.queryUrl, exited };
}

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
