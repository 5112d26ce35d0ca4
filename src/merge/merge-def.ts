/**
 * A merge: the pure function from every shard's partial (Arrow IPC) to an answer, named by the
 * file in src/merge/ that exports it as its default. The name is what crosses into the merge
 * pool, whose worker loads the file (merge-task.ts), so no list of merges is kept anywhere.
 */
export interface MergeDef<Spec = any, Out = unknown> {
  /** The file in src/merge/ (without extension) whose default export this is. */
  readonly file: string;
  readonly run: (spec: Spec, partials: Uint8Array[]) => Out;
}

export const MERGE_FILE = /^[a-z][a-z-]{0,40}$/;

/** @example export default defineMerge('funnel', mergeFunnelTask); */
export function defineMerge<Spec, Out>(file: string, run: (spec: Spec, partials: Uint8Array[]) => Out): MergeDef<Spec, Out> {
  if (!MERGE_FILE.test(file)) throw new Error(`merge file name must match ${MERGE_FILE}, got ${JSON.stringify(file)}`);
  return { file, run };
}
