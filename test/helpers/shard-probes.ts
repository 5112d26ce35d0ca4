/** Probes for tests that kill, stop and restore shards: stats, readiness, counts, /proc. */
import { readFileSync } from 'node:fs';
import { getJson, postJson } from './engine-harness.js';

export async function shardStats(url: string): Promise<Array<Record<string, any>>> {
  return (await getJson(`${url}/stats/shards`)).body.shards;
}

/** Polls `cond` every 50 ms; throws after `limitMs` (a hang guard, not a timing assertion). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, limitMs = 60_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what} after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitReady(url: string, limitMs = 120_000): Promise<void> {
  await until(async () => (await fetch(`${url}/ready`)).status === 200, '/ready 200', limitMs);
}

/** Stored events and the sum of their `value`, through the real query path. */
export async function storedTotals(url: string): Promise<{ count: number; sum: number }> {
  const res = await postJson(`${url}/query/aggregate`, {});
  if (res.status !== 200) throw new Error(`aggregate answered ${res.status}: ${JSON.stringify(res.body)}`);
  const row = res.body.results[0] ?? { count: 0, value_sum: 0 };
  return { count: row.count, sum: row.value_sum ?? 0 };
}

export function processAlive(pid: number): boolean {
  try {
    // a zombie still has a /proc entry: count it as gone
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** utime + stime of a process, seconds (null once it is gone). */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after "pid (comm) ": state is field 3, utime 14, stime 15 (1-based) → indexes 11, 12 here
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

export interface Ingested {
  count: number;
  sum: number;
  rejected: number;
}

/**
 * Posts batches of `size` events (value = a unique sequence number) until `shouldStop()`;
 * counts what was acknowledged (202) and what was refused (503), nothing else allowed.
 */
export async function ingestUntil(url: string, shouldStop: () => boolean, opts: { size: number; users: number; start: number; step: number }, into: Ingested): Promise<void> {
  for (let seq = opts.start; !shouldStop(); seq += opts.step * opts.size) {
    const events = Array.from({ length: opts.size }, (_, i) => ({ event_type: 'view', user_id: `u${(seq + i) % opts.users}`, value: seq + i }));
    const res = await postJson(`${url}/ingest/batch`, { events });
    if (res.status === 202) {
      into.count += opts.size;
      for (const e of events) into.sum += e.value;
    } else if (res.status === 503) {
      into.rejected += opts.size;
      await new Promise((r) => setTimeout(r, 20));
    } else {
      throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body)}`);
    }
  }
}

/**
 * Posts batches as `ingestUntil` does until one is held: not answered within `heldMs` (a JSON
 * batch that finds its ring full waits for room, src/router/ring-room.ts). Returns a function
 * that awaits that request, counts it into `into` (accepted or refused) and gives its status.
 */
export async function ingestUntilHeld(url: string, opts: { size: number; users: number; start: number; step: number }, into: Ingested, heldMs = 1000): Promise<() => Promise<number>> {
  for (let seq = opts.start; ; seq += opts.step * opts.size) {
    const events = Array.from({ length: opts.size }, (_, i) => ({ event_type: 'view', user_id: `u${(seq + i) % opts.users}`, value: seq + i }));
    const req = postJson(`${url}/ingest/batch`, { events });
    const count = (res: { status: number; body: unknown }) => {
      if (res.status === 202) {
        into.count += opts.size;
        for (const e of events) into.sum += e.value;
      } else if (res.status === 503) into.rejected += opts.size;
      else throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.status;
    };
    const res = await Promise.race([req, new Promise<null>((r) => setTimeout(() => r(null), heldMs))]);
    if (res === null) return async () => count(await req);
    if (count(res) === 503) await new Promise((r) => setTimeout(r, 20));
  }
}
