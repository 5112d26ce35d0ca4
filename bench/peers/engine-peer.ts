/**
 * The engine as bench:peers runs it: `src/main.ts` with its default config except ports 0 and a
 * temporary `--data-dir`, loaded over HTTP (`POST /ingest/batch`, several requests in flight) and
 * queried over HTTP. `restart` stops it and starts it again on the same data dir with other flags
 * (bench:peers' cold and warm runs: `--partial-cache false` / `true`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ROOT, spawnServer, type ChildServer } from '../bench-util.js';
import { batchBody, userFragments } from './encode-json.js';
import type { EventChunk } from './events.js';
import { summarize, type Timing } from './timing.js';

export interface EngineRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  /** The answer is an Arrow IPC stream (`format: "arrow"`): the timed client decodes it with `tableFromIPC`. */
  arrow?: boolean;
}

export interface EngineAnswer {
  status: number;
  /** The answer's text; an Arrow answer's only when it is not a 200. */
  text: string;
  /** A 200 Arrow answer's bytes. */
  bytes?: Uint8Array;
}

export interface IngestProgress {
  sent: number;
  total: number;
  elapsedMs: number;
}

/**
 * `fetch`, sent again once when the connection was closed under it: this thread's keep-alive
 * socket to the engine can sit idle as long as the server's keepAliveTimeout while the timed runs
 * go from their worker, and a request sent as the server closes it fails with "other side
 * closed" (these requests are reads).
 */
async function fetchReadAgainIfClosed(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw err;
    return fetch(url, init);
  }
}

export class EnginePeer {
  private constructor(
    private readonly server: ChildServer,
    private readonly dataDir: string,
    readonly ingestUrl: string,
    readonly queryUrl: string,
    readonly shards: number,
  ) {}

  /** Starts the engine on `dataDir` (default: a new temporary one), which is removed if the start fails. */
  static async start(extraArgs: string[] = [], dataDir = mkdtempSync(join(tmpdir(), 'bench-peers-'))): Promise<EnginePeer> {
    try {
      const { server, line } = await spawnServer(
        join(ROOT, 'src/main.ts'),
        ['--ingest-port', '0', '--query-port', '0', '--data-dir', dataDir, ...extraArgs],
        (l) => l.msg === 'engine listening',
      );
      const l = line as { ingestUrl: string; queryUrl: string; shards: number };
      return new EnginePeer(server, dataDir, l.ingestUrl, l.queryUrl, l.shards);
    } catch (err) {
      rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Stops the engine and starts it on the same data dir with `extraArgs`; resolves when it
   * listens (then `waitForCount`: it loads its segments and replays its log first). This peer is
   * spent; the answer owns the data dir. If the start fails the data dir is removed.
   */
  async restart(extraArgs: string[]): Promise<EnginePeer> {
    await this.server.stop();
    return EnginePeer.start(extraArgs, this.dataDir);
  }

  /** The engine's stdout lines parsed as JSON (its pino log), oldest first. */
  get logLines(): ReadonlyArray<Record<string, any>> {
    return this.server.lines;
  }

  /** `GET /stats/shards`. */
  async shardStats(): Promise<Array<Record<string, any>>> {
    const res = await fetchReadAgainIfClosed(`${this.queryUrl}/stats/shards`);
    if (res.status !== 200) throw new Error(`engine stats: ${res.status} ${await res.text()}`);
    return ((await res.json()) as { shards: Array<Record<string, any>> }).shards;
  }

  /**
   * Sends every event as `/ingest/batch` requests of `batch` events, `concurrency` in flight;
   * a 503 (rings full) is retried after a short pause. Resolves when every request was accepted.
   */
  async ingest(chunks: readonly EventChunk[], userIds: readonly string[], opts: { batch: number; concurrency: number; onProgress?: (p: IngestProgress) => void }): Promise<void> {
    const users = userFragments(userIds);
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const slices: Array<[EventChunk, number, number]> = [];
    for (const c of chunks) for (let from = 0; from < c.length; from += opts.batch) slices.push([c, from, Math.min(c.length, from + opts.batch)]);
    const t0 = performance.now();
    let next = 0;
    let sent = 0;
    let lastReport = t0;
    const sender = async (): Promise<void> => {
      while (next < slices.length) {
        const [c, from, to] = slices[next++]!;
        const body = batchBody(c, from, to, users);
        for (;;) {
          const res = await fetch(`${this.ingestUrl}/ingest/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
          const text = await res.text();
          if (res.status === 202) break;
          if (res.status === 503) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          throw new Error(`engine ingest: ${res.status} ${text.slice(0, 500)}`);
        }
        sent += to - from;
        const now = performance.now();
        if (opts.onProgress && (now - lastReport > 1000 || sent === total)) {
          lastReport = now;
          opts.onProgress({ sent, total, elapsedMs: now - t0 });
        }
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency }, sender));
  }

  /** The engine's global event count (`POST /query/aggregate {}`); null while a shard restores (503). */
  async count(): Promise<number | null> {
    const res = await fetchReadAgainIfClosed(`${this.queryUrl}/query/aggregate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    if (res.status === 503) {
      await res.arrayBuffer();
      return null;
    }
    if (res.status !== 200) throw new Error(`engine count: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { results: Array<{ count: number }> };
    return body.results[0]?.count ?? 0;
  }

  /** Polls the global count until it is `n` (ingest answers before its events are queryable). */
  async waitForCount(n: number, timeoutMs = 120_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const c = await this.count();
      if (c === n) return;
      if (c !== null && c > n) throw new Error(`engine holds ${c} events, more than the ${n} sent`);
      if (performance.now() > deadline) throw new Error(`engine holds ${c} of ${n} events after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * `warmup` untimed then `runs` timed runs of the requests, from a client in a worker thread of
   * its own (engine-timer.mjs says why); the timings and the first run's answers.
   */
  async timeRuns(requests: readonly EngineRequest[], warmup: number, runs: number): Promise<{ timing: Timing; first: EngineAnswer[] }> {
    const worker = new Worker(new URL('./engine-timer.mjs', import.meta.url), { workerData: { queryUrl: this.queryUrl, requests, warmup, runs } });
    try {
      const out = await new Promise<{ times: number[]; first: EngineAnswer[] }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`engine timer exited (${code}) before answering`)));
      });
      if (out.first === null) throw new Error('timeRuns needs at least one run');
      return { timing: summarize(out.times), first: out.first };
    } finally {
      await worker.terminate();
    }
  }

  /** Sends the requests together and waits for every answer's whole body. */
  async run(requests: readonly EngineRequest[]): Promise<EngineAnswer[]> {
    return Promise.all(
      requests.map(async (r) => {
        const init: RequestInit = r.method === 'POST' ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.body ?? {}) } : {};
        const res = await fetch(this.queryUrl + r.path, init);
        if (r.arrow && res.status === 200) return { status: res.status, text: '', bytes: new Uint8Array(await res.arrayBuffer()) };
        return { status: res.status, text: await res.text() };
      }),
    );
  }

  async stop(): Promise<void> {
    try {
      await this.server.stop();
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }
}
