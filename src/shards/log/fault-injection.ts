/**
 * TEST ONLY: makes the file log's writes and syncs fail as a full or broken disk would, so tests
 * can check what ingest answers and what is kept when the log cannot take events.
 *
 * Off unless the environment variable `SHARDLYTICS_TEST_LOG_FAULTS` names a file. While that
 * file exists, every log operation it lists fails with its errno; deleting it is "the disk has
 * room again". Its content (JSON, every field optional):
 *
 *   {"errno": "ENOSPC" | "EIO" | ..., "shards": [1], "ops": ["append", "sync", "probe"], "delayMs": 2000}
 *
 * (default: every shard, every op, errno ENOSPC unless only `delayMs` is given). `delayMs` blocks
 * the shard's thread that long first, as a slow disk does, then fails with `errno` if one is
 * given. Never set it in production: it costs a `readFileSync` per log write.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export const LOG_FAULTS_ENV = 'SHARDLYTICS_TEST_LOG_FAULTS';

export type LogOp = 'append' | 'sync' | 'probe';

const MESSAGES: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EIO: 'i/o error',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
};

/** The file that arms the faults, read once per process (workers get the parent's environment). */
const armedBy = process.env[LOG_FAULTS_ENV] || null;

/**
 * Throws the armed fault for `op` on the log in `dir` (a `shard-<i>` directory), like fs would:
 * an Error with `code`, `errno` and `syscall`. Does nothing when no fault is armed.
 */
export function injectLogFault(op: LogOp, dir: string): void {
  if (armedBy === null) return;
  let text: string;
  try {
    text = readFileSync(armedBy, 'utf8');
  } catch {
    return; // no file: the disk is fine
  }
  let spec: { errno?: string; shards?: number[]; ops?: LogOp[]; delayMs?: number } = {};
  try {
    spec = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    // a half-written spec file: take the defaults
  }
  const shard = Number(/^shard-(\d+)$/.exec(basename(dir))?.[1] ?? -1);
  if (spec.shards && !spec.shards.includes(shard)) return;
  if (spec.ops && !spec.ops.includes(op)) return;
  if (spec.delayMs !== undefined) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, spec.delayMs);
    if (spec.errno === undefined) return;
  }
  const code = spec.errno ?? 'ENOSPC';
  const syscall = op === 'sync' ? 'fdatasync' : 'write';
  const err = new Error(`${code}: ${MESSAGES[code] ?? 'injected fault'}, ${syscall} (injected by ${LOG_FAULTS_ENV})`) as NodeJS.ErrnoException;
  err.code = code;
  err.syscall = syscall;
  throw err;
}
