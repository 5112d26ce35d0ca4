// npm postinstall: create .venv and install python/requirements.txt into it.
// Idempotent: skips pip when the installed set already matches the requirements file.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const venv = join(root, '.venv');
const python = join(venv, 'bin', 'python');
const requirements = join(root, 'python', 'requirements.txt');
const stamp = join(venv, '.requirements-installed');
const wanted = readFileSync(requirements, 'utf8');

function run(cmd, args) {
  console.log(`[setup-python] ${cmd} ${args.join(' ')}`);
  execFileSync(cmd, args, { stdio: 'inherit', cwd: root });
}

if (process.env.SKIP_PYTHON_SETUP === '1') {
  console.log('[setup-python] SKIP_PYTHON_SETUP=1, skipping');
  process.exit(0);
}
if (!existsSync(python)) {
  const base = process.env.PYTHON ?? 'python3';
  run(base, ['-m', 'venv', venv]);
}
if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) {
  console.log('[setup-python] .venv is up to date');
} else {
  // --retries 0: on machines without the public index, pip otherwise spends a minute
  // retrying it before falling back to the configured local mirror.
  run(python, ['-m', 'pip', 'install', '--retries', '0', '--timeout', '15', '-r', requirements]);
  writeFileSync(stamp, wanted);
}
execFileSync(python, ['-c', 'import polars, pyarrow; print("[setup-python] polars", polars.__version__, "pyarrow", pyarrow.__version__)'], { stdio: 'inherit' });
