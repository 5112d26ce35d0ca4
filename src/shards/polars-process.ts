/**
 * Worker side: one Python polars process (`python -m engine_polars`), spoken to over
 * stdin/stdout frames (sidecar-protocol.ts). It answers requests one at a time, in order, but
 * for a `roll`: it writes the segment on a thread and answers it once that is durable, after
 * the frames it served meanwhile (answers are matched by `id`).
 *
 * Every request has a time limit, and a request that misses it gets the process killed
 * (SIGKILL): polars cannot cancel a running computation in-process (a background `collect`
 * ran to completion after `cancel()`), and an answer that never comes means the stream is no
 * use anyway. Two kinds of limit:
 * - `timeoutMs`, a busy-time limit, counted from when the request reaches the head of the queue
 *   (when the answer before it arrived), so a replay that queues many appends, or an append
 *   behind a long query, is not taken for a hang. Appends, enrichment ops, stats, ping.
 *   A roll waiting beside them is not the head: the request after it is.
 * - `deadline`, an absolute time by which the answer must be in, whether the request is still
 *   queued behind another or running: a query nobody waits for must not use the CPU later.
 *   Queries; a roll.
 * When the process exits, every request still waiting is rejected at once (POLARS_DIED, saying
 * why when we killed it), so nothing hangs. The owner (polars-supervisor.ts) restores it.
 */
import { setPriority } from 'node:os';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../paths.js';
import { FrameReader, encodeFrameHead, type SidecarOp } from './sidecar-protocol.js';
import { ShardError, planTooLarge, polarsDied, polarsTimeout, type ShardErrorCode } from './shard-errors.js';

export const PYTHON_BIN = process.env.ENGINE_PYTHON ?? join(ROOT, '.venv', 'bin', 'python');
const PYTHON_PATH = join(ROOT, 'python');

/**
 * glibc's thresholds for a polars process, over the 128 KiB mmap threshold `npm start` sets for
 * node: numpy's large arrays are reused by the next query, and the process gives its heap back
 * after 10 s without a request (why and what it measured: python/engine_polars/idle_trim.py).
 */
export const POLARS_MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: String(2 ** 30), MALLOC_TRIM_THRESHOLD_: String(2 ** 30) } as const;

/**
 * The polars side refuses a longer header (config/limits.json, read by both languages), so it is
 * never sent. `ENGINE_MAX_FRAME_HEADER_BYTES` (tests only) may lower it, never raise it, as on the
 * Python side.
 */
export const MAX_FRAME_HEADER_BYTES: number = Math.min(
  (JSON.parse(readFileSync(join(ROOT, 'config', 'limits.json'), 'utf8')) as { maxFrameHeaderBytes: number }).maxFrameHeaderBytes,
  Number(process.env.ENGINE_MAX_FRAME_HEADER_BYTES) || Infinity,
);

/** Sidecar error codes kept as they are (the rest become POLARS_ERROR): the router maps them. */
const PASSED_THROUGH = new Set<string>(['BAD_PLAN', 'RESULT_TOO_LARGE', 'CUSTOM_BAD_PARAMS', 'CUSTOM_FAILED', 'CUSTOM_BAD_RESULT']);

export interface PolarsReply {
  header: Record<string, unknown>;
  body: Uint8Array;
}

export interface PolarsRequestOptions {
  /** Busy-time limit, ms, from when the request reaches the head of the queue (default: the process's). */
  timeoutMs?: number;
  /** Absolute deadline on the `performance.now()` clock; replaces the busy-time limit. */
  deadline?: number;
  /** More header fields (an `append` carries `first_row`, the absolute index of its first row). */
  fields?: Record<string, unknown>;
}

interface Pending {
  op: SidecarOp;
  resolve: (r: PolarsReply) => void;
  reject: (e: Error) => void;
  timeoutMs: number | undefined;
  sentAt: number;
  deadline: number | undefined;
  deadlineTimer: NodeJS.Timeout | undefined;
}

export interface PolarsExit {
  error: ShardError;
  /** the op whose time limit ran out, when that is why we killed the process */
  timedOut: SidecarOp | null;
  /** how long the process lived, ms */
  livedMs: number;
}

export interface PolarsProcessOptions {
  shard: number;
  /** default busy-time limit, ms */
  timeoutMs: number;
  /** keep cached partials (python/engine_polars/partial_cache.py); absent: true */
  partialCache?: boolean;
  onExit: (exit: PolarsExit) => void;
  /** told at once when we kill the process (its exit is reported later, through onExit) */
  onKill?: (reason: string) => void;
  onStderr: (line: string) => void;
}

/** Niceness of the polars processes (0 = the engine's own); a lower priority only yields CPU. */
export const POLARS_NICE = 10;

function setPolarsPriority(pid: number): void {
  try {
    setPriority(pid, POLARS_NICE);
  } catch {
    // lowering a child's priority is always permitted; if the platform refuses, it runs at ours
  }
}

export class PolarsProcess {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly reader = new FrameReader();
  private readonly pending = new Map<number, Pending>();
  private readonly startedAt = performance.now();
  private nextId = 1;
  private headTimer: NodeJS.Timeout | undefined;
  private exited: ShardError | null = null;
  private killedFor: { reason: string; timedOut: SidecarOp | null } | null = null;
  private stopping = false;
  /** resolves when the process has exited and its pipes are closed */
  readonly closed: Promise<void>;

  constructor(private readonly options: PolarsProcessOptions) {
    this.child = spawn(PYTHON_BIN, ['-m', 'engine_polars'], {
      env: { ...process.env, ...POLARS_MALLOC_ENV, POLARS_MAX_THREADS: '1', SHARDLYTICS_PARENT_PID: String(process.pid), PYTHONPATH: PYTHON_PATH, PYTHONUNBUFFERED: '1', ENGINE_PARTIAL_CACHE: options.partialCache === false ? 'false' : 'true' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Below the HTTP thread in CPU priority: on a box with as many cores as shards, a heavy query
    // keeps every polars process busy, and at equal priority the thread that acknowledges ingest
    // waits for a time slice (bench:isolation measured ingest p99 8× its idle value).
    if (this.child.pid !== undefined) setPolarsPriority(this.child.pid);
    this.child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    let errTail = '';
    this.child.stderr.on('data', (chunk: Buffer) => {
      const lines = (errTail + chunk.toString('utf8')).split('\n');
      errTail = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.options.onStderr(line);
    });
    this.closed = new Promise<void>((resolve) => {
      this.child.on('error', (err) => {
        this.fail(`spawn failed: ${err.message}`);
        resolve();
      });
      this.child.on('close', (code, signal) => {
        this.fail(signal ? `signal ${signal}` : `code ${code}`);
        resolve();
      });
    });
    // A write to a dead process raises EPIPE on stdin; the exit handler reports it.
    this.child.stdin.on('error', () => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Running and not being killed: requests are accepted. */
  get alive(): boolean {
    return this.exited === null && this.killedFor === null;
  }

  /** Requests sent and not answered yet. */
  get waiting(): number {
    return this.pending.size;
  }

  request(op: SidecarOp, plan?: unknown, body?: Uint8Array, opts: PolarsRequestOptions = {}): Promise<PolarsReply> {
    if (this.exited) return Promise.reject(this.exited);
    if (this.killedFor) return Promise.reject(polarsDied(this.options.shard, `being killed: ${this.killedFor.reason}`));
    const id = this.nextId++;
    // query_many carries a list of plans under `plans`; every other op at most one `plan`.
    const header = op === 'query_many' ? { id, op, ...opts.fields, plans: plan } : plan === undefined ? { id, op, ...opts.fields } : { id, op, ...opts.fields, plan };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    if (json.length > MAX_FRAME_HEADER_BYTES) return Promise.reject(planTooLarge(this.options.shard, op, json.length, MAX_FRAME_HEADER_BYTES));
    return new Promise<PolarsReply>((resolve, reject) => {
      const p: Pending = {
        op,
        resolve,
        reject,
        timeoutMs: opts.deadline === undefined ? (opts.timeoutMs ?? this.options.timeoutMs) : undefined,
        sentAt: performance.now(),
        deadline: opts.deadline,
        deadlineTimer: undefined,
      };
      if (p.deadline !== undefined) {
        p.deadlineTimer = setTimeout(() => this.timedOut(id, Math.round(p.deadline! - p.sentAt)), Math.max(0, p.deadline - p.sentAt));
      }
      this.pending.set(id, p);
      if (this.pending.size === 1 || this.headTimer === undefined) this.armHead();
      // Prefix+header and body as two writes: the pipe keeps their order and the body (a sealed
      // batch, up to tens of MB) is not copied into a frame buffer first.
      this.child.stdin.write(encodeFrameHead(json, body?.byteLength ?? 0));
      if (body && body.byteLength > 0) this.child.stdin.write(body);
    });
  }

  /** Asks the process to exit after answering everything sent before; resolves with its reply. */
  async shutdown(timeoutMs: number): Promise<PolarsReply | null> {
    if (!this.alive) return null;
    this.stopping = true;
    try {
      const reply = await this.request('shutdown', undefined, undefined, { timeoutMs });
      await this.closed;
      return reply;
    } catch (err) {
      this.kill('shutdown got no answer');
      throw err;
    }
  }

  /** SIGKILL; every request still waiting is rejected (POLARS_DIED naming `reason`) when it is gone. */
  kill(reason: string, timedOut: SidecarOp | null = null): void {
    if (this.exited || this.killedFor) return;
    this.killedFor = { reason, timedOut };
    this.child.kill('SIGKILL');
    if (!this.stopping) this.options.onKill?.(reason);
  }

  /** Quietly stops a process we are done with (engine stop): no onExit. */
  abandon(): void {
    this.stopping = true;
    this.kill('shard stopping');
  }

  /**
   * Arms the busy-time timer of the request at the head of the queue. A roll is never that head
   * while others wait: the process writes its files on a thread while it serves the frames sent
   * after it (python/engine_polars/server.py), so it is timed by its own deadline.
   */
  private armHead(): void {
    clearTimeout(this.headTimer);
    this.headTimer = undefined;
    for (const [id, p] of this.pending) {
      if (p.op === 'roll' && this.pending.size > 1) continue;
      if (p.timeoutMs !== undefined) this.headTimer = setTimeout(() => this.timedOut(id, p.timeoutMs!), p.timeoutMs);
      return;
    }
  }

  private timedOut(id: number, ms: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.deadlineTimer);
    p.reject(polarsTimeout(this.options.shard, p.op, ms));
    this.kill(`\`${p.op}\` #${id} got no answer within ${ms} ms`, p.op);
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.kill(`unreadable frame: ${(err as Error).message}`);
      return;
    }
    for (const frame of frames) {
      let id = Number(frame.header.id);
      // id 0 is the process saying it could not read a request's id (BAD_FRAME): requests are
      // answered in order, so it belongs to the oldest one still waiting.
      if (id === 0 && this.pending.size > 0) id = this.pending.keys().next().value!;
      const pending = this.pending.get(id);
      if (!pending) continue; // answered after its time ran out: already rejected
      this.pending.delete(id);
      clearTimeout(pending.deadlineTimer);
      this.armHead();
      if (frame.header.ok === true) {
        pending.resolve(frame);
      } else {
        const code = String(frame.header.code ?? 'INTERNAL');
        const message = String(frame.header.message ?? 'polars error');
        const kept: ShardErrorCode = PASSED_THROUGH.has(code) ? (code as ShardErrorCode) : code === 'FRAME_TOO_LARGE' ? 'PLAN_TOO_LARGE' : 'POLARS_ERROR';
        pending.reject(new ShardError(kept, `shard ${this.options.shard}: ${code}: ${message}`));
      }
    }
  }

  private fail(detail: string): void {
    if (this.exited) return;
    clearTimeout(this.headTimer);
    this.exited = polarsDied(this.options.shard, this.killedFor ? `killed: ${this.killedFor.reason}` : detail);
    for (const p of this.pending.values()) {
      clearTimeout(p.deadlineTimer);
      p.reject(this.exited);
    }
    this.pending.clear();
    if (!this.stopping) this.options.onExit({ error: this.exited, timedOut: this.killedFor?.timedOut ?? null, livedMs: performance.now() - this.startedAt });
  }
}
