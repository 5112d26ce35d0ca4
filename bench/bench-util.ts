/** Shared bench helpers: child-process servers, autocannon runs, tables and JSON output. */
import autocannon from 'autocannon';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');

export interface ChildServer {
  child: ChildProcess;
  lines: Array<Record<string, any>>;
  stop: () => Promise<number | null>;
}

/**
 * How `npm start` runs the engine (package.json: `VAR=value … exec node <flags> scripts/start.mjs`):
 * the variables it sets and the flags it gives node (V8's heap sizes).
 */
function npmStart(): { env: Record<string, string>; nodeFlags: string[] } {
  const script = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const [vars, command] = script.split(' exec ');
  const env = Object.fromEntries([...vars!.matchAll(/(?:^|\s)([A-Z_]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  const nodeFlags = (command ?? '').split(/\s+/).filter((w) => w.startsWith('--'));
  return { env, nodeFlags };
}

/**
 * Spawns `<script> ...args` and resolves when a stdout JSON line matches: the engine
 * (`src/main.ts`) as `npm start` runs it, anything else through `node --import tsx`.
 */
export async function spawnServer(script: string, args: string[], ready: (line: Record<string, any>) => boolean, env: NodeJS.ProcessEnv = {}): Promise<{ server: ChildServer; line: Record<string, any> }> {
  // The engine runs as `npm start` runs it (scripts/start.mjs: bundled, no tsx), so benches
  // measure its memory and speed as users get them; other scripts (baselines) through tsx.
  const engine = script === join(ROOT, 'src/main.ts');
  const start = engine ? npmStart() : { env: {}, nodeFlags: [] };
  const entry = engine ? [...start.nodeFlags, join(ROOT, 'scripts/start.mjs')] : ['--import', 'tsx', script];
  const child = spawn(process.execPath, [...entry, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...start.env, ...env } });
  const lines: Array<Record<string, any>> = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let tail = '';
  const line = await new Promise<Record<string, any>>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      const parts = (tail + chunk.toString()).split('\n');
      tail = parts.pop()!;
      for (const p of parts) {
        try {
          const l = JSON.parse(p) as Record<string, any>;
          lines.push(l);
          if (ready(l)) resolve(l);
        } catch {
          // not JSON
        }
      }
    });
    void exited.then((code) => reject(new Error(`${script} exited with ${code} before it was ready`)));
  });
  return {
    line,
    server: {
      child,
      lines,
      stop: async () => {
        child.kill('SIGTERM');
        return exited;
      },
    },
  };
}

export interface LoadResult {
  requests: number;
  non2xx: number;
  errors: number;
  durationS: number;
  latencyP50: number;
  latencyP99: number;
}

export async function runLoad(url: string, bodies: Array<string | Buffer>, opts: { connections: number; duration: number; path: string; contentType?: string }): Promise<LoadResult> {
  const contentType = opts.contentType ?? 'application/json';
  const result = await autocannon({
    url: url + opts.path,
    connections: opts.connections,
    duration: opts.duration,
    requests: bodies.map((body) => ({ method: 'POST', path: opts.path, body, headers: { 'content-type': contentType } })),
  });
  return {
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    durationS: result.duration,
    latencyP50: result.latency.p50,
    latencyP99: result.latency.p99,
  };
}

export function parseArgs(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out[a.slice(2, eq)] = a.slice(eq + 1);
    else if (argv[i + 1] && !argv[i + 1]!.startsWith('--')) out[a.slice(2)] = argv[++i]!;
    else out[a.slice(2)] = true;
  }
  return out;
}

export function printTable(rows: Array<Record<string, string | number>>): void {
  const cols = Object.keys(rows[0] ?? {});
  const fmt = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(2)) : v);
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(fmt(r[c]!)).length)));
  console.log(cols.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(cols.map((c, i) => String(fmt(r[c]!)).padEnd(widths[i]!)).join('  '));
}

export function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(data, null, 2));
  console.log(`wrote ${path}`);
}
