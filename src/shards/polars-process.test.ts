/** PolarsProcess against a real `python -m engine_polars`: what it refuses to send, and the kill on a missed time limit. */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ColumnBuilder } from './column-builder.js';
import { MAX_FRAME_HEADER_BYTES, POLARS_MALLOC_ENV, PolarsProcess, type PolarsExit } from './polars-process.js';
import { decodeRecord, encodeRecord } from './ring-record.js';
import { ShardError } from './shard-errors.js';

const started: PolarsProcess[] = [];
afterEach(() => {
  for (const p of started.splice(0)) p.abandon();
});

function spawnPolars(onExit: (e: PolarsExit) => void = () => undefined, onKill?: (reason: string) => void): PolarsProcess {
  const p = new PolarsProcess({ shard: 7, timeoutMs: 60_000, onExit, onStderr: () => undefined, ...(onKill ? { onKill } : {}) });
  started.push(p);
  return p;
}

/** The error a request was rejected with (fails the test if it resolved). */
async function failure(p: Promise<unknown>): Promise<ShardError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ShardError);
    return err as ShardError;
  }
  throw new Error('expected the request to be rejected');
}

/** `n` events sealed the way a shard seals them (ring record → ColumnBuilder → Arrow IPC). */
function batch(n: number): Uint8Array {
  const builder = new ColumnBuilder();
  const buf = new Uint8Array(1 << 16);
  const view = new DataView(buf.buffer);
  const encoder = new TextEncoder();
  for (let i = 0; i < n; i++) {
    const end = encodeRecord({ timestamp: 1_767_225_600_000 + i, value: i, eventType: encoder.encode('view'), userId: `u${i % 5}`, metadata: null }, encoder.encode(`u${i % 5}`), buf, view, 0);
    builder.append(buf, decodeRecord(view, 0, end)!);
  }
  return builder.seal()!.ipc;
}

const gone = (pid: number) => {
  try {
    return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
};

describe('PolarsProcess', () => {
  it("starts with glibc's thresholds raised (POLARS_MALLOC_ENV), whatever this process's own are", async () => {
    const own = process.env.MALLOC_MMAP_THRESHOLD_;
    process.env.MALLOC_MMAP_THRESHOLD_ = '131072'; // what npm start gives the engine
    try {
      const p = spawnPolars();
      await p.request('ping');
      const environ = new Map(
        readFileSync(`/proc/${p.pid}/environ`, 'utf8')
          .split('\0')
          .filter((kv) => kv.includes('='))
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      for (const [name, value] of Object.entries(POLARS_MALLOC_ENV)) expect(environ.get(name), name).toBe(value);
      expect(Number(POLARS_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_)).toBeGreaterThan(64 * 1024 * 1024);
    } finally {
      if (own === undefined) delete process.env.MALLOC_MMAP_THRESHOLD_;
      else process.env.MALLOC_MMAP_THRESHOLD_ = own;
    }
  });

  it('never writes a frame whose header is over maxFrameHeaderBytes, and the process serves on', async () => {
    const p = spawnPolars();
    await p.request('ping');
    expect(MAX_FRAME_HEADER_BYTES).toBe(JSON.parse(readFileSync(new URL('../../config/limits.json', import.meta.url), 'utf8')).maxFrameHeaderBytes);
    const huge = { kind: 'aggregate', filter: { user_id: ['x'.repeat(MAX_FRAME_HEADER_BYTES)] } };
    const err = await failure(p.request('query', huge));
    expect(err.code).toBe('PLAN_TOO_LARGE');
    expect(err.message).toMatch(/at most 16777216 \(maxFrameHeaderBytes\)/);
    const stats = await p.request('stats');
    expect(stats.header.pid).toBe(p.pid);
    expect(p.alive).toBe(true);
  });

  it('kills the process when a request misses its time limit: that request POLARS_TIMEOUT, the others POLARS_DIED', async () => {
    const exits: PolarsExit[] = [];
    const kills: string[] = [];
    const p = spawnPolars(
      (e) => exits.push(e),
      (r) => kills.push(r),
    );
    await p.request('ping');
    const pid = p.pid!;
    process.kill(pid, 'SIGSTOP'); // a process that stops answering
    const late = p.request('query', { kind: 'aggregate' }, undefined, { deadline: performance.now() + 200 });
    const behind = p.request('ping');
    const lateErr = await failure(late);
    expect(lateErr.code).toBe('POLARS_TIMEOUT');
    expect(kills).toHaveLength(1);
    expect(p.alive).toBe(false);
    const behindErr = await failure(behind);
    expect(behindErr.code).toBe('POLARS_DIED');
    expect(behindErr.message).toMatch(/killed: `query` #\d+ got no answer within 200 ms/);
    await p.closed;
    expect(exits).toHaveLength(1);
    expect(exits[0]!.timedOut).toBe('query');
    expect(gone(pid)).toBe(true);
    expect((await failure(p.request('ping'))).code).toBe('POLARS_DIED');
  });

  it('has the frames sent after a roll answered while its files are written, each timed from its own turn', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'polars-roll-'));
    const fault = join(dir, 'fault');
    process.env.SHARDLYTICS_TEST_ROLL_FAULT = fault; // read by the process spawned next
    try {
      const p = spawnPolars();
      delete process.env.SHARDLYTICS_TEST_ROLL_FAULT;
      await p.request('open', { dir, log_start: 0 });
      await p.request('append', undefined, batch(30), { fields: { first_row: 0 } });
      // the roll's write is held 1 s at `segment_written`: the stats sent after it is answered first
      writeFileSync(fault, 'pause:segment_written:1000');
      const order: string[] = [];
      const roll = p.request('roll', { log_position: 1 }, undefined, { deadline: performance.now() + 60_000 }).then((r) => (order.push('roll'), r));
      const stats = p.request('stats').then((r) => (order.push('stats'), r));
      expect((await stats).header.rows).toBe(30);
      expect((await roll).header.rolled_rows).toBe(30);
      expect(order).toEqual(['stats', 'roll']);
      // a process that hangs while a roll writes is caught by the busy-time limit of the request
      // after the roll, not only at the roll's deadline a minute later
      await p.request('append', undefined, batch(10), { fields: { first_row: 30 } });
      writeFileSync(fault, 'pause:segment_written:5000');
      const second = p.request('roll', { log_position: 2 }, undefined, { deadline: performance.now() + 60_000 });
      await p.request('ping');
      process.kill(p.pid!, 'SIGSTOP');
      const ping = p.request('ping', undefined, undefined, { timeoutMs: 300 });
      expect((await failure(ping)).code).toBe('POLARS_TIMEOUT');
      expect((await failure(second)).code).toBe('POLARS_DIED');
    } finally {
      delete process.env.SHARDLYTICS_TEST_ROLL_FAULT;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('counts a busy-time limit from when the request reaches the head of the queue', async () => {
    const exits: PolarsExit[] = [];
    const p = spawnPolars((e) => exits.push(e));
    await p.request('ping');
    const pid = p.pid!;
    process.kill(pid, 'SIGSTOP');
    // The first waits 300 ms at most; the second's 100 ms would only start once the first is answered.
    const first = p.request('ping', undefined, undefined, { timeoutMs: 300 });
    const second = p.request('ping', undefined, undefined, { timeoutMs: 100 });
    expect((await failure(first)).code).toBe('POLARS_TIMEOUT');
    expect((await failure(second)).code).toBe('POLARS_DIED');
    await p.closed;
    expect(exits[0]!.error.message).toMatch(/`ping` #\d+ got no answer within 300 ms/);
  });
});
