/**
 * The query layer's one error type. Kinds throw it; they know nothing of HTTP. The router's single
 * `onError` turns `reason` into a status: `invalid` → 400, `not_found` → 404, `timeout` → 504.
 */
export interface FieldProblem {
  /** Path of the offending field as the client wrote it: `filter.user_id[3]`, `groupBy`, `from`. */
  field: string;
  reason: string;
}

export type RequestErrorReason = 'invalid' | 'not_found' | 'timeout';

export class RequestError extends Error {
  constructor(
    readonly reason: RequestErrorReason,
    readonly code: string,
    message: string,
    readonly problems: FieldProblem[] = [],
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

/** A bad field: "`field`: reason". */
export function invalidField(field: string, reason: string): RequestError {
  return new RequestError('invalid', 'BAD_REQUEST', `\`${field}\`: ${reason}`, [{ field, reason }]);
}

/** A request over one of the configured bounds; names the field and the config key. */
export function overLimit(field: string, what: string, limitKey: string, limit: number): RequestError {
  const reason = `${what}; at most ${limit} (${limitKey})`;
  return new RequestError('invalid', 'LIMIT_EXCEEDED', `\`${field}\`: ${reason}`, [{ field, reason }]);
}

export function notFound(code: string, message: string): RequestError {
  return new RequestError('not_found', code, message);
}

export function timedOut(what: string): RequestError {
  return new RequestError('timeout', 'QUERY_TIMEOUT', `${what} did not finish before the query's deadline (queryTimeoutMs)`);
}
