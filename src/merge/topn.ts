/** Merge of `topn` partials. (Stub.) */
export function mergeTopNTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('topn merge is not implemented');
}
