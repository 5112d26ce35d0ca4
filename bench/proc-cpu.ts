/**
 * CPU time of a running engine from /proc (Linux): its main (HTTP) thread, its other threads
 * (shard workers, merge pool, V8 and libuv helpers) and its polars child processes, so a bench
 * can say where the time per event went. CPU time, not wall time: a busy shared box inflates
 * wall-clock numbers, far less these.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface CpuSplit {
  /** the engine's main thread: HTTP, validation, routing, ring writes */
  main: number;
  /** every other thread of the node process: shard workers (drain, seal, log), merge pool, GC and libuv helpers */
  otherThreads: number;
  /** the polars processes */
  polars: number;
  /** kernel time included in the three above */
  system: number;
}

const TICK = 100; // USER_HZ

function times(path: string): { user: number; system: number } | null {
  try {
    const stat = readFileSync(path, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / TICK, system: Number(f[12]) / TICK };
  } catch {
    return null;
  }
}

/** CPU seconds used so far by `pid` (a node engine) and its polars children. */
export function engineCpu(pid: number): CpuSplit {
  const out: CpuSplit = { main: 0, otherThreads: 0, polars: 0, system: 0 };
  const children: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const t = times(`/proc/${pid}/task/${tid}/stat`);
    if (!t) continue;
    if (Number(tid) === pid) out.main += t.user + t.system;
    else out.otherThreads += t.user + t.system;
    out.system += t.system;
    try {
      children.push(...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // thread gone
    }
  }
  for (const child of children) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${child}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmd.includes('engine_polars')) continue;
    const t = times(`/proc/${child}/stat`);
    if (!t) continue;
    out.polars += t.user + t.system;
    out.system += t.system;
  }
  return out;
}

export function cpuSince(before: CpuSplit, after: CpuSplit): CpuSplit {
  return { main: after.main - before.main, otherThreads: after.otherThreads - before.otherThreads, polars: after.polars - before.polars, system: after.system - before.system };
}
