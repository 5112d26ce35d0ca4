/** Starts a real engine (real workers, rings, polars processes) on ephemeral ports for a test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { EngineConfig } from '../../src/config/schema.js';
import { Engine } from '../../src/engine.js';

export interface RunningEngine {
  engine: Engine;
  ingestUrl: string;
  queryUrl: string;
  /** where this engine keeps its shard logs */
  dataDir: string;
  /** the engine's log lines (only with `captureLogs`) */
  logs: Array<Record<string, any>>;
  stop: () => Promise<void>;
}

export interface StartOptions {
  /** Keep a temporary data dir on stop (to start another engine on it); remove it with `removeDataDir`. */
  keepDataDir?: boolean;
  /** Resolve only when every shard answers queries (has replayed its log). Default true. */
  waitReady?: boolean;
  /** Collect the engine's log lines (info and above) in `logs`. */
  captureLogs?: boolean;
  /** With `captureLogs`: the lowest level collected (default info). */
  captureLevel?: 'debug' | 'info';
}

/** A fresh data dir under the OS temp dir. */
export function makeDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'shardlytics-test-'));
}

export function removeDataDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts an engine. Unless `overrides.dataDir` is given, it gets a fresh temporary data dir,
 * removed on stop (kept with `keepDataDir`); a given `dataDir` belongs to the caller.
 */
export async function startEngine(overrides: Partial<EngineConfig> = {}, options: StartOptions = {}): Promise<RunningEngine> {
  const owned = overrides.dataDir === undefined;
  const dataDir = overrides.dataDir ?? makeDataDir();
  const config = loadConfig({ env: {}, argv: [], overrides: { ingestPort: 0, queryPort: 0, logLevel: 'silent', ...overrides, dataDir } });
  const logs: Array<Record<string, any>> = [];
  const logger = options.captureLogs
    ? pino(
        { level: options.captureLevel ?? 'info' },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
            done();
          },
        }),
      )
    : pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const engine = new Engine(config, logger);
  const cleanup = () => {
    if (owned && !options.keepDataDir) removeDataDir(dataDir);
  };
  let started;
  try {
    started = await engine.start();
    if (options.waitReady !== false) await Promise.all(engine.ctx.shards.map((s) => s.whenReady()));
  } catch (err) {
    await engine.stop();
    cleanup();
    throw err;
  }
  return {
    engine,
    ingestUrl: started.ingestUrl,
    queryUrl: started.queryUrl,
    dataDir,
    logs,
    stop: async () => {
      await engine.stop();
      cleanup();
    },
  };
}

/**
 * Engines a test file starts and stops itself: `start` remembers each, `stop` stops one early,
 * `cleanup` (for `afterEach`) stops the rest and removes the data dirs pushed onto `dirs`.
 */
export function engineTracker() {
  const running: RunningEngine[] = [];
  const dirs: string[] = [];
  return {
    dirs,
    async start(...args: Parameters<typeof startEngine>): Promise<RunningEngine> {
      const e = await startEngine(...args);
      running.push(e);
      return e;
    },
    async stop(e: RunningEngine): Promise<void> {
      running.splice(running.indexOf(e), 1);
      await e.stop();
    },
    async cleanup(): Promise<void> {
      for (const e of running.splice(0)) await e.stop();
      for (const d of dirs.splice(0)) removeDataDir(d);
    },
  };
}

export async function postJson(url: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; body: any; headers: Headers }> {
  return postBody(url, typeof body === 'string' ? body : JSON.stringify(body), { 'content-type': contentType });
}

/** POSTs `body` as it is; the answer parsed as JSON when it is JSON, else its text. */
export async function postBody(url: string, body: string | Uint8Array, headers: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/**
 * Sends `GET <route>?<query>` for every case and expects a 400 whose message or `errors[]` names
 * the field. Never a 500, never a hang (each request is awaited in turn).
 */
export async function expectEveryQueryRejected(route: string, cases: Array<[query: string, field: string]>): Promise<void> {
  const { expect } = await import('vitest');
  for (const [query, field] of cases) {
    const res = await getJson(`${route}?${query}`);
    expect(res.status, `${query} → ${JSON.stringify(res.body)}`).toBe(400);
    const named = res.body.message.includes(field) || (res.body.errors ?? []).some((e: { field: string }) => e.field === field);
    expect(named, `${query}: ${res.body.message}`).toBe(true);
  }
}

/** A TCP port free on 127.0.0.1 right now (for tests that need ingestPort = queryPort). */
export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
