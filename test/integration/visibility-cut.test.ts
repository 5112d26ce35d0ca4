/**
 * Whole requests or nothing (issue 7, item 10): a query that runs while batches arrive sees every
 * acknowledged ingest request whole or not at all, across every shard; and still every request
 * acknowledged before the query was sent (read-your-writes).
 *
 * Real engine, 3 shards, small seals (a 1,000-event request is split over several sealed batches
 * on every shard, so a query that reached shard A after it drained part of a request and shard B
 * before would see part of it), several clients posting 1,000-event batches whose users spread
 * over every shard, and queries of three fan-out paths taken back to back meanwhile: aggregate
 * (fanOut), summary (fanOutMany) and export (queryShard, page by page, one cut for the export).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson, startEngine, type RunningEngine } from '../helpers/engine-harness.js';

const BATCH = 1000;
const CLIENTS = 4;
const COUNTS = 50;

let e: RunningEngine;
beforeAll(async () => {
  e = await startEngine({ shards: 3, flushIntervalMs: 2, maxBatchRows: 300 });
});
afterAll(async () => {
  await e?.stop();
});

interface Acked {
  /** events of the requests answered 202 so far */
  events: number;
  /** ... of those, the `exported` ones (the export counts only these, to stay small) */
  exported: number;
}

/**
 * Requests a client may post per count taken: ingest runs exactly as long as the counts, and
 * the store stays small enough for the exports among them, whatever the box's speed.
 */
const REQUESTS_PER_COUNT = 3;

/** Posts 1,000-event batches (users spread over every shard) until told to stop. */
async function client(c: number, stop: () => boolean, countsTaken: () => number, acked: Acked): Promise<void> {
  const eventType = c === 0 ? 'exported' : 'view';
  for (let seq = 0; !stop(); seq++) {
    while (!stop() && seq >= (countsTaken() + 4) * REQUESTS_PER_COUNT) await new Promise((r) => setTimeout(r, 2));
    if (stop()) break;
    const events = Array.from({ length: BATCH }, (_, i) => ({ event_type: eventType, user_id: `u${c}-${(seq * BATCH + i) % 5003}`, value: 1 }));
    const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events });
    if (res.status === 202) {
      acked.events += BATCH;
      if (eventType === 'exported') acked.exported += BATCH;
    } else if (res.status !== 503) throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
}

async function aggregateCount(): Promise<number> {
  const res = await postJson(`${e.queryUrl}/query/aggregate`, {});
  if (res.status !== 200) throw new Error(`aggregate answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.results[0]?.count ?? 0;
}

async function summaryCount(): Promise<number> {
  const res = await getJson(`${e.queryUrl}/query/summary?columns=value`);
  if (res.status !== 200) throw new Error(`summary answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.stats.count;
}

/** Lines of an NDJSON export of the `exported` events; small pages, so it asks each shard several times. */
async function exportCount(): Promise<number> {
  const res = await fetch(`${e.queryUrl}/query/export?format=ndjson&pageSize=10000&event_type=exported`);
  if (res.status !== 200) throw new Error(`export answered ${res.status}: ${await res.text()}`);
  const text = await res.text();
  return text.split('\n').filter((l) => l !== '').length;
}

describe('whole requests or nothing', () => {
  it('counts taken during concurrent ingest of 1,000-event batches are whole multiples of 1,000, and hold every request acknowledged before them', async () => {
    const acked: Acked = { events: 0, exported: 0 };
    let stop = false;
    const taken: Array<{ how: string; count: number; ackedBefore: number }> = [];
    const clients = Array.from({ length: CLIENTS }, (_, c) => client(c, () => stop, () => taken.length, acked));
    try {
      while (acked.events < 10 * BATCH) await new Promise((r) => setTimeout(r, 10));
      const ways: Array<[string, () => Promise<number>]> = [
        ['aggregate', aggregateCount],
        ['summary', summaryCount],
        ['aggregate', aggregateCount],
        ['summary', summaryCount],
        ['export', exportCount],
      ];
      for (let i = 0; i < COUNTS; i++) {
        const [how, count] = ways[i % ways.length]!;
        const ackedBefore = how === 'export' ? acked.exported : acked.events;
        taken.push({ how, count: await count(), ackedBefore });
      }
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    const partial = taken.filter((t) => t.count % BATCH !== 0);
    const missing = taken.filter((t) => t.count < t.ackedBefore);
    // the counts were taken while batches arrived: most saw ingest move on
    expect(new Set(taken.map((t) => t.count)).size).toBeGreaterThan(COUNTS / 2);
    expect(partial, `counts that saw part of a request: ${JSON.stringify(partial)}`).toEqual([]);
    expect(missing, `counts missing acknowledged requests: ${JSON.stringify(missing)}`).toEqual([]);
    // after ingest stopped: everything acknowledged, nothing more
    expect(await aggregateCount()).toBe(acked.events);
    expect(await summaryCount()).toBe(acked.events);
    expect(await exportCount()).toBe(acked.exported);
  });

  it('each acknowledged request is in the very next answer (read-your-writes), one client writing and reading in turn', async () => {
    const before = await aggregateCount();
    let expected = before;
    for (let i = 0; i < 20; i++) {
      const events = Array.from({ length: 1 + (i % 7) }, (_, j) => ({ event_type: 'ryw', user_id: `r${i}-${j}`, value: 1 }));
      const res = await postJson(`${e.ingestUrl}/ingest/batch`, { events });
      expect(res.status).toBe(202);
      expected += events.length;
      expect(await aggregateCount()).toBe(expected);
    }
  });
});
