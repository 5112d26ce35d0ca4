// Bundles one TypeScript entry (or generated source) into a plain ES module under
// `<root>/.cache/<dir>/`, content-addressed and written atomically, so processes started side
// by side share it and a changed source gets a new file. Packages stay external (resolved from
// the project's node_modules). Plain JavaScript because `npm start` (scripts/start.mjs) calls it
// before anything can load TypeScript; src/workers/worker-bundle.ts calls it for the workers.
// Every source change leaves a new file, so each call also deletes the bundles of the same name
// nobody has used for a day (a use touches its file, so a process between naming a bundle and
// importing it never finds it gone).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * @param {{ root: string, dir: string, name: string, entry?: string, stdin?: { contents: string, resolveDir: string } }} job
 * @returns {URL} the bundle's file URL
 */
export function bundleToCache(job) {
  const esbuild = join(dirname(createRequire(join(job.root, 'package.json')).resolve('esbuild/package.json')), 'bin', 'esbuild');
  // The command-line binary, run once and gone: the JS API keeps a service process per caller,
  // which stayed alive (12-15 MB of RSS each) or as a zombie after `stop()`.
  const flags = ['--bundle', '--packages=external', '--format=esm', '--platform=node', '--target=node20', '--keep-names', '--log-level=error', '--charset=utf8'];
  const code = job.stdin
    ? execFileSync(esbuild, [...flags, '--loader=ts', `--sourcefile=${job.name}.generated.ts`], { cwd: job.stdin.resolveDir, input: job.stdin.contents, maxBuffer: 256 * 1024 * 1024 })
    : execFileSync(esbuild, [...flags, job.entry], { cwd: job.root, maxBuffer: 256 * 1024 * 1024 });
  const dir = join(job.root, '.cache', job.dir);
  const file = join(dir, `${job.name}.${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`);
  if (existsSync(file)) {
    try {
      utimesSync(file, new Date(), new Date());
    } catch {
      // pruned by another process just now: written again below
    }
  }
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, file);
  }
  pruneStale(dir, job.name, file);
  return pathToFileURL(file);
}

/** A bundle (or a temporary file left by a killed writer) unused this long is deleted. */
export const STALE_BUNDLE_MS = 24 * 3600 * 1000;

/** Deletes `<name>.<hash>.mjs[.<pid>.tmp]` files in `dir`, other than `keep`, untouched for STALE_BUNDLE_MS. */
function pruneStale(dir, name, keep) {
  const pattern = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{16}\\.mjs(\\.\\d+\\.tmp)?$`);
  const before = Date.now() - STALE_BUNDLE_MS;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (path === keep || !pattern.test(entry)) continue;
    try {
      if (statSync(path).mtimeMs < before) unlinkSync(path);
    } catch {
      // gone already, or not ours to delete: the cache only grows
    }
  }
}
