/** Merge of `anomalies` partials. (Stub.) */
export function mergeAnomaliesTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('anomalies merge is not implemented');
}
