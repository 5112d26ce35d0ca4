/**
 * The engine's configuration keys: one table of name → parser, so defaults, env vars, CLI flags
 * and error messages all come from the same place.
 */
import { availableParallelism } from 'node:os';

export interface EngineConfig {
  shards: number;
  host: string;
  ingestPort: number;
  queryPort: number;
  ringBytes: number;
  flushIntervalMs: number;
  maxBatchRows: number;
  maxBatchEvents: number;
  maxBodyBytes: number;
  queryTimeoutMs: number;
  /** Deepest JSON nesting accepted in any request body (arrays and objects). */
  maxJsonDepth: number;
  /** Largest serialized query plan sent to one shard, bytes. */
  maxPlanBytes: number;
  /** Most values in one filter list (`event_type`, `user_id`, a dimension's values). */
  maxFilterValues: number;
  /** Most `groupBy` keys of one query. */
  maxGroupByKeys: number;
  /** Most result cells (windows × groups, or groups) a shard may produce for one query. */
  maxResultCells: number;
  /** Largest JSON answer of a query, bytes. */
  maxResponseBytes: number;
  /** Queries one shard runs at once; more wait in its queue. */
  shardQueryConcurrency: number;
  /** Queries that may wait per shard; beyond that a query is answered 429. */
  shardQueryQueue: number;
  /** Time a client has to send a request's headers, ms. */
  headersTimeoutMs: number;
  /** Time a client has to send a whole request, ms. */
  requestTimeoutMs: number;
  /** Idle time after which a keep-alive connection is closed, ms. */
  keepAliveTimeoutMs: number;
  /** Most open connections per port; the oldest idle one is closed to admit a new one. */
  maxConnections: number;
  /** Where each shard keeps its log and segments. */
  dataDir: string;
  /** `batch`: fsync once per sealed batch (group commit); `off`: never (unsafe, for benchmarks). */
  fsync: 'batch' | 'off';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export class ConfigError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`invalid config \`${key}\`: ${message}`);
    this.name = 'ConfigError';
  }
}

type Parser<T> = (raw: unknown, key: string) => T;

function integer(min: number, max: number): Parser<number> {
  return (raw, key) => {
    const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      throw new ConfigError(key, `expected an integer, got ${JSON.stringify(raw)}`);
    }
    if (n < min || n > max) throw new ConfigError(key, `expected ${min}..${max}, got ${n}`);
    return n;
  };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const CONFIG_KEYS: { [K in keyof EngineConfig]: Parser<EngineConfig[K]> } = {
  shards: (raw, key) => (raw === 'auto' ? Math.min(availableParallelism(), 64) : integer(1, 64)(raw, key)),
  host: (raw, key) => {
    if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(key, `expected a host name or address, got ${JSON.stringify(raw)}`);
    return raw;
  },
  ingestPort: integer(0, 65535),
  queryPort: integer(0, 65535),
  // Below 4 KiB a ring cannot hold even one maximal event; the cap keeps a typo from eating RAM.
  ringBytes: integer(4096, 2 ** 31),
  flushIntervalMs: integer(1, 60_000),
  maxBatchRows: integer(1, 10_000_000),
  maxBatchEvents: integer(1, 1_000_000),
  maxBodyBytes: integer(1024, 1024 ** 3),
  queryTimeoutMs: integer(10, 3_600_000),
  maxJsonDepth: integer(2, 1000),
  maxPlanBytes: integer(1024, 256 * 1024 * 1024),
  maxFilterValues: integer(1, 10_000_000),
  maxGroupByKeys: integer(1, 64),
  maxResultCells: integer(1, 1_000_000_000),
  maxResponseBytes: integer(1024, 2 ** 31),
  shardQueryConcurrency: integer(1, 256),
  shardQueryQueue: integer(0, 100_000),
  headersTimeoutMs: integer(100, 3_600_000),
  requestTimeoutMs: integer(100, 3_600_000),
  keepAliveTimeoutMs: integer(100, 3_600_000),
  maxConnections: integer(16, 1_000_000),
  dataDir: (raw, key) => {
    if (typeof raw !== 'string' || raw.length === 0) throw new ConfigError(key, `expected a directory path, got ${JSON.stringify(raw)}`);
    return raw;
  },
  fsync: (raw, key) => {
    if (raw !== 'batch' && raw !== 'off') throw new ConfigError(key, `expected "batch" or "off", got ${JSON.stringify(raw)}`);
    return raw;
  },
  logLevel: (raw, key) => {
    if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw)) {
      throw new ConfigError(key, `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`);
    }
    return raw as EngineConfig['logLevel'];
  },
};

/** Env var name for a key: `ringBytes` → `ENGINE_RING_BYTES`. */
export function envName(key: string): string {
  return 'ENGINE_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

/** CLI flag for a key: `ringBytes` → `--ring-bytes`. */
export function flagName(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
