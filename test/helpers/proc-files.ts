/**
 * What /proc says about processes and file locks (Linux): a process's children, the segment
 * directories' LOCK files under a data dir, and which files some process holds a lock on now.
 * A pid that looks gone is not enough: a process whose main thread is a zombie can still have
 * threads holding a flock, so tests that need the lock free wait on /proc/locks.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The process ids whose parent is `pid`, from /proc. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every file named LOCK under `root`: the polars processes' segment directory locks (flock). */
export function segmentLocks(root: string): string[] {
  return (readdirSync(root, { recursive: true }) as string[]).filter((p) => p.split('/').pop() === 'LOCK').map((p) => join(root, p));
}

/** The files of `paths` that some process holds a lock on now, from /proc/locks (dev and inode). */
export function lockedNow(paths: string[]): string[] {
  const held = new Set(
    readFileSync('/proc/locks', 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => l.trim().split(/\s+/).find((f) => /^[0-9a-f]+:[0-9a-f]+:\d+$/.test(f))!)
      .map((f) => {
        const [maj, min, ino] = f.split(':');
        return `${parseInt(maj!, 16)}:${parseInt(min!, 16)}:${ino}`;
      }),
  );
  return paths.filter((p) => {
    const { dev, ino } = statSync(p);
    return held.has(`${(dev >> 8) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}:${ino}`);
  });
}
