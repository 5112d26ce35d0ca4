/**
 * A worker entry as one plain ES module, so the worker needs no loader hooks.
 *
 * Why: on Node 20 a worker does not inherit tsx's hooks, so `boot.mjs` registers tsx in every
 * worker, and each registration runs its hooks on a thread of its own: measured, a worker that
 * loads apache-arrow took 47 MB of RSS that way against 21 MB as plain JavaScript. With one
 * worker per shard that is a quarter of the idle engine. So each worker's module graph is
 * bundled once per process with esbuild (the transformer tsx itself uses; ~50 ms) into
 * `<root>/.cache/workers/<name>.<hash>.mjs` (bundle-file.mjs). Paths are named from the project
 * root (src/paths.ts), so the bundle reads the same files its sources would.
 *
 * If bundling fails (esbuild missing, a syntax error), the caller falls back to `boot.mjs`.
 */
import { dirname } from 'node:path';
import { ROOT, fromRoot } from '../paths.js';
import { bundleToCache } from './bundle-file.mjs';

const built = new Map<string, URL | null>();

/**
 * The bundled module of a TypeScript worker entry (`src/...` relative to the root), or null when
 * it cannot be bundled (then start the worker through `boot.mjs`). Built once per process.
 * `source`, when given, is generated TypeScript bundled in the entry's place (resolved from the
 * entry's directory), for an entry whose imports a bundler cannot follow by itself.
 */
export function bundledWorker(entryFromRoot: string, source?: string): URL | null {
  if (built.has(entryFromRoot)) return built.get(entryFromRoot)!;
  let url: URL | null = null;
  try {
    const entry = fromRoot(entryFromRoot);
    const name = entryFromRoot.replace(/^.*\//, '').replace(/\.ts$/, '');
    url = bundleToCache({ root: ROOT, dir: 'workers', name, ...(source === undefined ? { entry } : { stdin: { contents: source, resolveDir: dirname(entry) } }) });
  } catch {
    url = null;
  }
  built.set(entryFromRoot, url);
  return url;
}
