/**
 * One engine per data dir: `dataDir/engine.lock`, created exclusively at start and removed at stop.
 *
 * Two engines on one data dir would append to the same shard logs and re-partition or clean
 * the same layouts under each other (the polars processes lock their segment directories, but
 * only once they start, after the logs are open). So the engine takes this lock before it reads
 * anything in the data dir. The file names its holder: pid, the process's start time (from
 * /proc, so a pid reused by another process after a crash is not taken for the holder), host and
 * when it started. A lock whose holder is gone (`kill -9`, power loss) is stale and taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { DataDirError } from './data-dir.js';

export const LOCK_FILE = 'engine.lock';

interface Holder {
  pid: number;
  /** the holder's start time in clock ticks since boot (/proc/<pid>/stat field 22); null off Linux */
  pidStart: string | null;
  host: string;
  startedAt: string;
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process the lock names still runs (on another host: assumed so). */
function holds(h: Holder): boolean {
  if (h.host !== hostname()) return true;
  if (!alive(h.pid)) return false;
  const start = processStart(h.pid);
  return h.pidStart === null || start === null || start === h.pidStart;
}

function readHolder(file: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? ({ pidStart: null, startedAt: '?', ...h } as Holder) : null;
  } catch {
    return null;
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Removes the lock (once; only while this process holds it). */
  release(): void;
}

/**
 * Takes `dataDir`'s lock, creating the directory if needed. Throws a DataDirError naming the
 * holder when a live engine holds it; takes over a stale one (saying so through `onStale`).
 */
export function lockDataDir(dataDir: string, onStale: (holder: Holder | null) => void = () => undefined): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, LOCK_FILE);
  const me: Holder = { pid: process.pid, pidStart: processStart(process.pid), host: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readHolder(file);
      if (holder && holds(holder)) {
        const where = holder.host === me.host ? `pid ${holder.pid}` : `pid ${holder.pid} on ${holder.host}`;
        throw new DataDirError(
          `data dir ${resolve(dataDir)} is in use by another engine (${where}, started ${holder.startedAt}): stop it first; if no engine uses it, delete ${resolve(file)}`,
        );
      }
      // Stale (its holder is gone, or it was never written whole): moved aside under a name of
      // our own, so of two engines taking it over at once only one removes it; then try again.
      onStale(holder);
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
        rmSync(aside, { force: true });
      } catch {
        // someone else moved it first
      }
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify(me)}\n`);
    } finally {
      closeSync(fd);
    }
    let held = true;
    return {
      file,
      release() {
        if (!held) return;
        held = false;
        const now = readHolder(file);
        if (now && now.pid === me.pid && now.pidStart === me.pidStart && now.startedAt === me.startedAt) rmSync(file, { force: true });
      },
    };
  }
  throw new DataDirError(`could not take ${resolve(file)}: it kept coming back (another engine starting on this data dir?)`);
}
