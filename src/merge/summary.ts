/** Merge of `summary` partials. (Stub.) */
export function mergeSummaryTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('summary merge is not implemented');
}
