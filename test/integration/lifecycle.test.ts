/**
 * Lifecycle with the real `npm start` entry point in a child process: SIGTERM drains every ring
 * into polars before exit (every acknowledged event handed over), and a dead polars process
 * makes its shard not-ready without hanging any request.
 */
import { describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { postJson } from '../helpers/engine-harness.js';

const ROOT = join(import.meta.dirname, '..', '..');

interface Started {
  child: ChildProcess;
  logs: Array<Record<string, any>>;
  ingestUrl: string;
  queryUrl: string;
  exited: Promise<number | null>;
}

async function startMain(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--ingest-port', '0', '--query-port', '0', ...args], {
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

  it('reports a shard not-ready when its polars process dies, and answers instead of hanging', async () => {
    const e = await startMain(['--shards', '2']);
    try {
      expect((await fetch(`${e.queryUrl}/ready`)).status).toBe(200);
      const stats = (await (await fetch(`${e.queryUrl}/stats/shards`)).json()) as { shards: Array<{ polars_pid: number }> };
      process.kill(stats.shards[1]!.polars_pid, 'SIGKILL');
      let ready = 200;
      for (let i = 0; i < 100 && ready === 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        ready = (await fetch(`${e.queryUrl}/ready`)).status;
      }
      expect(ready).toBe(503);
      const q = await postJson(`${e.queryUrl}/query/aggregate`, {});
      expect(q.status).toBe(503);
      expect(q.body.message).toMatch(/shard 1/);
      // Users on the healthy shard are still accepted; a batch touching the dead shard is refused whole.
      const batch = Array.from({ length: 50 }, (_, i) => ({ event_type: 'view', user_id: `u${i}` }));
      const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events: batch });
      expect(res.status).toBe(503);
      expect(res.body.message).toMatch(/shard 1 is not ready/);
      expect(e.logs.some((l) => l.level >= 50 && l.shard === 1)).toBe(true);
    } finally {
      e.child.kill('SIGTERM');
      await e.exited;
    }
  });
});
