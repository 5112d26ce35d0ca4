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
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { DataDirError } from './data-dir.js';

export const LOCK_FILE = 'engine.lock';
/**
 * An empty or unreadable lock younger than this is taken for one being written (on a filesystem
 * without hard links a lock is created, then written) and waited for; older, for one torn by a
 * crash, so stale.
 */
export const TORN_LOCK_GRACE_MS = 2000;

/** link() errors of a filesystem that has no hard links (vfat, some network and FUSE mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * `content` appears as `file` unless `file` exists (EEXIST): `source` (a file holding `content`)
 * hard-linked, so it appears whole; on a filesystem without hard links created exclusively and
 * then written, so a reader can find it empty for a moment (TORN_LOCK_GRACE_MS).
 */
function placeExclusive(source: string, content: string, file: string): void {
  try {
    linkSync(source, file);
  } catch (err) {
    if (!NO_HARD_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    writeFileSync(file, content, { flag: 'wx', mode: 0o644 });
  }
}

function ageMs(file: string): number | null {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

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

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function parseHolder(text: string | null): Holder | null {
  try {
    const h = JSON.parse(text ?? '') as Partial<Holder>;
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
  const mine = `${JSON.stringify(me)}\n`;
  // The lock appears whole or not at all: written to a file of this process's own, then linked
  // as the lock (a link fails if the lock exists). Created empty and then written, another engine
  // starting at the same moment read it empty, took it for a torn stale lock, and both ran.
  // Without hard links it is created and written after all, and an empty or torn lock is waited
  // for until it is TORN_LOCK_GRACE_MS old.
  const draft = `${file}.${process.pid}.tmp`;
  for (let attempt = 0; attempt < 5; attempt++) {
    writeFileSync(draft, mine, { mode: 0o644 });
    try {
      placeExclusive(draft, mine, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const seen = readText(file);
      const holder = parseHolder(seen);
      if (holder && holds(holder)) {
        rmSync(draft, { force: true });
        const where = holder.host === me.host ? `pid ${holder.pid}` : `pid ${holder.pid} on ${holder.host}`;
        throw new DataDirError(
          `data dir ${resolve(dataDir)} is in use by another engine (${where}, started ${holder.startedAt}): stop it first; if no engine uses it, delete ${resolve(file)}`,
        );
      }
      if (seen === null) continue; // gone meanwhile: try again
      const age = holder ? null : ageMs(file);
      if (age !== null && age < TORN_LOCK_GRACE_MS) {
        // empty or torn, and young: another engine may be writing it
        sleepSync(Math.min(20, TORN_LOCK_GRACE_MS - age + 1));
        attempt--;
        continue;
      }
      onStale(holder);
      // Set aside what is there now, and make sure it is the stale lock just read: an engine
      // that took the stale lock over between the read and the rename has put its own there,
      // which goes back (unless yet another lock appeared) and is found live next time.
      const aside = `${file}.stale-${process.pid}`;
      try {
        renameSync(file, aside);
      } catch {
        continue; // another engine set it aside first
      }
      const moved = readText(aside);
      if (moved !== seen && moved !== null) {
        try {
          placeExclusive(aside, moved, file);
        } catch {
          // a third engine's lock is there: it is found next time
        }
      }
      rmSync(aside, { force: true });
      continue;
    } finally {
      rmSync(draft, { force: true });
    }
    let held = true;
    return {
      file,
      release() {
        if (!held) return;
        held = false;
        if (readText(file) === mine) rmSync(file, { force: true });
      },
    };
  }
  throw new DataDirError(`could not take ${resolve(file)}: it kept coming back (another engine starting on this data dir?)`);
}
