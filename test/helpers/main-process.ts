/**
 * The real entry point in a child process: `node --import tsx src/main.ts` or `npm start`, on
 * ephemeral ports, with its JSON log lines collected and its "engine listening" line awaited.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitReady } from './shard-probes.js';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface MainProcess {
  /** The spawned process: the engine itself, or npm when started through `npm start`. */
  child: ChildProcess;
  /** The engine's own pid, from its log line (differs from child.pid under npm). */
  enginePid: number;
  logs: Array<Record<string, any>>;
  ingestUrl: string;
  queryUrl: string;
  exited: Promise<number | null>;
}

/**
 * Starts the engine with `args` after `--ingest-port 0 --query-port 0`. Without a `--data-dir`
 * in `args` it gets a fresh temporary one (removed when it exits), so no test replays another's log.
 * `nodeArgs` go to node after `--import tsx` (not under npm).
 */
export async function startMain(args: string[], opts: { npm?: boolean; env?: NodeJS.ProcessEnv; nodeArgs?: string[] } = {}): Promise<MainProcess> {
  const ownDir = args.includes('--data-dir') ? null : mkdtempSync(join(tmpdir(), 'engine-main-'));
  const engineArgs = ['--ingest-port', '0', '--query-port', '0', ...(ownDir ? ['--data-dir', ownDir] : []), ...args];
  const [cmd, argv] = opts.npm ? ['npm', ['start', '--', ...engineArgs]] : [process.execPath, ['--import', 'tsx', ...(opts.nodeArgs ?? []), 'src/main.ts', ...engineArgs]];
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ENGINE_LOG_LEVEL: 'info', ...opts.env } });
  const logs: Array<Record<string, any>> = [];
  let tail = '';
  let onListen!: (l: Record<string, any>) => void;
  const listening = new Promise<Record<string, any>>((resolve) => (onListen = resolve));
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (tail + chunk.toString()).split('\n');
    tail = lines.pop()!;
    for (const line of lines) {
      try {
        const entry = JSON.parse(line) as Record<string, any>;
        logs.push(entry);
        if (entry.msg === 'engine listening') onListen(entry);
      } catch {
        // npm's banner, not a log line
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
      resolve(code);
    }),
  );
  const early = (code: number | null) => {
    const last = logs.filter((l) => l.level >= 40).slice(-3).map((l) => JSON.stringify(l)).join('\n');
    return Promise.reject(new Error(`engine exited early with ${code}: ${last}\n${stderr}`));
  };
  const entry = await Promise.race([listening, exited.then(early)]);
  return { child, enginePid: entry.pid as number, logs, ingestUrl: entry.ingestUrl, queryUrl: entry.queryUrl, exited };
}

/** Whether `pid` is a running process (a zombie, exited but not yet reaped, counts as gone). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * kill -9 of `main`'s engine, then the engine started again with `args` (the same data dir) and
 * ready. `running`, the test's list of processes to stop at the end, is kept current.
 */
export async function killAndRestart(main: MainProcess, args: string[], running: MainProcess[]): Promise<MainProcess> {
  process.kill(main.enginePid, 'SIGKILL');
  await main.exited;
  running.splice(running.indexOf(main), 1);
  const next = await startMain(args);
  running.push(next);
  await waitReady(next.queryUrl);
  return next;
}
