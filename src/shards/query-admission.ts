/**
 * Admission of query-type requests to one shard: at most `concurrency` run at once, at most
 * `queue` wait behind them (first in, first out), anything beyond is refused at once. A shard's
 * polars process answers one frame at a time, so queries beyond a couple only wait inside it,
 * where they cannot be cancelled without killing it; waiting here costs nothing and is bounded.
 *
 * Decisions are synchronous: a fan-out that checked `canAdmit()` on every shard and then calls
 * `run` on each in the same tick gets exactly what it checked, so a query is never half-started.
 * Time spent queued counts toward the request's time limit: the task gets what is left.
 */
export interface AdmissionErrors {
  busy: (running: number, queued: number) => Error;
  /** the time limit ran out while the request waited for a slot */
  timedOut: (timeoutMs: number) => Error;
}

interface Waiting {
  start: () => void;
  timer: NodeJS.Timeout;
}

export class QueryAdmission {
  private runningNow = 0;
  private readonly waiting: Waiting[] = [];
  private busyCount = 0;

  constructor(
    private readonly concurrency: number,
    private readonly queue: number,
    private readonly errors: AdmissionErrors,
  ) {}

  get running(): number {
    return this.runningNow;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Requests refused because every slot and every queue place was taken. */
  get rejectedBusy(): number {
    return this.busyCount;
  }

  /** Whether `run` now would start or queue rather than refuse. */
  canAdmit(): boolean {
    return this.runningNow < this.concurrency || this.waiting.length < this.queue;
  }

  /** The refusal, counted: for a caller that found `canAdmit()` false and sends nothing. */
  busyError(): Error {
    this.busyCount++;
    return this.errors.busy(this.runningNow, this.waiting.length);
  }

  /**
   * Runs `task` now, or when a slot frees up, with the milliseconds left of `timeoutMs`; rejects
   * at once when the queue is full, and with `timedOut` if the time runs out while queued.
   */
  run<T>(timeoutMs: number, task: (leftMs: number) => Promise<T>): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    const start = (): Promise<T> => {
      this.runningNow++;
      let p: Promise<T>;
      try {
        p = task(Math.max(1, Math.round(deadline - performance.now())));
      } catch (err) {
        p = Promise.reject(err);
      }
      void p.then(
        () => this.release(),
        () => this.release(),
      );
      return p;
    };
    if (this.runningNow < this.concurrency) return start();
    if (this.waiting.length >= this.queue) return Promise.reject(this.busyError());
    return new Promise<T>((resolve, reject) => {
      const w: Waiting = {
        start: () => {
          clearTimeout(w.timer);
          start().then(resolve, reject);
        },
        timer: setTimeout(() => {
          const i = this.waiting.indexOf(w);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(this.errors.timedOut(timeoutMs));
        }, timeoutMs),
      };
      this.waiting.push(w);
    });
  }

  private release(): void {
    this.runningNow--;
    while (this.runningNow < this.concurrency && this.waiting.length > 0) this.waiting.shift()!.start();
  }
}
