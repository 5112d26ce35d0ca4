/** Merge of `funnel` partials. (Stub.) */
export function mergeFunnelTask(_spec: unknown, _partials: Uint8Array[]): unknown {
  throw new Error('funnel merge is not implemented');
}
