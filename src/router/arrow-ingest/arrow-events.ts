/**
 * POST /ingest/arrow (`Content-Type: application/vnd.apache.arrow.stream`): an Arrow IPC stream
 * whose columns are an event's fields, validated whole and routed by user id without one
 * JavaScript object per event:
 *
 *   read-arrow.ts        IPC stream → column chunks (types and buffers checked)
 *   route-rows.ts        shard of each row (the routing hash), rows grouped by shard, and a lower
 *                        bound of each shard's ring bytes: room is checked (or waited for, see
 *                        ring-room.ts) before the rows are validated and encoded
 *   validate-columns.ts  the JSON routes' rules, column by column → block columns
 *   ingest-writer.ts     column blocks (src/shards/ring-block.ts) pushed into the rings, all or nothing
 *
 * Any bad row rejects the request (400 naming the row `index` and the column) before anything
 * is written, as one bad event rejects a JSON batch.
 */
import type { BlockSource } from '../../shards/ring-block.js';
import { HttpError, badRequest, type FieldError } from '../http-error.js';
import { readArrowStream, type ArrowChunk } from './read-arrow.js';
import { minShardBytes, orderByShard, type ShardOrder } from './route-rows.js';
import { RowErrors, validateChunk, type ValidateOptions } from './validate-columns.js';

export const ARROW_STREAM_TYPE = 'application/vnd.apache.arrow.stream';

export interface ArrowEvents {
  rows: number;
  chunks: Array<{ source: BlockSource; order: ShardOrder }>;
}

/** How many bad rows a 400 lists (the JSON routes list as many). */
export const MAX_REPORTED_ROWS = 20;

/** The 400 for bad rows: `errors[]` name the row (`index`, request-wide) and the column. */
export function invalidRows(errors: FieldError[], total: number): HttpError {
  const e = errors[0]!;
  return new HttpError(400, 'INVALID_EVENT', `${total} invalid value(s); first: row ${e.index}, column \`${e.field}\`: ${e.reason}`, { errors });
}

/** A request read and routed, not yet validated. */
export interface RoutedArrow {
  rows: number;
  chunks: ArrowChunk[];
  orders: ShardOrder[];
  /** a lower bound of each shard's ring bytes (route-rows.ts `minShardBytes`) */
  minBytes: Float64Array;
}

/**
 * Reads and routes a request body. Throws a 400 for a body that is not a readable stream, has
 * the wrong columns or no rows. Cheap next to validation and encoding: an overloaded engine can
 * refuse (or wait for room) with only this much done.
 */
export function routeArrowEvents(body: Uint8Array, shards: number): RoutedArrow {
  // Arrow's typed arrays view the body: 8-byte alignment keeps them views (a pooled Buffer may sit anywhere).
  const aligned = body.byteOffset % 8 === 0 ? body : Uint8Array.prototype.slice.call(body);
  const { chunks, rows } = readArrowStream(aligned);
  if (rows === 0) throw badRequest('no events in request: the stream has no rows', [{ field: '(body)', reason: 'empty stream' }]);
  const orders = chunks.map((chunk) => orderByShard(chunk.userId, chunk.rows, shards));
  const minBytes = new Float64Array(shards);
  chunks.forEach((chunk, i) => minShardBytes(chunk.eventType, chunk.userId, orders[i]!, minBytes));
  return { rows, chunks, orders, minBytes };
}

/**
 * Checks every row of a routed request; returns its block columns, or `invalid` (the 400 to
 * answer) when any row breaks a rule.
 */
export function validateArrowEvents(routed: RoutedArrow, opts: ValidateOptions): ArrowEvents | { rows: number; invalid: HttpError } {
  const errors = new RowErrors(MAX_REPORTED_ROWS);
  const sources = routed.chunks.map((chunk) => validateChunk(chunk, opts, errors));
  if (errors.total > 0) return { rows: routed.rows, invalid: invalidRows(errors.first(MAX_REPORTED_ROWS), errors.total) };
  return { rows: routed.rows, chunks: routed.chunks.map((_, i) => ({ source: sources[i]!, order: routed.orders[i]! })) };
}
