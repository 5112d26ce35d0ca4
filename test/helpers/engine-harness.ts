/** Starts a real engine (real workers, rings, polars processes) on ephemeral ports for a test. */
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { EngineConfig } from '../../src/config/schema.js';
import { Engine } from '../../src/engine.js';

export interface RunningEngine {
  engine: Engine;
  ingestUrl: string;
  queryUrl: string;
  stop: () => Promise<void>;
}

export async function startEngine(overrides: Partial<EngineConfig> = {}): Promise<RunningEngine> {
  const config = loadConfig({ env: {}, argv: [], overrides: { ingestPort: 0, queryPort: 0, logLevel: 'silent', ...overrides } });
  const engine = new Engine(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  const { ingestUrl, queryUrl } = await engine.start();
  return { engine, ingestUrl, queryUrl, stop: async () => void (await engine.stop()) };
}

export async function postJson(url: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: typeof body === 'string' ? body : JSON.stringify(body) });
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
