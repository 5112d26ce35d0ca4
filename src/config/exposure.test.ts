import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { checkExposure, isLoopbackHost } from './exposure.js';
import { loadConfig } from './load.js';

const TOKENS = JSON.stringify([{ token: 'an-operator-token-42', scopes: ['query'] }]);

describe('serving without tokens', () => {
  it.each(['127.0.0.1', '127.3.2.1', 'localhost', 'LOCALHOST', 'api.localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])('takes %s for loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '[::]', '10.0.0.5', '192.168.1.10', '128.0.0.1', '::ffff:10.0.0.1', 'example.com', 'localhost.example.com'])('takes %s for reachable from elsewhere', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });

  it('refuses 0.0.0.0 without tokens, naming host, tokens and allowUnauthenticated', () => {
    expect(() => checkExposure({ host: '0.0.0.0', tokens: [], allowUnauthenticated: false })).toThrow(
      /invalid config `host`: "0\.0\.0\.0" is not a loopback address and no `tokens` are configured.*`allowUnauthenticated`/,
    );
  });

  it('refuses config/production.json (host 0.0.0.0) without tokens, as `npm start -- --env production` does', () => {
    expect(() => loadConfig({ env: {}, argv: ['--env', 'production'] })).toThrow(/`host`.*`tokens`.*`allowUnauthenticated`/);
  });

  it('serves 0.0.0.0 with tokens, or with allowUnauthenticated: true', () => {
    expect(loadConfig({ env: { ENGINE_TOKENS: TOKENS }, argv: ['--host', '0.0.0.0'] }).host).toBe('0.0.0.0');
    expect(loadConfig({ env: { ENGINE_ALLOW_UNAUTHENTICATED: 'true' }, argv: ['--env', 'production'] }).allowUnauthenticated).toBe(true);
  });

  it('serves loopback without tokens', () => {
    expect(loadConfig({ env: {}, argv: ['--host', '::1'] }).tokens).toEqual([]);
  });

  it('makes `src/main.ts --env production` exit 2 with that message before starting anything', () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ENGINE_')));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--env', 'production'], { cwd: join(import.meta.dirname, '..', '..'), env, encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/invalid config `host`: "0\.0\.0\.0" is not a loopback address and no `tokens` are configured/);
    expect(run.stderr).toContain('`allowUnauthenticated`');
  });
});
