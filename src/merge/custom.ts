/** Merge of `custom` partials. (Stub.) */
export function mergeCustomTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('custom merge is not implemented');
}
