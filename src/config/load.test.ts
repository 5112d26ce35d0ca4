import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { loadConfig } from './load.js';

describe('config loading', () => {
  it('uses defaults with shards = available parallelism', () => {
    const c = loadConfig({ env: {}, argv: [] });
    expect(c.shards).toBe(availableParallelism());
    expect(c.ingestPort).toBe(3000);
    expect(c.queryPort).toBe(3001);
    expect(c.maxBatchEvents).toBe(10000);
  });

  it('layers env vars under CLI flags', () => {
    const c = loadConfig({ env: { ENGINE_SHARDS: '3', ENGINE_RING_BYTES: '65536' }, argv: ['--shards', '5', '--flush-interval-ms=20'] });
    expect(c.shards).toBe(5);
    expect(c.ringBytes).toBe(65536);
    expect(c.flushIntervalMs).toBe(20);
  });

  it('applies production.json with --env production', () => {
    expect(loadConfig({ env: {}, argv: ['--env', 'production'] }).host).toBe('0.0.0.0');
  });

  it.each([
    [{ argv: ['--shards', 'many'] }, /`shards`: expected an integer/],
    [{ argv: ['--shards', '0'] }, /`shards`: expected 1..64, got 0/],
    [{ argv: ['--no-such-flag', '1'] }, /`--no-such-flag`: unknown flag/],
    [{ env: { ENGINE_RING_BYTES: '12' } }, /`ringBytes`: expected 4096/],
    [{ overrides: { logLevel: 'loud' } }, /`logLevel`: expected one of/],
    [{ overrides: { bogus: 1 } as never }, /`bogus`: unknown key/],
  ])('fails fast naming the key for %j', (opts, message) => {
    expect(() => loadConfig({ env: {}, argv: [], ...opts })).toThrow(message);
  });
});
