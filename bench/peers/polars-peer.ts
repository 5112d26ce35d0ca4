/**
 * The plain-polars peer's node side: spawns bench/peers/polars_peer.py in the project's .venv
 * (all threads: POLARS_MAX_THREADS is removed from its environment) and speaks its protocol,
 * a JSON header line then `bytes` bytes of JSON, one request at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../bench-util.js';

export interface PolarsReply {
  ok: boolean;
  /** Time the polars process spent on the request (compute and JSON encoding). */
  ms: number;
  error?: string;
  payload: Buffer;
}

export interface PolarsLoadInfo {
  rows: number;
  load_ms: number;
  parquet_ms: number | null;
  threads: number;
  polars: string;
}

export class PolarsPeer {
  private readonly child: ChildProcess;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private waiting: { resolve: (reply: PolarsReply) => void; reject: (err: Error) => void } | null = null;
  private header: { ok: boolean; ms: number; bytes: number; error?: string } | null = null;
  private nextId = 1;
  private readonly exited: Promise<number | null>;

  constructor() {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.POLARS_MAX_THREADS;
    this.child = spawn(join(ROOT, '.venv', 'bin', 'python'), ['-u', join(ROOT, 'bench', 'peers', 'polars_peer.py')], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    void this.exited.then((code) => {
      this.waiting?.reject(new Error(`the polars peer exited with ${code} while a request was in flight`));
      this.waiting = null;
    });
    this.child.stdout!.on('data', (chunk: Buffer) => {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      this.drain();
    });
  }

  /** Parses as many complete replies as the buffered bytes hold (at most one is ever pending). */
  private drain(): void {
    for (;;) {
      if (!this.header) {
        const all = Buffer.concat(this.buffered);
        const nl = all.indexOf(0x0a);
        if (nl < 0) {
          this.buffered = [all];
          return;
        }
        this.header = JSON.parse(all.subarray(0, nl).toString('utf8')) as { ok: boolean; ms: number; bytes: number; error?: string };
        this.buffered = [all.subarray(nl + 1)];
        this.bufferedBytes = all.length - nl - 1;
      }
      const need = this.header.bytes + 1; // payload and its newline
      if (this.bufferedBytes < need) return;
      const all = Buffer.concat(this.buffered);
      const reply: PolarsReply = { ok: this.header.ok, ms: this.header.ms, payload: all.subarray(0, this.header.bytes), ...(this.header.error ? { error: this.header.error } : {}) };
      this.buffered = [all.subarray(need)];
      this.bufferedBytes = all.length - need;
      this.header = null;
      const w = this.waiting;
      this.waiting = null;
      w?.resolve(reply);
    }
  }

  private request(body: Record<string, unknown>): Promise<PolarsReply> {
    if (this.waiting) throw new Error('the polars peer takes one request at a time');
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.child.stdin!.write(JSON.stringify({ id: this.nextId++, ...body }) + '\n');
    });
  }

  /** Loads the Arrow IPC file; with `parquet`, also writes the events there for DuckDB. */
  async load(ipc: string, parquet: string | null): Promise<PolarsLoadInfo> {
    const r = await this.request({ op: 'load', ipc, parquet });
    if (!r.ok) throw new Error(`polars peer: load failed: ${r.error}`);
    return JSON.parse(r.payload.toString('utf8')) as PolarsLoadInfo;
  }

  /** Runs one query by name (`Q1` … `Q7`, bench/peers/polars_peer.py's QUERIES). */
  async query(name: string): Promise<PolarsReply> {
    const r = await this.request({ op: 'query', query: name });
    if (!r.ok) throw new Error(`polars peer: ${name} failed: ${r.error}`);
    return r;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.stdin!.write(JSON.stringify({ id: 0, op: 'exit' }) + '\n');
      this.child.stdin!.end();
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}
