import { describe, expect, it } from 'vitest';
import { QueryAdmission } from './query-admission.js';

const errors = {
  busy: (running: number, queued: number) => new Error(`busy: ${running} running, ${queued} queued`),
  timedOut: (ms: number) => new Error(`timed out after ${ms} ms`),
};

/** A task the test finishes by hand; records the time it was given. */
function gate() {
  let open!: (v: string) => void;
  const done = new Promise<string>((resolve) => (open = resolve));
  const given: number[] = [];
  const task = (left: number) => {
    given.push(left);
    return done;
  };
  return { task, open, given };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('QueryAdmission', () => {
  it('runs up to `concurrency` at once, queues up to `queue`, refuses beyond and counts the refusals', async () => {
    const a = new QueryAdmission(2, 1, errors);
    const g = [gate(), gate(), gate()];
    const p0 = a.run(10_000, g[0]!.task);
    const p1 = a.run(10_000, g[1]!.task);
    expect(a.canAdmit()).toBe(true);
    const p2 = a.run(10_000, g[2]!.task);
    expect([a.running, a.queued]).toEqual([2, 1]);
    expect(a.canAdmit()).toBe(false);
    await expect(a.run(10_000, gate().task)).rejects.toThrow('busy: 2 running, 1 queued');
    expect(a.rejectedBusy).toBe(1);
    expect(g[2]!.given).toEqual([]);
    g[0]!.open('a');
    expect(await p0).toBe('a');
    await tick();
    expect(g[2]!.given).toHaveLength(1);
    expect([a.running, a.queued]).toEqual([2, 0]);
    g[1]!.open('b');
    g[2]!.open('c');
    expect(await Promise.all([p1, p2])).toEqual(['b', 'c']);
    expect([a.running, a.queued]).toEqual([0, 0]);
  });

  it('starts queued requests first in, first out', async () => {
    const a = new QueryAdmission(1, 10, errors);
    const first = gate();
    const order: number[] = [];
    const p = a.run(10_000, first.task);
    const queued = [1, 2, 3].map((n) => a.run(10_000, async () => void order.push(n)));
    first.open('x');
    await Promise.all([p, ...queued]);
    expect(order).toEqual([1, 2, 3]);
  });

  it('gives a queued request only what is left of its time, and rejects it if its time runs out while queued', async () => {
    const a = new QueryAdmission(1, 2, errors);
    const first = gate();
    void a.run(10_000, first.task);
    const second = gate();
    const waited = a.run(10_000, second.task);
    const expires = a.run(30, gate().task);
    await expect(expires).rejects.toThrow('timed out after 30 ms');
    expect(a.queued).toBe(1);
    first.open('x');
    await tick();
    expect(second.given).toHaveLength(1);
    expect(second.given[0]!).toBeLessThan(10_000);
    second.open('y');
    expect(await waited).toBe('y');
  });

  it('frees the slot of a task that fails, even synchronously', async () => {
    const a = new QueryAdmission(1, 0, errors);
    await expect(
      a.run(1000, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    await expect(a.run(1000, () => Promise.reject(new Error('later')))).rejects.toThrow('later');
    expect(a.running).toBe(0);
    expect(await a.run(1000, async () => 'ok')).toBe('ok');
  });
});
