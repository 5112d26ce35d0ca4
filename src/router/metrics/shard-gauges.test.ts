/**
 * The shard series with shards that fail or hang: the scrape still answers, with those shards'
 * stats series left out (and counted), their main-thread series (ring, admission) kept.
 */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { ShardHandle } from '../../shards/shard-handle.js';
import type { ShardStats } from '../../shards/protocol.js';
import { ShardGauges } from './shard-gauges.js';

function handle(shard: number, stats: () => Promise<ShardStats>): ShardHandle {
  return {
    shard,
    ring: { usedBytes: () => 100 * (shard + 1), capacity: () => 4096 },
    isReady: () => shard === 0,
    admission: () => ({ queries_running: shard, queries_queued: 0, queries_rejected_busy: 7 }),
    stats,
  } as unknown as ShardHandle;
}

const answered = { rows_held: 42, log_bytes: 1000, last_fsync_ms: 2.5, polars_restarts: 3 } as ShardStats;

describe('shard gauges', () => {
  it('skips the stats series of a shard that throws or does not answer within 1 s, keeping the scrape', async () => {
    const registry = new Registry();
    const gauges = new ShardGauges(registry, 'test_', [
      handle(0, async () => answered),
      handle(1, () => Promise.reject(new Error('shard down'))),
      handle(2, () => new Promise<ShardStats>(() => undefined)),
    ]);
    await gauges.collect();
    const json = await registry.getMetricsAsJSON();
    const values = (name: string) => Object.fromEntries(json.find((m) => m.name === name)!.values.map((v) => [v.labels.shard, v.value]));
    expect(values('test_shard_rows')).toEqual({ '0': 42 });
    expect(values('test_shard_log_bytes')).toEqual({ '0': 1000 });
    expect(values('test_last_fsync_seconds')).toEqual({ '0': 0.0025 });
    expect(values('test_polars_restarts_total')).toEqual({ '0': 3 });
    expect(values('test_ring_used_bytes')).toEqual({ '0': 100, '1': 200, '2': 300 });
    expect(values('test_queries_running')).toEqual({ '0': 0, '1': 1, '2': 2 });
    expect(values('test_shard_ready')).toEqual({ '0': 1, '1': 0, '2': 0 });
    expect(values('test_shard_stats_failures_total')).toEqual({ '1': 1, '2': 1 });
    // A second scrape sets the copied counters again rather than adding to them.
    await gauges.collect();
    const again = await registry.getMetricsAsJSON();
    expect(again.find((m) => m.name === 'test_queries_rejected_busy_total')!.values.map((v) => v.value)).toEqual([7, 7, 7]);
  });
});
