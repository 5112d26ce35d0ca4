/** Merge of `percentiles` partials. (Stub.) */
export function mergePercentilesTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('percentiles merge is not implemented');
}
