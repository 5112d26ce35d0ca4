/**
 * The idempotency keys in memory: what each key's request came to, oldest first.
 *
 *   inflight  written to the rings, its outcome not known yet          → a retry gets 409
 *   done      answered (status + body kept)                            → a retry gets the answer again
 *   partial   stored on some shards only (507, a crash in the middle)  → a retry writes the rest
 *
 * At most `maxKeys` done or partial keys are kept: beyond, the oldest go first (a Map iterates in
 * insertion order, and a key keeps its place when its state changes). Each key expires `window`
 * ms after its request arrived. In-flight keys are never evicted: they are bounded by the
 * requests in progress.
 */
import type { KeyRecord } from './key-log.js';

export type KeyState =
  | { state: 'inflight'; hash: string; at: number }
  /** `answer`: the answer's JSON body as an object (a third of the memory of its text), stringified to replay */
  | { state: 'done'; hash: string; at: number; status: number; answer: object }
  | { state: 'partial'; hash: string; at: number; shards: number[] };

export class KeyStore {
  private readonly keys = new Map<string, KeyState>();
  private inflight = 0;
  /** keys evicted because more than `maxKeys` were live */
  evicted = 0;

  constructor(
    private readonly maxKeys: number,
    private readonly windowMs: number,
  ) {}

  /** The key's state, or undefined (never seen, expired or evicted). */
  get(key: string, now = Date.now()): KeyState | undefined {
    const s = this.keys.get(key);
    if (s && s.state !== 'inflight' && s.at + this.windowMs <= now) {
      this.keys.delete(key);
      return undefined;
    }
    return s;
  }

  set(key: string, state: KeyState): void {
    const before = this.keys.get(key);
    if (before?.state === 'inflight') this.inflight--;
    if (state.state === 'inflight') this.inflight++;
    this.keys.set(key, state);
    if (this.keys.size - this.inflight > this.maxKeys) this.evict();
  }

  delete(key: string): void {
    const before = this.keys.get(key);
    if (before?.state === 'inflight') this.inflight--;
    this.keys.delete(key);
  }

  /** Drops expired keys from the old end (keys were added about in arrival order). */
  sweep(now = Date.now()): number {
    let dropped = 0;
    for (const [key, s] of this.keys) {
      if (s.state === 'inflight') continue;
      if (s.at + this.windowMs > now) break;
      this.keys.delete(key);
      dropped++;
    }
    return dropped;
  }

  /** Live keys (done and partial) as key-log records, oldest first: what a compacted log holds. */
  records(): KeyRecord[] {
    const out: KeyRecord[] = [];
    for (const [key, s] of this.keys) {
      const r = toRecord(key, s, this.windowMs);
      if (r) out.push(r);
    }
    return out;
  }

  /** Done and partial keys held. */
  get size(): number {
    return this.keys.size - this.inflight;
  }

  get inFlight(): number {
    return this.inflight;
  }

  private evict(): void {
    for (const [key, s] of this.keys) {
      if (this.keys.size - this.inflight <= this.maxKeys) return;
      if (s.state === 'inflight') continue;
      this.keys.delete(key);
      this.evicted++;
    }
  }
}

/** The log record of a key's state (null while in flight: nothing is known to keep yet). */
export function toRecord(key: string, s: KeyState, windowMs: number): KeyRecord | null {
  if (s.state === 'done') return { k: key, h: s.hash, e: s.at + windowMs, s: s.status, b: JSON.stringify(s.answer) };
  if (s.state === 'partial') return { k: key, h: s.hash, e: s.at + windowMs, p: s.shards };
  return null;
}

/** A key-log record back to its state (`at` from its expiry). */
export function fromRecord(r: KeyRecord, windowMs: number): KeyState {
  const at = r.e - windowMs;
  if (r.p) return { state: 'partial', hash: r.h, at, shards: r.p };
  return { state: 'done', hash: r.h, at, status: r.s ?? 200, answer: JSON.parse(r.b ?? '{}') as object };
}
