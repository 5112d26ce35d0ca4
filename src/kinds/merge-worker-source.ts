/**
 * The merge pool's worker as one bundle (worker-bundle.ts), without tsx in its thread. Merges are
 * found by file name (merge-def.ts), which a bundler cannot follow, so the bundle's entry is
 * generated: it imports every `src/merge/*.ts` whose default export is a `defineMerge(...)` and
 * registers them with the task before piscina calls it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fromRoot } from '../paths.js';
import { bundledWorker } from '../workers/worker-bundle.js';

const DEFINES_MERGE = /^export default defineMerge\(/m;

export function mergeWorkerSource(): string {
  const dir = fromRoot('src', 'merge');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .filter((f) => DEFINES_MERGE.test(readFileSync(`${dir}/${f}`, 'utf8')))
    .sort();
  return [
    "import task, { preload } from './merge-task.js';",
    ...files.map((f, i) => `import m${i} from './${f.replace(/\.ts$/, '.js')}';`),
    `preload([${files.map((_, i) => `m${i}`).join(', ')}]);`,
    'export default task;',
  ].join('\n');
}

/** The bundled merge worker, or null (then the pool starts its threads through boot.mjs). */
export function bundledMergeWorker(): URL | null {
  return bundledWorker('src/merge/merge-task.ts', mergeWorkerSource());
}
