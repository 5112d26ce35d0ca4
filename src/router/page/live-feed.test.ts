/** LiveFeed: one snapshot per tick for all viewers, none without viewers, bounded viewers. */
import { describe, expect, it } from 'vitest';
import { LiveFeed } from './live-feed.js';

/** Polls `cond` (a hang guard, not a timing assertion). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function countingFeed(maxViewers = 3) {
  const calls: number[] = [];
  const feed = new LiveFeed(
    async (viewers) => {
      calls.push(viewers);
      return { n: calls.length };
    },
    { intervalMs: 5, maxViewers },
  );
  return { feed, calls };
}

describe('LiveFeed', () => {
  it('takes one snapshot per tick and sends the same text to every viewer', async () => {
    const { feed, calls } = countingFeed();
    const got: Array<Array<[string, number]>> = [[], [], []];
    const leaves = got.map((g) => feed.join((json, seq) => g.push([json, seq])));
    await until(() => got.every((g) => g.length >= 5), 'five snapshots each');
    leaves.forEach((leave) => leave!());
    // every snapshot taken was sent once to each viewer that was there, and never computed per viewer
    expect(feed.ticks).toBe(calls.length);
    const [a, b, c] = got;
    const common = Math.min(a!.length, b!.length, c!.length);
    expect(b!.slice(0, common)).toEqual(a!.slice(0, common));
    expect(c!.slice(0, common)).toEqual(a!.slice(0, common));
    expect(a!.map(([json]) => JSON.parse(json).n)).toEqual(a!.map(([, seq]) => seq));
    expect(calls.every((v) => v === 3)).toBe(true);
  });

  it('takes no snapshot while nobody watches, and starts again with the next viewer', async () => {
    const { feed, calls } = countingFeed();
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.length).toBe(0);
    const leave = feed.join(() => undefined)!;
    await until(() => calls.length >= 2, 'two snapshots');
    leave();
    const stopped = calls.length;
    await new Promise((r) => setTimeout(r, 50));
    // at most the tick that was already running when the viewer left
    expect(calls.length - stopped).toBeLessThanOrEqual(1);
    const after = calls.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.length).toBe(after);
    feed.join(() => undefined);
    await until(() => calls.length > after, 'a snapshot for the new viewer');
    feed.close();
  });

  it('admits at most maxViewers, and a place frees when one leaves', () => {
    const { feed } = countingFeed(2);
    const a = feed.join(() => undefined);
    const b = feed.join(() => undefined);
    expect(a).not.toBeNull();
    expect(b).not.toBeNull();
    expect(feed.join(() => undefined)).toBeNull();
    expect(feed.viewerCount).toBe(2);
    a!();
    expect(feed.join(() => undefined)).not.toBeNull();
    feed.close();
    expect(feed.viewerCount).toBe(0);
  });

  it('goes on after a snapshot that throws, reporting it', async () => {
    const errors: unknown[] = [];
    let n = 0;
    const feed = new LiveFeed(
      async () => {
        if (++n === 1) throw new Error('shard busy');
        return { n };
      },
      { intervalMs: 5, maxViewers: 1, onError: (e) => errors.push(e) },
    );
    const got: number[] = [];
    feed.join((_json, seq) => got.push(seq));
    await until(() => got.length >= 2, 'snapshots after the failure');
    feed.close();
    expect((errors[0] as Error).message).toBe('shard busy');
    expect(got[0]).toBe(2);
  });
});
