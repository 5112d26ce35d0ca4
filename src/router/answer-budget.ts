/**
 * Bytes of JSON answers the query port holds until their clients have taken them.
 *
 * A query's answer is bounded (`maxResponseBytes`, 256 MiB by default), but it stays in memory
 * until the socket has taken its last byte, and a client decides how fast that is: a few clients
 * that ask for by-user aggregates and never read would each pin one answer for as long as their
 * connections stay open. So the answers held at once are bounded too: an answer that would take
 * them past `maxAnswerBytesInFlight` is refused (503 `OVERLOADED`, `Retry-After: 1`) before it is
 * sent, and a response whose socket takes nothing for `sendStallTimeoutMs` is cut off (the
 * connection is destroyed), which gives its bytes back. One answer is always let through, whatever
 * its size (`maxResponseBytes` can exceed the budget only by configuration).
 */
export class AnswerBudget {
  /** bytes of answers not yet handed to their sockets in full */
  held = 0;
  /** answers refused so far */
  refused = 0;
  /** responses cut off for taking nothing for sendStallTimeoutMs */
  stalled = 0;

  constructor(readonly maxBytes: number) {}

  /** Takes `bytes` from the budget; false (and nothing taken) when they do not fit beside the answers held. */
  reserve(bytes: number): boolean {
    if (this.held > 0 && this.held + bytes > this.maxBytes) {
      this.refused++;
      return false;
    }
    this.held += bytes;
    return true;
  }

  /** Gives back `bytes` reserved. */
  release(bytes: number): void {
    this.held -= bytes;
  }
}
