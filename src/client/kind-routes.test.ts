/**
 * The client has a method for every query kind the engine serves, on the same route: a kind added
 * to src/kinds/registry.ts without a client method (or moved to another path) fails here.
 */
import { describe, expect, it } from 'vitest';
import { KINDS } from '../kinds/registry.js';
import { ShardlyticsClient } from './client.js';
import { KIND_ROUTES } from './kind-routes.js';

describe('client kind table', () => {
  it('lists exactly the engine’s query kinds, with their methods and paths', () => {
    const engine = Object.fromEntries(KINDS.map((k) => [k.name, { method: k.method, path: k.path }]));
    const client = Object.fromEntries(Object.entries(KIND_ROUTES).map(([name, r]) => [name, { method: r.method, path: r.path }]));
    expect(client).toEqual(engine);
  });

  it('has a client method for each kind', () => {
    for (const [name, route] of Object.entries(KIND_ROUTES)) {
      expect(typeof ShardlyticsClient.prototype[route.clientMethod], `${name} → ${route.clientMethod}`).toBe('function');
    }
  });
});
