/**
 * Error catalogue of the shard layer. Codes are stable: they cross the worker boundary (as
 * `{code, message}`) and reach HTTP clients.
 */
export type ShardErrorCode =
  | 'POLARS_DIED'
  | 'POLARS_TIMEOUT'
  | 'POLARS_ERROR'
  | 'SHARD_TIMEOUT'
  | 'SHARD_DOWN'
  | 'SHARD_STOPPING'
  | 'BAD_PLAN'
  | 'CUSTOM_BAD_PARAMS'
  | 'CUSTOM_FAILED'
  | 'CUSTOM_BAD_RESULT'
  | 'INTERNAL';

export class ShardError extends Error {
  constructor(
    readonly code: ShardErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ShardError';
  }
}

export const polarsDied = (shard: number, detail: string) =>
  new ShardError('POLARS_DIED', `shard ${shard}: polars process exited (${detail})`);
export const polarsTimeout = (shard: number, op: string, ms: number) =>
  new ShardError('POLARS_TIMEOUT', `shard ${shard}: polars \`${op}\` got no answer within ${ms} ms`);
export const shardTimeout = (shard: number, kind: string, ms: number) =>
  new ShardError('SHARD_TIMEOUT', `shard ${shard}: \`${kind}\` got no answer within ${ms} ms`);
export const shardDown = (shard: number, detail: string) => new ShardError('SHARD_DOWN', `shard ${shard} is down: ${detail}`);

/** Rebuilds a ShardError from its wire form; anything else becomes INTERNAL. */
export function shardErrorFromWire(wire: { code?: string; message?: string }): ShardError {
  return new ShardError((wire.code as ShardErrorCode) ?? 'INTERNAL', wire.message ?? 'unknown shard error');
}
