// Runs the Python test suite with the project's virtualenv; warnings are errors.
import { spawnSync } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const python = join(root, '.venv', 'bin', 'python');
const result = spawnSync(python, ['-m', 'pytest', '-q', '-W', 'error', 'python/tests'], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, POLARS_MAX_THREADS: '1', PYTHONPATH: join(root, 'python') },
});
process.exit(result.status ?? 1);
