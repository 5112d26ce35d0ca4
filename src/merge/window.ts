/** Merge of `window` partials. (Stub.) */
export function mergeWindowTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('window merge is not implemented');
}
