import { pathToFileURL } from 'node:url';
import { fromRoot } from '../paths.js';

/** Where a worker starts when it cannot be bundled: the tsx bootstrap, told which TypeScript entry to import. */
export const WORKER_BOOT_URL = pathToFileURL(fromRoot('src', 'workers', 'boot.mjs'));

/** The URL of a TypeScript worker entry named from the project root, e.g. `src/merge/merge-task.ts`. */
export function workerEntry(entryFromRoot: string): string {
  return pathToFileURL(fromRoot(entryFromRoot)).href;
}
