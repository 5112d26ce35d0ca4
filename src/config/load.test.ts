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

  it('refuses a maxAnswerBytesInFlight below maxResponseBytes, naming it: one whole answer must fit', () => {
    expect(() => loadConfig({ env: {}, argv: ['--max-response-bytes', '2048', '--max-answer-bytes-in-flight', '2047'] })).toThrow(
      'invalid config `maxAnswerBytesInFlight`: 2047 is below maxResponseBytes (2048): one whole answer must fit',
    );
    expect(loadConfig({ env: {}, argv: ['--max-response-bytes', '2048', '--max-answer-bytes-in-flight', '2048'] }).maxAnswerBytesInFlight).toBe(2048);
  });

  it('layers env vars under CLI flags', () => {
    const c = loadConfig({ env: { ENGINE_SHARDS: '3', ENGINE_RING_BYTES: '65536' }, argv: ['--shards', '5', '--flush-interval-ms=20'] });
    expect(c.shards).toBe(5);
    expect(c.ringBytes).toBe(65536);
    expect(c.flushIntervalMs).toBe(20);
  });

  it('applies production.json with --env production (its 0.0.0.0 needs tokens)', () => {
    const tokens = JSON.stringify([{ token: 'a-production-token-0001', scopes: ['admin'] }]);
    expect(loadConfig({ env: { ENGINE_TOKENS: tokens }, argv: ['--env', 'production'] }).host).toBe('0.0.0.0');
  });

  it('reads tokens, allowUnauthenticated and corsOrigins as JSON from env vars and flags', () => {
    const c = loadConfig({
      env: { ENGINE_TOKENS: '[{"token":"0123456789abcdef","scopes":["ingest","query","ingest"]}]', ENGINE_ALLOW_UNAUTHENTICATED: 'true' },
      argv: ['--cors-origins', '["https://app.example.com","http://localhost:5173"]'],
    });
    expect(c.tokens).toEqual([{ token: '0123456789abcdef', scopes: ['ingest', 'query'] }]);
    expect(c.allowUnauthenticated).toBe(true);
    expect(c.corsOrigins).toEqual(['https://app.example.com', 'http://localhost:5173']);
    expect(loadConfig({ env: { ENGINE_CORS_ORIGINS: 'https://a.example, https://b.example:8443' } }).corsOrigins).toEqual(['https://a.example', 'https://b.example:8443']);
    expect(loadConfig({ env: {} })).toMatchObject({ tokens: [], allowUnauthenticated: false, corsOrigins: [] });
  });

  it('never echoes a token in its error messages', () => {
    let message = '';
    try {
      loadConfig({ env: { ENGINE_TOKENS: '[{"token":"short-secret","scopes":["admin"]}]' } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/`tokens\[0\]\.token`: expected at least 16 characters, got 12/);
    expect(message).not.toContain('short-secret');
  });

  it.each([
    [{ argv: ['--shards', 'many'] }, /`shards`: expected an integer/],
    [{ argv: ['--shards', '0'] }, /`shards`: expected 1..64, got 0/],
    [{ argv: ['--no-such-flag', '1'] }, /`--no-such-flag`: unknown flag/],
    [{ env: { ENGINE_RING_BYTES: '12' } }, /`ringBytes`: expected 4096/],
    [{ overrides: { logLevel: 'loud' } }, /`logLevel`: expected one of/],
    [{ overrides: { bogus: 1 } as never }, /`bogus`: unknown key/],
    [{ env: { ENGINE_TOKENS: '{not json' } }, /`tokens`: expected JSON/],
    [{ env: { ENGINE_TOKENS: '{"token":"0123456789abcdef"}' } }, /`tokens`: expected an array/],
    [{ env: { ENGINE_TOKENS: '[{"token":"0123456789abcdef","scopes":[]}]' } }, /`tokens\[0\]\.scopes`: expected a non-empty array/],
    [{ env: { ENGINE_TOKENS: '[{"token":"0123456789abcdef","scopes":["root"]}]' } }, /`tokens\[0\]\.scopes`: expected one of ingest, query, admin, got "root"/],
    [{ env: { ENGINE_TOKENS: '[{"token":"0123456789 abcdef","scopes":["query"]}]' } }, /`tokens\[0\]\.token`: expected visible ASCII/],
    [{ env: { ENGINE_TOKENS: '[{"token":"0123456789abcdef","scopes":["query"]},{"token":"0123456789abcdef","scopes":["admin"]}]' } }, /`tokens\[1\]\.token`: the same token/],
    [{ env: { ENGINE_ALLOW_UNAUTHENTICATED: 'yes' } }, /`allowUnauthenticated`: expected true or false/],
    [{ overrides: { corsOrigins: ['https://app.example.com/'] } }, /`corsOrigins\[0\]`: expected an exact origin/],
    [{ env: { ENGINE_CORS_ORIGINS: '*' } }, /`corsOrigins\[0\]`: expected an exact origin.*got "\*"/],
  ])('fails fast naming the key for %j', (opts, message) => {
    expect(() => loadConfig({ env: {}, argv: [], ...opts })).toThrow(message);
  });
});
