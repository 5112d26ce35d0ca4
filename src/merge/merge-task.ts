/**
 * Piscina task: decode every shard's Arrow IPC partial and merge them into the answer. Stateless
 * and CPU-bound (a by-user aggregate can carry hundreds of thousands of groups), so it runs in
 * the merge pool instead of on the main thread that serves HTTP. The task names the merge's file
 * (merge-def.ts); this worker loads it once and runs its default export.
 */
import { setPriority } from 'node:os';
import { isMainThread, type MessagePort } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { MERGE_FILE, type MergeDef } from './merge-def.js';

/**
 * Merge-pool threads run below the HTTP thread's CPU priority, so a large merge never delays an
 * ingest acknowledgement. Linux applies a niceness set for pid 0 to the calling thread only; the
 * main thread also imports this module (for `mergedJsonBytes`) and must keep its own priority.
 */
export const MERGE_NICE = 10;
if (!isMainThread) {
  try {
    setPriority(0, MERGE_NICE);
  } catch {
    // a platform that refuses runs the merge at normal priority
  }
}

export interface MergeTask {
  file: string;
  spec: unknown;
  partials: Uint8Array[];
  /** Answer JSON text (of the output or its `jsonField`) instead of the output. */
  asJson?: boolean;
  jsonField?: string;
  /**
   * Send the merge's output as it is made (MergeDef.stream) on this port instead of answering
   * it: the StreamMessages below, in order. The task then answers a StreamDone.
   */
  port?: MessagePort;
  /** With `port`: set to non-zero by the main thread when nobody wants the rest (checked before each piece). */
  stop?: Int32Array;
}

/**
 * What a streaming task posts on its port: the output's length (before any piece), each piece
 * (its buffer moved), then the end (how many pieces). A task stopped midway posts no end; a task
 * that fails or is aborted posts nothing more, and its run rejects.
 */
export type StreamMessage = { bytes: number } | Uint8Array | { end: number };

/** A streaming task's answer: the pieces posted, and whether it was stopped before its end. */
export interface StreamDone {
  pieces: number;
  stopped: boolean;
}

const loaded = new Map<string, Promise<MergeDef>>();

/**
 * Registers merges up front: the bundled merge worker (src/kinds/merge-worker-source.ts) imports
 * every merge file statically and hands them here, because a bundle cannot follow the computed
 * import below. Run from source, merges load by name on first use.
 */
export function preload(defs: MergeDef[]): void {
  for (const def of defs) loaded.set(def.file, Promise.resolve(def));
}

function load(file: string): Promise<MergeDef> {
  if (!MERGE_FILE.test(file)) return Promise.reject(new Error(`merge task: no merge named ${JSON.stringify(file)}`));
  let def = loaded.get(file);
  if (!def) {
    def = import(/* @vite-ignore */ `./${file}.js`).then((m: { default?: MergeDef }) => {
      if (!m.default || m.default.file !== file) throw new Error(`merge task: src/merge/${file}.ts does not export its merge as default`);
      return m.default;
    });
    loaded.set(file, def);
  }
  return def;
}

/**
 * With `asJson`, the worker also serializes and encodes the answer: a large answer then crosses
 * back to the main thread as one transferred buffer instead of a structured clone of every row
 * object (or of a string), and the HTTP thread never spends time in JSON.stringify or UTF-8
 * encoding for it.
 */
export default async function mergeTask(task: MergeTask): Promise<unknown> {
  const def = await load(task.file);
  if (task.port) return streamTask(def, task.port, task.stop ?? new Int32Array(1), task);
  const out = def.run(task.spec, task.partials);
  // As UTF-8 bytes moved (not copied) to the main thread, which then only writes them out.
  if (task.asJson) return move(mergedJsonBytes(out, task.jsonField));
  if (def.transfer) {
    // the output as it is, its large buffers moved (an Arrow answer: ~115 MB at 10 M events)
    const buffers = def.transfer(out);
    return move({ [transferableSymbol]: buffers, [valueSymbol]: out } as unknown as Parameters<typeof move>[0]);
  }
  return out;
}

/**
 * Posts the output piece by piece as `def.stream` makes them. No backpressure here: every piece is
 * made at once, whatever the client's pace, so the pool thread is back for other merges after
 * the merge's own CPU (a slow client never holds it); the pieces wait on the main thread, where
 * the whole answer's length was reserved in the answer budget before its first byte went out,
 * as for an answer made whole. `stop` ends the work early (the client has gone).
 */
function streamTask(def: MergeDef, port: MessagePort, stop: Int32Array, task: MergeTask): StreamDone {
  if (!def.stream) throw new Error(`merge task: ${task.file} does not stream its output`);
  const out = def.stream(task.spec, task.partials);
  port.postMessage({ bytes: out.bytes } satisfies StreamMessage);
  const pieces = out.pieces[Symbol.iterator]();
  let n = 0;
  for (;;) {
    if (Atomics.load(stop, 0) !== 0) return { pieces: n, stopped: true };
    const next = pieces.next();
    if (next.done) break;
    // a piece sharing its buffer with others would move them too: those are copied
    const piece = next.value.byteOffset === 0 && next.value.byteLength === next.value.buffer.byteLength ? next.value : next.value.slice();
    port.postMessage(piece satisfies StreamMessage, [piece.buffer as ArrayBuffer]);
    n++;
  }
  port.postMessage({ end: n } satisfies StreamMessage);
  return { pieces: n, stopped: false };
}

/**
 * UTF-8 JSON of a merge output, or of one of its fields, in a buffer of its own (transferable).
 * A value that is already bytes is JSON the merge wrote itself (aggregate-rows.ts) and is kept.
 */
export function mergedJsonBytes(out: unknown, field?: string): Uint8Array {
  const value = field === undefined ? out : (out as Record<string, unknown>)[field];
  if (value instanceof Uint8Array) return value;
  return new TextEncoder().encode(JSON.stringify(value));
}
