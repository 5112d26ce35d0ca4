/**
 * The configured bearer tokens, looked up in constant time. Both sides are hashed with SHA-256
 * first, so `timingSafeEqual` always compares 32 bytes (no early exit on a length mismatch), and
 * a lookup compares against every token (no early exit on a hit): the time a request takes says
 * nothing about how much of a token it guessed, nor which token it matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Scope, TokenConfig } from '../../config/schema.js';

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Whether two tokens are equal, in time independent of where (or whether) they differ. */
export function sameToken(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export class TokenBook {
  private readonly entries: ReadonlyArray<{ digest: Buffer; scopes: readonly Scope[] }>;

  constructor(tokens: readonly TokenConfig[]) {
    this.entries = tokens.map((t) => ({ digest: digest(t.token), scopes: t.scopes }));
  }

  get size(): number {
    return this.entries.length;
  }

  /** The scopes of `presented`, or null for a token that is not configured. */
  scopesOf(presented: string): readonly Scope[] | null {
    const d = digest(presented);
    let found: readonly Scope[] | null = null;
    for (const e of this.entries) {
      if (timingSafeEqual(d, e.digest) && found === null) found = e.scopes;
    }
    return found;
  }
}
