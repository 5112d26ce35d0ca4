/**
 * Acknowledgement modes with real shards, logs and processes: `?wait=true` is answered 200 only
 * once every shard that took part of the request has synced it (the shards' durable counters
 * have passed the request), and a `kill -9` of the engine right after a 200 loses nothing, with
 * a flush interval so long that nothing would be sealed on schedule.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { killAndRestart, startMain, type MainProcess } from '../helpers/main-process.js';
import { storedTotals } from '../helpers/shard-probes.js';
import { shardForUser } from '../../src/router/route-hash.js';

const engines: RunningEngine[] = [];
const children: MainProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
  for (const c of children.splice(0)) {
    c.child.kill('SIGKILL');
    await c.exited;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function batch(from: number, n: number): Array<{ event_type: string; user_id: string; value: number }> {
  return Array.from({ length: n }, (_, i) => ({ event_type: 'view', user_id: `user-${(from + i) % 101}`, value: from + i }));
}

const sumOf = (from: number, n: number) => (n * (2 * from + n - 1)) / 2;

describe('?wait=true', () => {
  it('answers 200 only after every shard that took part has synced the request (durable counters past it)', async () => {
    const e = await startEngine({ shards: 2, flushIntervalMs: 60_000 });
    engines.push(e);
    const shards = e.engine.ctx.shards;
    expect(new Set(batch(0, 20).map((ev) => shardForUser(ev.user_id, 2))).size).toBe(2);
    for (let r = 0; r < 20; r++) {
      const route = ['/ingest/batch', '/ingest/ndjson', '/ingest'][r % 3]!;
      const events = route === '/ingest' ? batch(r * 20, 1) : batch(r * 20, 20);
      const body = route === '/ingest/ndjson' ? events.map((ev) => JSON.stringify(ev)).join('\n') : route === '/ingest' ? events[0] : { events };
      const res = await postJson(`${e.ingestUrl}${route}?wait=true`, body, route === '/ingest/ndjson' ? 'application/x-ndjson' : 'application/json');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ accepted: events.length, durable: true });
      // One client, one request at a time: everything pushed so far is this request and its predecessors.
      for (const s of shards) expect(s.ring.durable()).toBeGreaterThanOrEqual(s.ring.pushed());
    }
    const stats = (await fetch(`${e.queryUrl}/stats/shards`).then((r) => r.json())) as { shards: Array<{ events_durable: number; storage_error: unknown }> };
    expect(stats.shards.reduce((n, s) => n + s.events_durable, 0)).toBe(shards.reduce((n, s) => n + s.ring.pushed(), 0));
    expect(stats.shards.every((s) => s.storage_error === null)).toBe(true);
  });

  it('answers 202 without it (also with wait=false) and 400 naming `wait` for anything but true/false', async () => {
    const e = await startEngine({ shards: 2 });
    engines.push(e);
    expect((await postJson(`${e.ingestUrl}/ingest/batch`, { events: batch(0, 5) })).status).toBe(202);
    expect((await postJson(`${e.ingestUrl}/ingest/batch?wait=false`, { events: batch(5, 5) })).status).toBe(202);
    const bad = await postJson(`${e.ingestUrl}/ingest/batch?wait=yes`, { events: batch(10, 5) });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('wait');
    expect((await storedTotals(e.queryUrl)).count).toBe(10);
  });

  for (const fsync of ['batch', 'off'] as const) {
    it(`loses nothing acknowledged 200 when the engine is killed with -9 right after (fsync ${fsync})`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'ack-kill-'));
      dirs.push(dataDir);
      const args = ['--shards', '2', '--flush-interval-ms', '60000', '--fsync', fsync, '--data-dir', dataDir];
      const first = await startMain(args);
      children.push(first);
      let acked = 0;
      for (let r = 0; r < 25; r++) {
        const res = await postJson(`${first.ingestUrl}/ingest/batch?wait=true`, { events: batch(acked, 40) });
        expect(res.status).toBe(200);
        acked += 40;
      }
      const second = await killAndRestart(first, args, children);
      expect(await storedTotals(second.queryUrl)).toEqual({ count: acked, sum: sumOf(0, acked) });
    });
  }
});
