import { describe, expect, it } from 'vitest';
import { DurabilityTracker } from './durability.js';
import { DurableSettler } from './durable-settler.js';
import { ShardRing, StorageFault, makeShardRingBuffers } from './shard-ring.js';
import type { ShardEvent } from './protocol.js';

const outcome = (p: Promise<void>) => p.then(() => 'durable', (e: Error & { code?: string }) => e.code ?? e.message);

describe('DurabilityTracker (main side)', () => {
  it('settles each part by the first message whose `through` reaches its end', async () => {
    const t = new DurabilityTracker(0);
    const a = outcome(t.whenDurable(0, 10));
    const b = outcome(t.whenDurable(10, 25));
    t.settle({ type: 'durable', through: 12 });
    expect(await a).toBe('durable');
    expect(t.waiting).toBe(1);
    t.settle({ type: 'durable', through: 25 });
    expect(await b).toBe('durable');
    expect(await outcome(t.whenDurable(3, 9))).toBe('durable');
  });

  it('rejects exactly the parts that overlap a dropped range with INSUFFICIENT_STORAGE', async () => {
    const t = new DurabilityTracker(1);
    const before = outcome(t.whenDurable(0, 5));
    const hit = outcome(t.whenDurable(5, 9));
    const straddles = outcome(t.whenDurable(9, 14));
    const after = outcome(t.whenDurable(14, 20));
    t.settle({ type: 'durable', through: 5 });
    t.settle({ type: 'durable', through: 12, dropped: { from: 5, to: 12, code: 'ENOSPC', message: 'ENOSPC: no space left on device, write' } });
    t.settle({ type: 'durable', through: 20 });
    expect(await Promise.all([before, hit, straddles, after])).toEqual(['durable', 'INSUFFICIENT_STORAGE', 'INSUFFICIENT_STORAGE', 'durable']);
  });

  it('rejects every waiting part when the shard fails, and later ones at once', async () => {
    const t = new DurabilityTracker(2);
    const a = outcome(t.whenDurable(0, 3));
    t.fail(Object.assign(new Error('shard 2 is down'), { code: 'SHARD_DOWN' }));
    expect(await a).toBe('SHARD_DOWN');
    expect(await outcome(t.whenDurable(3, 4))).toBe('SHARD_DOWN');
  });
});

describe('DurableSettler (worker side)', () => {
  function setup() {
    const ring = new ShardRing(makeShardRingBuffers(4096));
    const events: ShardEvent[] = [];
    const settler = new DurableSettler(ring, (e) => events.push(e), () => {});
    return { ring, events, settler };
  }

  it('publishes the records of synced batches, in order, through the DURABLE counter and one message per sync', () => {
    const { ring, events, settler } = setup();
    settler.appended(100, 10);
    settler.appended(200, 30);
    settler.synced(150);
    settler.synced(200);
    settler.synced(200);
    expect(events).toEqual([
      { type: 'durable', through: 10 },
      { type: 'durable', through: 30 },
    ]);
    expect(ring.durable()).toBe(30);
  });

  it('after a failed sync: batches before the cut stay durable, the rest and the failing batch are dropped, STORAGE is set until a probe succeeds', () => {
    const { ring, events, settler } = setup();
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, fdatasync'), { code: 'ENOSPC' });
    settler.appended(100, 10);
    settler.appended(200, 30);
    settler.failed(enospc, 100);
    settler.dropped(45, enospc);
    expect(events).toEqual([
      { type: 'durable', through: 10 },
      { type: 'storage', ok: false, code: 'ENOSPC', message: enospc.message },
      { type: 'durable', through: 30, dropped: { from: 10, to: 30, code: 'ENOSPC', message: enospc.message } },
      { type: 'durable', through: 45, dropped: { from: 30, to: 45, code: 'ENOSPC', message: enospc.message } },
    ]);
    expect(ring.storageFault()).toBe(StorageFault.ENOSPC);
    expect([ring.durable(), ring.dropped(), settler.eventsDropped]).toEqual([45, 35, 35]);
    settler.recovered();
    expect(ring.storageFault()).toBe(StorageFault.NONE);
    expect(events.at(-1)).toEqual({ type: 'storage', ok: true });
  });
});
