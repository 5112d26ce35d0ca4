// `npm start`: the engine as plain JavaScript, without a TypeScript loader at run time.
// src/main.ts and its modules are bundled once into `.cache/main/main.<hash>.mjs` (esbuild,
// packages external; ~0.2 s, reused while the sources are unchanged) and imported in this same
// process, so signals, the exit code and the parent watcher are the engine's own. Running through
// `node --import tsx` instead costs ~30 MB more RSS (tsx's loader thread and its esbuild service);
// `node --import tsx src/main.ts` still works the same for development.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleToCache } from '../src/workers/bundle-file.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let url;
try {
  url = bundleToCache({ root, dir: 'main', name: 'main', entry: join(root, 'src', 'main.ts') });
} catch (err) {
  process.stderr.write(`npm start: could not bundle src/main.ts: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
await import(url.href);
