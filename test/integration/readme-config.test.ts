/** README.md's configuration table documents every config key with its default, env var and flag. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_KEYS, envName, flagName } from '../../src/config/schema.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('README configuration table', () => {
  it('has one row per config key naming its env var and flag, with the default from config/default.json', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const defaults = JSON.parse(readFileSync(join(ROOT, 'config', 'default.json'), 'utf8')) as Record<string, unknown>;
    const rows = new Map([...readme.matchAll(/^\| `(\w+)` \| ([^|]+) \| `(ENGINE_\w+)` \/ `(--[\w-]+)` \| ([^|]+) \|$/gm)].map((m) => [m[1]!, m]));
    expect([...rows.keys()].sort()).toEqual(Object.keys(CONFIG_KEYS).sort());
    for (const key of Object.keys(CONFIG_KEYS)) {
      const [, , shownDefault, env, flag, meaning] = rows.get(key)!;
      expect(env, key).toBe(envName(key));
      expect(flag, key).toBe(flagName(key));
      expect(shownDefault, key).toContain(String(defaults[key]));
      expect(meaning!.trim().length, key).toBeGreaterThan(5);
    }
  });
});
