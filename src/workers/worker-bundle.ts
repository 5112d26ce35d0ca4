/**
 * A worker entry as one plain ES module, so the worker needs no loader hooks.
 *
 * Why: on Node 20 a worker does not inherit tsx's hooks, so `boot.mjs` registers tsx in every
 * worker, and each registration runs its hooks on a thread of its own: measured, a worker that
 * loads apache-arrow took 47 MB of RSS that way against 21 MB as plain JavaScript. With one
 * worker per shard that is a quarter of the idle engine. So the shard worker's module graph is
 * bundled once per process with esbuild (the transformer tsx itself uses; ~50 ms) into
 * `<root>/.cache/workers/<name>.<hash>.mjs`, content-addressed and written atomically, so
 * engines started side by side share it and a changed source gets a new file. Packages stay
 * external (resolved from the project's node_modules), and the bundle sits two directories
 * below the root, as every `src/<dir>/` module does, so paths they build from
 * `import.meta.url` (`../../config`, `../../python`) resolve the same.
 *
 * If bundling fails (esbuild missing, a syntax error), the caller falls back to `boot.mjs`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CACHE_DIR = join(ROOT, '.cache', 'workers');

interface EsbuildOutput {
  outputFiles: Array<{ contents: Uint8Array }>;
}
interface Esbuild {
  buildSync: (options: Record<string, unknown>) => EsbuildOutput;
  /** ends the service process the JS API keeps (17 MB of RSS otherwise) */
  stop: () => void;
}

const built = new Map<string, URL | null>();

/**
 * The bundled module of a TypeScript worker entry (`src/...` relative to the root), or null when
 * it cannot be bundled (then start the worker through `boot.mjs`). Built once per process.
 */
export function bundledWorker(entryFromRoot: string): URL | null {
  if (built.has(entryFromRoot)) return built.get(entryFromRoot)!;
  let url: URL | null = null;
  try {
    const esbuild = createRequire(import.meta.url)('esbuild') as Esbuild;
    const out = esbuild.buildSync({
      entryPoints: [join(ROOT, entryFromRoot)],
      bundle: true,
      packages: 'external',
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      outdir: CACHE_DIR,
      logLevel: 'silent',
    });
    esbuild.stop();
    const code = out.outputFiles[0]!.contents;
    const name = entryFromRoot.replace(/^.*\//, '').replace(/\.ts$/, '');
    const file = join(CACHE_DIR, `${name}.${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
    if (!existsSync(file)) {
      mkdirSync(CACHE_DIR, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, code);
      renameSync(tmp, file);
    }
    url = pathToFileURL(file);
  } catch {
    url = null;
  }
  built.set(entryFromRoot, url);
  return url;
}
