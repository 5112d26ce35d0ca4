/**
 * The project's root directory, found by walking up from this module to the `package.json` named
 * `shardlytics`. Every file the engine reads at run time (config/, python/, the page's assets, the
 * worker entries) is named from here, so a module reads the same files whether it runs from its
 * source under `src/` (tsx, vitest) or from a bundle under `.cache/` (`npm start`, the workers).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'shardlytics') return dir;
    if (dirname(dir) === dir) throw new Error(`no shardlytics package.json above ${from}`);
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A path below the project root, e.g. `fromRoot('config', 'limits.json')`. */
export const fromRoot = (...parts: string[]): string => join(ROOT, ...parts);
