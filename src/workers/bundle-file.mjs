// Bundles one TypeScript entry (or generated source) into a plain ES module under
// `<root>/.cache/<dir>/`, content-addressed and written atomically, so processes started side
// by side share it and a changed source gets a new file. Packages stay external (resolved from
// the project's node_modules). Plain JavaScript because `npm start` (scripts/start.mjs) calls it
// before anything can load TypeScript; src/workers/worker-bundle.ts calls it for the workers.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
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
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, code);
    renameSync(tmp, file);
  }
  return pathToFileURL(file);
}
