/**
 * The package's client entry: `import { ShardlyticsClient } from 'shardlytics/client'`.
 * Imports no engine code at run time (only types), so it runs anywhere fetch does.
 */
export { ShardlyticsClient, type ShardlyticsClientOptions } from './client.js';
export { ShardlyticsError, type RetryInfo } from './http.js';
export { KIND_ROUTES, type KindName, type KindRoute } from './kind-routes.js';
export { DEFAULT_RETRY, parseRetryAfter, retryDelayMs, type RetryPolicy } from './retry.js';
export type { BatcherStats } from './event-batcher.js';
export type * from './types.js';
