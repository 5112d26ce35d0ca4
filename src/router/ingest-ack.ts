/**
 * How an ingest request is acknowledged: `202` once its events are in the rings (the default),
 * `200` with `?wait=true` once every shard that took part of it has synced it to its log, and,
 * with an `Idempotency-Key`, at most once per key (a retry gets the first answer again).
 *
 * A route calls `acks.begin(c, route, text)` after reading the body: it answers a retry from the
 * key store, refuses a key in use (409) or used for another body (422), and otherwise returns a
 * ticket (null for a plain 202 request, which pays nothing here). The route validates and writes
 * with `ticket.opts` (markers, shards to skip, targets), then `ticket.answer(c, body)` waits as
 * the mode asks and records the key. Between `begin` and the write nothing awaits, so the key's
 * state cannot change in between.
 *
 * Waiting costs no timer or listener per request: each shard settles its waiters from its
 * `durable` messages (src/shards/durability.ts), and `waitTimeoutMs` deadlines, all the same
 * length, sit in one FIFO behind one timer.
 */
import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { EngineContext } from '../engine-context.js';
import { ShardError } from '../shards/shard-errors.js';
import { HttpError, badRequest } from './http-error.js';
import type { IdempotencyKeys } from './idempotency/idempotency-keys.js';
import type { ShardTarget, WriteOptions } from './ingest-writer.js';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
export const REPLAYED_HEADER = 'Idempotent-Replayed';
/** 1–128 characters: letters, digits and `-_.:~+/=` (UUIDs, ULIDs, base64 and base64url fit). */
const KEY_CHARS = /^[A-Za-z0-9\-_.:~+/=]{1,128}$/;

/** What a success answer says (the route builds it; `durable` is added for 200s). */
export interface IngestAnswer {
  accepted: number;
  buffered: number;
  timestamp: string;
  latency?: number;
  durable?: boolean;
}

interface PartsOutcome {
  /** shards whose part is durable (including those skipped: they held it already) */
  durable: number[];
  failed: Array<{ shard: number; error: Error }>;
}

/** FIFO of same-length deadlines behind one timer. */
class Deadlines {
  private queue: Array<{ at: number; fire: (() => void) | null }> = [];
  private timer: NodeJS.Timeout | null = null;

  /** Calls `fire` in `ms` unless the returned cancel runs first. */
  add(ms: number, fire: () => void): () => void {
    const entry = { at: performance.now() + ms, fire: fire as (() => void) | null };
    this.queue.push(entry);
    if (!this.timer) this.arm();
    return () => void (entry.fire = null);
  }

  private arm(): void {
    while (this.queue.length > 0 && this.queue[0]!.fire === null) this.queue.shift();
    const head = this.queue[0];
    if (!head) {
      this.timer = null;
      return;
    }
    this.timer = setTimeout(() => {
      const now = performance.now();
      while (this.queue.length > 0 && (this.queue[0]!.fire === null || this.queue[0]!.at <= now)) this.queue.shift()!.fire?.();
      this.arm();
    }, Math.max(0, head.at - performance.now()));
  }
}

export class IngestAcks {
  private readonly deadlines = new Deadlines();

  constructor(
    private readonly ctx: EngineContext,
    readonly keys: IdempotencyKeys | null,
  ) {}

  /**
   * Reads `?wait` and `Idempotency-Key`. Returns the answer to send at once (a replay), a ticket,
   * or null for a plain request (202, no key). Throws 400 (bad `wait` or key), 409, 422.
   * `body` is the request body (text, or bytes for a binary route), hashed with the route; or a
   * function that gives it, called only for a keyed request (a route that may never need its
   * body as text need not make it).
   */
  begin(c: Context, route: string, body: string | Uint8Array | (() => string)): AckTicket | Response | null {
    const waitParam = c.req.query('wait');
    if (waitParam !== undefined && waitParam !== 'true' && waitParam !== 'false') {
      throw badRequest(`\`wait\` must be true or false, got ${JSON.stringify(waitParam.slice(0, 40))}`, [{ field: 'wait', reason: 'expected true or false' }]);
    }
    const wait = waitParam === 'true';
    const key = c.req.header(IDEMPOTENCY_KEY_HEADER);
    if (key === undefined) return wait ? new AckTicket(this, this.ctx, route, null, null, true, undefined) : null;
    if (!KEY_CHARS.test(key)) {
      throw badRequest(`${IDEMPOTENCY_KEY_HEADER} must be 1–128 characters of A–Z, a–z, 0–9 and -_.:~+/=, got ${key.length} characters${key.length > 0 && key.length <= 128 ? ' with others' : ''}`, [
        { field: IDEMPOTENCY_KEY_HEADER, reason: 'expected 1–128 characters of A–Z a–z 0–9 - _ . : ~ + / =' },
      ]);
    }
    if (!this.keys) throw new HttpError(503, 'UNAVAILABLE', `${IDEMPOTENCY_KEY_HEADER} is not available: the key store is not open`, { retryAfterSeconds: 5 });
    const hash = createHash('sha256').update(route).update('\n').update(typeof body === 'function' ? body() : body).digest();
    const hashText = hash.toString('base64url');
    const found = this.keys.lookup(key, hashText);
    switch (found.kind) {
      case 'replay':
        return c.body(found.body, found.status as ContentfulStatusCode, { 'content-type': 'application/json', [REPLAYED_HEADER]: 'true' });
      case 'mismatch':
        throw new HttpError(422, 'IDEMPOTENCY_KEY_REUSED', `${IDEMPOTENCY_KEY_HEADER} ${JSON.stringify(key)} was used for another request (a different body or route) within idempotencyWindow; use a new key for a new request`, {
          errors: [{ field: IDEMPOTENCY_KEY_HEADER, reason: 'already used for a different body or route' }],
        });
      case 'inflight':
        throw new HttpError(409, 'IDEMPOTENCY_KEY_IN_FLIGHT', `a request with ${IDEMPOTENCY_KEY_HEADER} ${JSON.stringify(key)} is still in progress; retry after it is answered`, {
          errors: [{ field: IDEMPOTENCY_KEY_HEADER, reason: 'a request with this key is in progress' }],
          retryAfterSeconds: 1,
        });
      case 'resume':
        return new AckTicket(this, this.ctx, route, key, { bytes: hash, text: hashText }, wait, found.skip);
      case 'new':
        return new AckTicket(this, this.ctx, route, key, { bytes: hash, text: hashText }, wait, undefined);
    }
  }

  /** Calls `fire` after `waitTimeoutMs` unless cancelled. */
  deadline(fire: () => void): () => void {
    return this.deadlines.add(this.ctx.config.waitTimeoutMs, fire);
  }
}

export class AckTicket {
  /** pass to `writer.write` */
  readonly opts: WriteOptions & { targets: ShardTarget[] };
  private readonly at = Date.now();

  constructor(
    private readonly acks: IngestAcks,
    private readonly ctx: EngineContext,
    readonly route: string,
    readonly key: string | null,
    private readonly hash: { bytes: Uint8Array; text: string } | null,
    readonly wait: boolean,
    private readonly skip: ReadonlySet<number> | undefined,
  ) {
    this.opts = {
      targets: [],
      wakeNow: wait,
      ...(key && hash ? { keyed: { key, hash: hash.bytes, at: this.at, wait, ...(skip ? { skip } : {}) } } : {}),
    };
  }

  /**
   * After the write: answers as the mode asks. 202 at once; with `?wait=true` 200 once every part
   * is durable, 507 when a shard dropped its part, 503 when a shard failed, 504 after
   * `waitTimeoutMs`. With a key, the key's state follows the outcome (see IdempotencyKeys).
   */
  async answer(c: Context, body: IngestAnswer): Promise<Response> {
    const outcome = this.settle();
    const keys = this.acks.keys;
    const replayed = this.skip !== undefined && this.opts.targets.length === 0;
    const headers = replayed ? { [REPLAYED_HEADER]: 'true' } : undefined;
    if (this.key) keys!.inflight(this.key, this.hash!.text, this.at);
    if (!this.wait) {
      if (this.key) {
        const key = this.key;
        await keys!.answered(key, this.hash!.text, this.at, 202, body, false);
        void outcome.then((o) => (o.failed.length === 0 ? keys!.durable(key) : this.lost(o)));
      }
      return c.json(body, 202, headers);
    }
    let cancel = () => {};
    const settled = await Promise.race([outcome, new Promise<null>((resolve) => (cancel = this.acks.deadline(() => resolve(null))))]);
    cancel();
    if (settled === null) {
      // The outcome still counts for the key: a retry gets 409 until it is known, then the answer.
      if (this.key) void outcome.then((o) => (o.failed.length === 0 ? keys!.answered(this.key!, this.hash!.text, this.at, 200, { ...body, durable: true }, true) : this.lost(o)));
      throw new HttpError(
        504,
        'DURABILITY_TIMEOUT',
        `the events were accepted but not confirmed durable within waitTimeoutMs (${this.ctx.config.waitTimeoutMs} ms); they may still be stored${this.key ? `: a retry with the same ${IDEMPOTENCY_KEY_HEADER} is safe` : ''}`,
        { retryAfterSeconds: 1 },
      );
    }
    if (settled.failed.length > 0) {
      if (this.key) this.lost(settled);
      throw this.failure(settled);
    }
    // `buffered` as it is now, after the wait, like every other figure of this answer
    const answer = { ...body, buffered: this.ctx.writer.buffered(), durable: true };
    if (this.key) await keys!.answered(this.key, this.hash!.text, this.at, 200, answer, true);
    return c.json(answer, 200, headers);
  }

  /** Each written part's outcome (skipped shards count as durable: they held it already). */
  private settle(): Promise<PartsOutcome> {
    const shards = this.ctx.shards;
    const parts = this.opts.targets.map((t) => shards[t.shard]!.durability.whenDurable(t.start, t.end).then(() => t.shard));
    return Promise.allSettled(parts).then((results) => {
      const durable = [...(this.skip ?? [])];
      const failed: PartsOutcome['failed'] = [];
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') durable.push(r.value);
        else failed.push({ shard: this.opts.targets[i]!.shard, error: r.reason as Error });
      });
      return { durable, failed };
    });
  }

  /** Some part did not become durable: the key remembers which shards hold theirs. */
  private lost(o: PartsOutcome): void {
    // A part dropped for storage is certainly not stored; one whose shard failed may be (its log decides at the next start).
    const known = o.failed.every((f) => f.error instanceof ShardError && f.error.code === 'INSUFFICIENT_STORAGE');
    this.acks.keys!.partial(this.key!, this.hash!.text, this.at, o.durable, known);
  }

  private failure(o: PartsOutcome): HttpError {
    const storage = o.failed.find((f) => f.error instanceof ShardError && f.error.code === 'INSUFFICIENT_STORAGE');
    const retry = this.key ? `a retry with the same ${IDEMPOTENCY_KEY_HEADER} writes only what is missing` : 'retrying may store the events of the other shards twice';
    if (storage) {
      return new HttpError(
        507,
        'INSUFFICIENT_STORAGE',
        `${storage.error.message}; this request's events on shard ${storage.shard} were not stored${o.durable.length > 0 ? ` (its events on shard${o.durable.length > 1 ? 's' : ''} ${o.durable.join(', ')} were)` : ''}; ${retry}`,
        { retryAfterSeconds: 1 },
      );
    }
    const f = o.failed[0]!;
    return new HttpError(
      503,
      'DURABILITY_UNCONFIRMED',
      `the events were accepted but shard ${f.shard} could not confirm they are durable (${f.error.message}); they may still be stored${this.key ? `: a retry with the same ${IDEMPOTENCY_KEY_HEADER} is safe` : ''}`,
      { retryAfterSeconds: 5 },
    );
  }
}
