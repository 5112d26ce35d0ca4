import { describe, expect, it } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import type { StreamMessage } from '../merge/merge-task.js';
import { MergeFeed, type FeedEnd } from './merge-feed.js';

/** A feed and the worker's end of its port (messages posted as the merge task posts them). */
function feed() {
  const { port1, port2 } = new MessageChannel();
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const ends: FeedEnd[] = [];
  const f = new MergeFeed(port1, stop, (how) => ends.push(how));
  const post = (m: StreamMessage) => port2.postMessage(m);
  return { f, stop, ends, post, close: () => port2.close() };
}

const bytes = (...v: number[]) => new Uint8Array(v);

describe('MergeFeed', () => {
  it('answers the length, then the pieces in order as they come, then null; ended once', async () => {
    const { f, ends, post } = feed();
    post({ bytes: 5 });
    expect(await f.length).toBe(5);
    const first = f.next();
    post(bytes(1, 2));
    post(bytes(3, 4, 5));
    post({ end: 2 });
    expect([...(await first)!]).toEqual([1, 2]);
    expect([...(await f.next())!]).toEqual([3, 4, 5]);
    expect(await f.next()).toBeNull();
    expect(ends).toEqual(['ended']);
  });

  it('fails when the pieces come to more or fewer bytes than the length', async () => {
    const over = feed();
    over.post({ bytes: 2 });
    over.post(bytes(1, 2, 3));
    await expect(over.f.next()).rejects.toThrow('3 bytes of pieces for an output of 2');
    expect(over.ends).toEqual(['failed']);
    expect(Atomics.load(over.stop, 0)).toBe(1);
    const under = feed();
    under.post({ bytes: 4 });
    under.post(bytes(1));
    under.post({ end: 1 });
    expect([...(await under.f.next())!]).toEqual([1]);
    await expect(under.f.next()).rejects.toThrow('ended after 1 of its 4 bytes');
  });

  it('a merge failing before its length rejects the length with its error; after it, the next read', async () => {
    const early = feed();
    early.f.fail(new Error('timed out'));
    await expect(early.f.length).rejects.toThrow('timed out');
    const late = feed();
    late.post({ bytes: 4 });
    late.post(bytes(1, 2));
    await late.f.length;
    expect([...(await late.f.next())!]).toEqual([1, 2]);
    const waiting = late.f.next();
    late.f.fail(new Error('worker exited'));
    await expect(waiting).rejects.toThrow('worker exited');
    // later pieces and a second failure change nothing
    late.post(bytes(3, 4));
    late.f.fail(new Error('again'));
    await expect(late.f.next()).rejects.toThrow('worker exited');
    expect(late.ends).toEqual(['failed']);
  });

  it('cancelled: the worker is told to stop, what was queued is dropped and reads reject; an ended feed drops its queue', async () => {
    const { f, stop, ends, post } = feed();
    post({ bytes: 6 });
    post(bytes(1, 2));
    post(bytes(3, 4));
    await f.length;
    expect([...(await f.next())!]).toEqual([1, 2]);
    f.cancel();
    expect(Atomics.load(stop, 0)).toBe(1);
    await expect(f.next()).rejects.toThrow('cancelled');
    expect(ends).toEqual(['cancelled']);

    const done = feed();
    done.post({ bytes: 2 });
    done.post(bytes(1, 2));
    done.post({ end: 1 });
    await done.f.length;
    while (done.ends.length === 0) await new Promise((r) => setImmediate(r));
    done.f.cancel();
    expect(await done.f.next()).toBeNull();
    expect(done.ends).toEqual(['ended']);
  });
});
