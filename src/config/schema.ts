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
  /** Longest an ingest request waits for room in a full ring before it is answered 503, ms (0: at once). */
  ringWaitMs: number;
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
  /** Bytes of JSON answers held until their clients take them, all queries together; past it a query is answered 503. */
  maxAnswerBytesInFlight: number;
  /** A response whose client takes nothing for this long is cut off (its connection closed), ms. */
  sendStallTimeoutMs: number;
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
  /** Rows a shard holds open (in memory, covered by its log) before it rolls them into a segment file. */
  segmentRows: number;
  /** Drop whole segments whose newest event is this much older than min(newest event, now), ms; null: keep everything. */
  retention: number | null;
  /** An event more than this far ahead of its receive time is rejected (400), ms; null: no bound. */
  maxFutureSkew: number | null;
  /** A shard log file is rolled (a new file started) past this many bytes; truncation deletes whole files. */
  logFileBytes: number;
  /**
   * Keep per-chunk partials of the dashboard's and the summary's unfiltered plans in each polars
   * process and reuse them (python/engine_polars/partial_cache.py); false: every query reads every row.
   */
  partialCache: boolean;
  /** Longest a `?wait=true` ingest request waits for its events to be durable before a 504, ms. */
  waitTimeoutMs: number;
  /** How long an Idempotency-Key is remembered after its request, ms (config: `"24h"`, `"30m"`, or ms). */
  idempotencyWindow: number;
  /** Most Idempotency-Keys remembered; beyond, the oldest are forgotten first. */
  idempotencyMaxKeys: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Bearer tokens and their scopes; with any, every route but `GET /health` needs one. */
  tokens: TokenConfig[];
  /** Serve a non-loopback `host` without tokens (refused otherwise). */
  allowUnauthenticated: boolean;
  /** Origins (exact `scheme://host[:port]`) answered with CORS headers; empty: no CORS. */
  corsOrigins: string[];
}

export const SCOPES = ['ingest', 'query', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface TokenConfig {
  token: string;
  scopes: Scope[];
}

/** Shortest token accepted: 16 characters leave guessing out of reach even at a high request rate. */
export const MIN_TOKEN_CHARS = 16;

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

/** A string from an env var or a flag is read as JSON; a value from a JSON file is taken as is. */
function jsonLayer(raw: unknown, key: string): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(key, `expected JSON, got text that does not parse (${(err as Error).message})`);
  }
}

// A token goes in an `Authorization: Bearer` header: visible ASCII only, no spaces.
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** Never echoes a token: messages name its index, length or characters, not its value. */
function parseTokens(raw: unknown, key: string): TokenConfig[] {
  const list = jsonLayer(raw, key);
  if (!Array.isArray(list)) throw new ConfigError(key, `expected an array of {"token": "...", "scopes": [...]}, got ${typeof list}`);
  const seen = new Set<string>();
  return list.map((entry: unknown, i) => {
    const at = `${key}[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ConfigError(at, 'expected an object {"token": "...", "scopes": [...]}');
    const extra = Object.keys(entry).filter((k) => k !== 'token' && k !== 'scopes');
    if (extra.length > 0) throw new ConfigError(`${at}.${extra[0]}`, 'unknown field; expected "token" and "scopes"');
    const { token, scopes } = entry as { token?: unknown; scopes?: unknown };
    if (typeof token !== 'string') throw new ConfigError(`${at}.token`, `expected a string, got ${token === undefined ? 'nothing' : typeof token}`);
    if (token.length < MIN_TOKEN_CHARS) throw new ConfigError(`${at}.token`, `expected at least ${MIN_TOKEN_CHARS} characters, got ${token.length}`);
    if (!TOKEN_CHARS.test(token)) throw new ConfigError(`${at}.token`, 'expected visible ASCII characters only (no spaces or control characters)');
    if (seen.has(token)) throw new ConfigError(`${at}.token`, 'the same token is listed twice');
    seen.add(token);
    if (!Array.isArray(scopes) || scopes.length === 0) throw new ConfigError(`${at}.scopes`, `expected a non-empty array of ${SCOPES.join(', ')}`);
    for (const s of scopes) {
      if (!(SCOPES as readonly unknown[]).includes(s)) throw new ConfigError(`${at}.scopes`, `expected one of ${SCOPES.join(', ')}, got ${JSON.stringify(s)}`);
    }
    return { token, scopes: [...new Set(scopes as Scope[])] };
  });
}

function parseOrigins(raw: unknown, key: string): string[] {
  // The env var and flag also take a comma-separated list.
  const list = typeof raw === 'string' && !raw.trim().startsWith('[') ? raw.split(',').map((s) => s.trim()).filter((s) => s !== '') : jsonLayer(raw, key);
  if (!Array.isArray(list)) throw new ConfigError(key, `expected an array of origins like "https://app.example.com", got ${typeof list}`);
  return list.map((o: unknown, i) => {
    let url: URL | null = null;
    try {
      url = typeof o === 'string' ? new URL(o) : null;
    } catch {
      // reported below
    }
    if (typeof o !== 'string' || !url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== o) {
      throw new ConfigError(`${key}[${i}]`, `expected an exact origin like "https://app.example.com" (scheme, host, optional port; no path or trailing slash), got ${JSON.stringify(o)}`);
    }
    return o;
  });
}

function parseBoolean(raw: unknown, key: string): boolean {
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new ConfigError(key, `expected true or false, got ${JSON.stringify(raw)}`);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `"24h"`, `"30m"`, `"90s"`, `"7d"`, `"500ms"` or a whole number of ms → ms, within `min`..`max`. */
function durationMs(min: number, max: number): Parser<number> {
  return (raw, key) => {
    const m = typeof raw === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(raw) : null;
    const ms = typeof raw === 'number' ? raw : m ? Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']! : NaN;
    if (!Number.isFinite(ms)) throw new ConfigError(key, `expected a duration like "24h", "30m", "90s", "7d" or a number of ms, got ${JSON.stringify(raw)}`);
    if (ms < min || ms > max) throw new ConfigError(key, `expected ${min} ms..${max / 86_400_000} days, got ${ms} ms`);
    return Math.round(ms);
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
  ringWaitMs: integer(0, 600_000),
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
  maxAnswerBytesInFlight: integer(1024, 2 ** 40),
  sendStallTimeoutMs: integer(100, 3_600_000),
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
  segmentRows: integer(1, 1_000_000_000),
  retention: (raw, key) => (raw === null || raw === 'none' || raw === 'null' || raw === '' ? null : durationMs(1000, 100 * 365 * 86_400_000)(raw, key)),
  maxFutureSkew: (raw, key) => (raw === null || raw === 'none' || raw === 'null' || raw === '' ? null : durationMs(0, 100 * 365 * 86_400_000)(raw, key)),
  // Below 64 KiB a file would roll at almost every batch; above 4 GiB a truncation frees little.
  logFileBytes: integer(65536, 2 ** 32),
  partialCache: parseBoolean,
  waitTimeoutMs: integer(10, 3_600_000),
  idempotencyWindow: durationMs(1000, 365 * 86_400_000),
  idempotencyMaxKeys: integer(1, 100_000_000),
  logLevel: (raw, key) => {
    if (typeof raw !== 'string' || !(LOG_LEVELS as readonly string[]).includes(raw)) {
      throw new ConfigError(key, `expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`);
    }
    return raw as EngineConfig['logLevel'];
  },
  tokens: parseTokens,
  allowUnauthenticated: parseBoolean,
  corsOrigins: parseOrigins,
};

/** Env var name for a key: `ringBytes` → `ENGINE_RING_BYTES`. */
export function envName(key: string): string {
  return 'ENGINE_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

/** CLI flag for a key: `ringBytes` → `--ring-bytes`. */
export function flagName(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
