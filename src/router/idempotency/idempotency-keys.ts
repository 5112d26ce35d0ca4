/**
 * Idempotency-Key bookkeeping on the main thread: the key store (key-store.ts) kept durable in
 * the key log (key-log.ts), and rebuilt at start from that log plus the keys the shards found in
 * their own logs.
 *
 * Why two places. A key's events are durable the moment their shard syncs its log, and the key
 * travels inside the same log record (src/shards/batch-keys.ts), so no crash can leave a key's
 * events stored without the key. The key log adds what the shard logs cannot give: the answer
 * (status and body) to replay, and keys that outlive the shard log's records (truncated once
 * segment files cover them). It is written only after the events are durable, so it never names
 * a request whose events could still be lost.
 *
 * At start, for each key the shards report and the key log does not answer: stored on every
 * shard the request spanned → done (its answer rebuilt: status 200 for ?wait=true, else 202;
 * `accepted` the request's events); on some → partial (a retry writes only the missing parts).
 * Both are written to the key log then.
 */
import type { Logger } from 'pino';
import type { StoredKey } from '../../shards/protocol.js';
import { KeyLog, type KeyRecord } from './key-log.js';
import { KeyStore, fromRecord, toRecord } from './key-store.js';

export type KeyLookup =
  | { kind: 'new' }
  | { kind: 'replay'; status: number; body: string }
  /** the key was used for another body (or route) */
  | { kind: 'mismatch' }
  | { kind: 'inflight' }
  /** stored on `skip` already: write the rest */
  | { kind: 'resume'; skip: ReadonlySet<number> };

export interface IdempotencyOptions {
  dir: string;
  fsync: boolean;
  windowMs: number;
  maxKeys: number;
  logger: Logger;
}

const SWEEP_EVERY_MS = 60_000;

export class IdempotencyKeys {
  private readonly sweeper: NodeJS.Timeout;
  private compacting: Promise<void> | null = null;
  /** key-log appends that failed (the answer still went out: the shard logs hold the keys) */
  logFailures = 0;

  private constructor(
    private readonly store: KeyStore,
    private readonly log: KeyLog,
    private readonly options: IdempotencyOptions,
  ) {
    this.sweeper = setInterval(() => this.store.sweep(), SWEEP_EVERY_MS);
    this.sweeper.unref();
  }

  /**
   * Loads the key log and merges the keys the shards found in their logs (`recovered[i]`: shard i's).
   */
  static async open(options: IdempotencyOptions, recovered: StoredKey[][]): Promise<IdempotencyKeys> {
    const { log, records, cutBytes } = await KeyLog.open(options.dir, { fsync: options.fsync });
    if (cutBytes > 0) options.logger.warn({ bytes_cut: cutBytes }, 'idempotency key log: torn or corrupt tail cut at the last good record');
    const store = new KeyStore(options.maxKeys, options.windowMs);
    const now = Date.now();
    for (const r of records) if (r.e > now) store.set(r.k, fromRecord(r, options.windowMs));
    const keys = new IdempotencyKeys(store, log, options);
    const rebuilt = keys.merge(recovered, now);
    // Rewrite when most of the file is dead (expired, evicted, superseded); else append what was rebuilt.
    if (log.records > 2 * store.size + 1000) await log.compact(store.records());
    else for (const r of rebuilt) await log.append(r);
    options.logger.info({ keys: store.size, rebuilt_from_shard_logs: rebuilt.length, key_log_bytes: log.bytes }, 'idempotency keys loaded');
    return keys;
  }

  /** What to do with a request carrying `key` whose route + body hash to `hash`. */
  lookup(key: string, hash: string): KeyLookup {
    const s = this.store.get(key);
    if (!s) return { kind: 'new' };
    if (s.hash !== hash) return { kind: 'mismatch' };
    switch (s.state) {
      case 'inflight':
        return { kind: 'inflight' };
      case 'done':
        // JSON.stringify of what JSON.parse or the route made gives the first answer's text back
        return { kind: 'replay', status: s.status, body: JSON.stringify(s.answer) };
      case 'partial':
        return { kind: 'resume', skip: new Set(s.shards) };
    }
  }

  /** The request is in the rings; its outcome is not known yet. */
  inflight(key: string, hash: string, at: number): void {
    this.store.set(key, { state: 'inflight', hash, at });
  }

  /**
   * The request was answered `status` with `answer` (its JSON body). With `durable` (every part is durable) the
   * key is written to the key log and this resolves once it is durable there; otherwise it is
   * kept in memory only (a 202 whose parts are not durable yet: `durable()` follows).
   */
  async answered(key: string, hash: string, at: number, status: number, answer: object, durable: boolean): Promise<void> {
    const state = { state: 'done' as const, hash, at, status, answer };
    this.store.set(key, state);
    if (durable) await this.write(toRecord(key, state, this.options.windowMs)!);
  }

  /** A 202-answered key's parts became durable: its answer goes to the key log. */
  async durable(key: string): Promise<void> {
    const s = this.store.get(key);
    if (s?.state === 'done') await this.write(toRecord(key, s, this.options.windowMs)!);
  }

  /**
   * The request is stored on `shards` only (the others dropped their parts, or cannot say). With
   * `known` (the others certainly do not hold theirs: a 507) the key log keeps it; otherwise it is
   * kept in memory only, and the shard logs decide after a restart.
   */
  partial(key: string, hash: string, at: number, shards: number[], known: boolean): void {
    const state = { state: 'partial' as const, hash, at, shards: [...new Set(shards)].sort((a, b) => a - b) };
    this.store.set(key, state);
    if (known) void this.write(toRecord(key, state, this.options.windowMs)!);
  }

  stats(): { keys: number; in_flight: number; evicted: number; key_log_bytes: number; key_log_failures: number } {
    return { keys: this.store.size, in_flight: this.store.inFlight, evicted: this.store.evicted, key_log_bytes: this.log.bytes, key_log_failures: this.logFailures };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.compacting;
    await this.log.close();
  }

  private async write(rec: KeyRecord): Promise<void> {
    try {
      await this.log.append(rec);
    } catch (err) {
      this.logFailures++;
      this.options.logger.warn({ err, key: rec.k }, 'idempotency key log: append failed; the key is kept in memory and in the shard logs');
      return;
    }
    if (!this.compacting && this.log.records > 2 * this.store.size + 10_000) {
      this.store.sweep();
      this.compacting = this.log
        .compact(this.store.records())
        .catch((err: unknown) => this.options.logger.warn({ err }, 'idempotency key log: compaction failed'))
        .finally(() => (this.compacting = null));
    }
  }

  /** Keys the shard logs hold that the key log does not answer; returns the records to write. */
  private merge(recovered: StoredKey[][], now: number): KeyRecord[] {
    const byKey = new Map<string, { first: StoredKey; shards: number[] }>();
    recovered.forEach((keys, shard) => {
      for (const k of keys) {
        const seen = byKey.get(k.key);
        if (seen) seen.shards.push(shard);
        else byKey.set(k.key, { first: k, shards: [shard] });
      }
    });
    const out: KeyRecord[] = [];
    for (const [key, { first, shards }] of byKey) {
      if (first.at + this.options.windowMs <= now) continue;
      const known = this.store.get(key, now);
      if (known?.state === 'done' || (known && known.hash !== first.hash)) continue;
      const held = known?.state === 'partial' ? [...new Set([...known.shards, ...shards])] : shards;
      const state =
        held.length >= first.parts
          ? {
              state: 'done' as const,
              hash: first.hash,
              at: first.at,
              status: first.wait ? 200 : 202,
              answer: { accepted: first.total, buffered: 0, timestamp: new Date(first.at).toISOString(), ...(first.wait ? { durable: true } : {}) },
            }
          : { state: 'partial' as const, hash: first.hash, at: first.at, shards: held.sort((a, b) => a - b) };
      this.store.set(key, state);
      out.push(toRecord(key, state, this.options.windowMs)!);
    }
    return out;
  }
}
