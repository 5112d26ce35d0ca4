/**
 * A merge: the pure function from every shard's partial (Arrow IPC) to an answer, named by the
 * file in src/merge/ that exports it as its default. The name is what crosses into the merge
 * pool, whose worker loads the file (merge-task.ts), so no list of merges is kept anywhere.
 */
export interface MergeDef<Spec = any, Out = unknown> {
  /** The file in src/merge/ (without extension) whose default export this is. */
  readonly file: string;
  readonly run: (spec: Spec, partials: Uint8Array[]) => Out;
  /**
   * Partials up to this many bytes in all are merged inline, on the calling thread, instead of
   * the merge pool's default (src/kinds/merge-pool.ts): for merges cheap per byte, for which the
   * hop to a pool thread costs more than the merge.
   */
  readonly inlineBytes?: number;
  /**
   * The buffers of a pooled merge's output that are moved to the main thread instead of copied
   * (each its own ArrayBuffer, none shared with another): for outputs of many MB of bytes.
   */
  readonly transfer?: (out: Out) => ArrayBuffer[];
  /**
   * The output as bytes made piece by piece, for answers sent while they are made
   * (MergePool.stream): their total length first, then each piece as it is asked for. The same
   * bytes as `run`'s, in the same order.
   */
  readonly stream?: (spec: Spec, partials: Uint8Array[]) => PieceStream;
}

/** Bytes whose length is known before they are made: `pieces` makes each one when iterated to it. */
export interface PieceStream {
  bytes: number;
  pieces: Iterable<Uint8Array>;
}

export const MERGE_FILE = /^[a-z][a-z-]{0,40}$/;

/** @example export default defineMerge('funnel', mergeFunnelTask); */
export function defineMerge<Spec, Out>(
  file: string,
  run: (spec: Spec, partials: Uint8Array[]) => Out,
  options: { inlineBytes?: number; transfer?: (out: Out) => ArrayBuffer[]; stream?: (spec: Spec, partials: Uint8Array[]) => PieceStream } = {},
): MergeDef<Spec, Out> {
  if (!MERGE_FILE.test(file)) throw new Error(`merge file name must match ${MERGE_FILE}, got ${JSON.stringify(file)}`);
  return {
    file,
    run,
    ...(options.inlineBytes === undefined ? {} : { inlineBytes: options.inlineBytes }),
    ...(options.transfer === undefined ? {} : { transfer: options.transfer }),
    ...(options.stream === undefined ? {} : { stream: options.stream }),
  };
}
