/**
 * When the shard seals: its batch grows across drain passes until its oldest row is a flush
 * interval old (or `maxBatchRows`), so under load polars gets fewer, bigger appends; a
 * `?wait=true` request is sealed at the end of the pass that drains it, and a query seals what
 * the builder holds before it runs. With a flush interval of a minute nothing is sealed on
 * schedule during the test: every seal seen is one of those.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';
import { shardStats, storedTotals, until } from '../helpers/shard-probes.js';

const engines: RunningEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
});

function events(from: number, n: number): Array<{ event_type: string; user_id: string; value: number }> {
  return Array.from({ length: n }, (_, i) => ({ event_type: 'view', user_id: `user-${(from + i) % 97}`, value: from + i }));
}
const sumOf = (n: number) => (n * (n - 1)) / 2;

describe('batch sealing', () => {
  it('keeps drained rows in one batch across passes until a ?wait=true request seals them, and a query sees every row', async () => {
    // A 64 KiB ring: each 600-event request fills more than a quarter of it, so the producer
    // wakes the sleeping shard and it drains the request in a pass of its own.
    const e = await startEngine({ shards: 1, flushIntervalMs: 60_000, ringBytes: 64 * 1024 });
    engines.push(e);
    const ring = e.engine.ctx.shards[0]!.ring;
    let sent = 0;
    for (let r = 0; r < 5; r++) {
      expect((await postJson(`${e.ingestUrl}/ingest/batch`, { events: events(sent, 600) })).status).toBe(202);
      sent += 600;
      await until(() => ring.consumed() === sent, `request ${r} drained`);
    }
    let [stats] = await shardStats(e.queryUrl);
    expect(stats!.events_received).toBe(sent);
    expect(stats!.batches_sealed).toBe(0); // five passes, no seal: every pass sealed before
    expect(ring.durable()).toBe(0);

    const res = await postJson(`${e.ingestUrl}/ingest/batch?wait=true`, { events: events(sent, 10) });
    expect(res.status).toBe(200);
    sent += 10;
    [stats] = await shardStats(e.queryUrl);
    expect(stats!.batches_sealed).toBe(1); // everything drained, in one batch
    expect(ring.durable()).toBe(sent);

    expect((await postJson(`${e.ingestUrl}/ingest/batch`, { events: events(sent, 600) })).status).toBe(202);
    sent += 600;
    await until(() => ring.consumed() === sent, 'the last request drained');
    expect(await storedTotals(e.queryUrl)).toEqual({ count: sent, sum: sumOf(sent) });
    [stats] = await shardStats(e.queryUrl);
    expect(stats!.batches_sealed).toBe(2); // the query sealed the builder's rows
  });

  it('seals rows the shard drains on its timer in that same pass: an acknowledged event waits about one flush interval, not one asleep and one more in the builder', async () => {
    // small requests: no quarter-full wake-up, so the shard drains them on its timer
    const flush = 3000;
    const e = await startEngine({ shards: 1, flushIntervalMs: flush });
    engines.push(e);
    const ring = e.engine.ctx.shards[0]!.ring;
    let sent = 0;
    for (let r = 0; r < 2; r++) {
      expect((await postJson(`${e.ingestUrl}/ingest/batch`, { events: events(sent, 10) })).status).toBe(202);
      sent += 10;
      await until(() => ring.durable() === sent, `request ${r} durable`, 30_000);
      const [stats] = await shardStats(e.queryUrl);
      // last_seal_age_ms: from the drain of the batch's first row to its seal. Sealing by the
      // drain time held every row a whole flush interval in the builder (it was drained up to a
      // flush interval after its push already); the ring's last emptying bounds its push time.
      expect(stats!.last_seal_age_ms).toBeLessThan(flush);
      expect(stats!.batches_sealed).toBe(r + 1);
    }
    expect(await storedTotals(e.queryUrl)).toEqual({ count: sent, sum: sumOf(sent) });
  });
});
