/**
 * Worker side: one long-lived Python polars process (`python -m engine_polars`), spoken to over
 * stdin/stdout frames (sidecar-protocol.ts). Requests are answered in order; each has a timeout,
 * and if the process dies every pending request is rejected at once, so nothing hangs.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameReader, encodeFrame, type SidecarOp } from './sidecar-protocol.js';
import { ShardError, polarsDied, polarsTimeout, type ShardErrorCode } from './shard-errors.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PYTHON_BIN = process.env.ENGINE_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');
const PYTHON_PATH = join(ROOT, 'python');

/** Sidecar error codes kept as they are (the rest become POLARS_ERROR): the router maps them. */
const PASSED_THROUGH = new Set(['BAD_PLAN', 'CUSTOM_BAD_PARAMS', 'CUSTOM_FAILED', 'CUSTOM_BAD_RESULT']);

export interface PolarsReply {
  header: Record<string, unknown>;
  body: Uint8Array;
}

interface Pending {
  op: SidecarOp;
  resolve: (r: PolarsReply) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface PolarsProcessOptions {
  shard: number;
  timeoutMs: number;
  onExit: (error: ShardError) => void;
  onStderr: (line: string) => void;
}

export class PolarsProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly reader = new FrameReader();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exited: ShardError | null = null;
  private stopping = false;

  constructor(private readonly options: PolarsProcessOptions) {
    this.child = spawn(PYTHON_BIN, ['-m', 'engine_polars'], {
      env: { ...process.env, POLARS_MAX_THREADS: '1', PYTHONPATH: PYTHON_PATH, PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    let errTail = '';
    this.child.stderr.on('data', (chunk: Buffer) => {
      const lines = (errTail + chunk.toString('utf8')).split('\n');
      errTail = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.options.onStderr(line);
    });
    this.child.on('error', (err) => this.fail(`spawn failed: ${err.message}`));
    this.child.on('close', (code, signal) => this.fail(signal ? `signal ${signal}` : `code ${code}`));
    // A write to a dead process raises EPIPE on stdin; the exit handler reports it.
    this.child.stdin.on('error', () => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return this.exited === null;
  }

  request(op: SidecarOp, plan?: unknown, body?: Uint8Array, timeoutMs = this.options.timeoutMs): Promise<PolarsReply> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<PolarsReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(polarsTimeout(this.options.shard, op, timeoutMs));
      }, timeoutMs);
      this.pending.set(id, { op, resolve, reject, timer });
      // query_many carries a list of plans under `plans`; every other op at most one `plan`.
      const header = op === 'query_many' ? { id, op, plans: plan } : plan === undefined ? { id, op } : { id, op, plan };
      this.child.stdin.write(encodeFrame(header, body));
    });
  }

  /** Asks the process to exit after answering everything sent before; resolves with its reply. */
  async shutdown(timeoutMs: number): Promise<PolarsReply | null> {
    if (this.exited) return null;
    this.stopping = true;
    const exitedPromise = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    try {
      const reply = await this.request('shutdown', undefined, undefined, timeoutMs);
      await exitedPromise;
      return reply;
    } catch (err) {
      this.kill();
      throw err;
    }
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.fail(`unreadable frame: ${(err as Error).message}`);
      this.kill();
      return;
    }
    for (const frame of frames) {
      let id = Number(frame.header.id);
      // id 0 is the process saying it could not read a request's id (BAD_FRAME): requests are
      // answered in order, so it belongs to the oldest one still waiting.
      if (id === 0 && this.pending.size > 0) id = this.pending.keys().next().value!;
      const pending = this.pending.get(id);
      if (!pending) continue; // answered after its timeout: already rejected
      this.pending.delete(id);
      clearTimeout(pending.timer);
      if (frame.header.ok === true) {
        pending.resolve(frame);
      } else {
        const code = String(frame.header.code ?? 'INTERNAL');
        const message = String(frame.header.message ?? 'polars error');
        const kept = PASSED_THROUGH.has(code) ? (code as ShardErrorCode) : 'POLARS_ERROR';
        pending.reject(new ShardError(kept, `shard ${this.options.shard}: ${code}: ${message}`));
      }
    }
  }

  private fail(detail: string): void {
    if (this.exited) return;
    this.exited = polarsDied(this.options.shard, detail);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.exited);
    }
    this.pending.clear();
    if (!this.stopping) this.options.onExit(this.exited);
  }
}
