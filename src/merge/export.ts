/** Merge of `export` partials. (Stub.) */
export function mergeExportTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('export merge is not implemented');
}
