/** Merge of `enrichment` partials. (Stub.) */
export function mergeEnrichmentTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('enrichment merge is not implemented');
}
