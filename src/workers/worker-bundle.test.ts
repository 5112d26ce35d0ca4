/** The shard worker bundled into one plain ES module: built once, content-addressed, loadable. */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundledWorker } from './worker-bundle.js';

describe('bundledWorker', () => {
  it('bundles the shard worker once into a content-addressed .mjs with packages left external', () => {
    const url = bundledWorker('src/shards/shard-worker.ts');
    expect(url).not.toBeNull();
    const file = fileURLToPath(url!);
    expect(file).toMatch(/\/\.cache\/workers\/shard-worker\.[0-9a-f]{16}\.mjs$/);
    expect(existsSync(file)).toBe(true);
    const code = readFileSync(file, 'utf8');
    expect(code).toContain('from "apache-arrow"');
    expect(code).not.toContain('from "./');
    expect(bundledWorker('src/shards/shard-worker.ts')).toBe(url);
  });

  it('answers null for an entry that cannot be bundled, so the caller falls back to boot.mjs', () => {
    expect(bundledWorker('src/shards/no-such-worker.ts')).toBeNull();
  });
});
