/**
 * Error catalogue of the shard layer. Codes are stable: they cross the worker boundary (as
 * `{code, message}`) and reach HTTP clients (src/router/http-error.ts maps them to statuses).
 */
export type ShardErrorCode =
  /** the polars process exited (crashed or was killed from outside); the shard restores it */
  | 'POLARS_DIED'
  /** polars did not answer in time: a query past its deadline, or a hung process (then killed) */
  | 'POLARS_TIMEOUT'
  | 'POLARS_ERROR'
  /** the shard worker did not answer in time */
  | 'SHARD_TIMEOUT'
  /** the shard failed for good (worker crashed, start-up failed) */
  | 'SHARD_DOWN'
  | 'SHARD_STOPPING'
  /** the shard is replaying its log into a new polars process; retry shortly */
  | 'SHARD_RESTORING'
  /** the shard runs `shardQueryConcurrency` queries and `shardQueryQueue` wait already */
  | 'SHARD_BUSY'
  | 'BAD_PLAN'
  /** a request's JSON header is over `maxFrameHeaderBytes` (config/limits.json) */
  | 'PLAN_TOO_LARGE'
  /** the polars side estimated more result cells than the plan allows */
  | 'RESULT_TOO_LARGE'
  | 'CUSTOM_BAD_PARAMS'
  | 'CUSTOM_FAILED'
  | 'CUSTOM_BAD_RESULT'
  /** the shard's log could not be written or synced (ENOSPC, EIO, ...): events refused or dropped */
  | 'INSUFFICIENT_STORAGE'
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
export const shardRestoring = (shard: number, detail: string) =>
  new ShardError('SHARD_RESTORING', `shard ${shard} is restoring its polars process from its log (${detail}); retry shortly`);
export const shardBusy = (shard: number, running: number, queued: number) =>
  new ShardError('SHARD_BUSY', `shard ${shard} is busy: ${running} queries running and ${queued} waiting (shardQueryConcurrency, shardQueryQueue); retry shortly`);
export const planTooLarge = (shard: number, op: string, bytes: number, limit: number) =>
  new ShardError('PLAN_TOO_LARGE', `shard ${shard}: \`${op}\` request header is ${bytes} bytes; at most ${limit} (maxFrameHeaderBytes)`);

/** The log of `shard` failed with `cause` (an fs error: its code names the cause). */
export const insufficientStorage = (shard: number, cause: unknown) => {
  const e = cause as NodeJS.ErrnoException;
  const text = e?.message ?? String(cause);
  return new ShardError('INSUFFICIENT_STORAGE', `shard ${shard} cannot write its log: ${e?.code && !text.startsWith(e.code) ? `${e.code}: ` : ''}${text}`);
};

/** Rebuilds a ShardError from its wire form; anything else becomes INTERNAL. */
export function shardErrorFromWire(wire: { code?: string; message?: string }): ShardError {
  return new ShardError((wire.code as ShardErrorCode) ?? 'INTERNAL', wire.message ?? 'unknown shard error');
}
